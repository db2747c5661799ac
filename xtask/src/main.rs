//! `cargo xtask`: the project's chores, in Rust (build the test canisters, run the demo, the spec
//! suite, the CI checks).

use anyhow::{Result, bail};

mod bench;
mod canisters;
mod demo;
mod fuzz;
mod spec;
mod wasi;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        print_help();
        return Ok(());
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "bench" => bench::run(rest),
        "build-canisters" => canisters::build_canisters(rest),
        "spec" => spec::run(rest),
        "demo" => demo::run(rest),
        "fuzz" => fuzz::run(rest),
        "wasi-check" => wasi::run(rest),
        "help" | "--help" | "-h" => {
            print_help();
            Ok(())
        }
        other => bail!("unknown xtask command `{other}` (try `cargo xtask help`)"),
    }
}

fn print_help() {
    println!(
        "cargo xtask <command>\n\n\
         commands:\n  \
         bench             run the criterion suites and rewrite BENCHMARKS.md (--quick: short run)\n  \
         build-canisters   build the Rust test canisters for wasm32-unknown-unknown\n  \
         demo              install and drive the example canister end to end\n  \
         fuzz              differential fuzzing of instrumentation and engines (--target, --seconds, \
         --modules, --seed, --jobs)\n  \
         spec              run the WebAssembly spec suite and print a table per file and mode\n  \
         wasi-check        run canister-vm built for wasm32-wasip1 and natively; fail on any difference"
    );
}
