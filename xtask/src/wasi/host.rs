//! The WASI host of `cargo xtask wasi-check`: runs the `wasm32-wasip1` build of canister-vm as a
//! WASI preview 1 command inside wasmtime, with captured stdout/stderr and preopened directories.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use wasmtime::{Config, Engine, InstancePre, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use super::Run;

/// The most a command may print on stdout or stderr (the pipes keep everything up to this).
const OUTPUT_CAPACITY: usize = 16 << 20;

/// A compiled WASI program, ready to be run any number of times.
pub struct WasiHost {
    engine: Engine,
    pre: InstancePre<WasiP1Ctx>,
    /// Host directories made available to the guest under their own (absolute) path, with
    /// whether the guest may write them.
    preopens: Vec<(PathBuf, bool)>,
}

impl WasiHost {
    /// Compiles the WASI program `wasm`; every run sees `preopens` (host path, writable).
    pub fn new(wasm: &Path, preopens: Vec<(PathBuf, bool)>) -> Result<WasiHost> {
        // wasmtime's defaults, as `wasmtime run` has them: the wasmi executor inside the guest
        // runs the test canisters within the default 512 KiB wasm stack (checked: no overflow).
        let config = Config::new();
        let engine = Engine::new(&config).map_err(|e| anyhow!("{e}"))?;
        let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
        let module = Module::from_binary(&engine, &bytes)
            .map_err(|e| anyhow!("compiling {}: {e}", wasm.display()))?;
        let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx)
            .map_err(|e| anyhow!("linking WASI preview 1: {e}"))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| anyhow!("{} needs imports this host lacks: {e}", wasm.display()))?;
        Ok(WasiHost {
            engine,
            pre,
            preopens,
        })
    }

    /// Runs the program as `canister-vm <args>` and returns its exit status and output.
    pub fn run(&self, args: &[String]) -> Result<Run> {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let mut builder = WasiCtxBuilder::new();
        builder
            .arg("canister-vm")
            .args(args)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_blocking_current_thread(true);
        for (dir, writable) in &self.preopens {
            let guest = dir.to_str().context("a preopened path is not UTF-8")?;
            let perms = if *writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(dir, guest, perms)
                .map_err(|e| anyhow!("preopening {}: {e}", dir.display()))?;
        }
        let mut store = Store::new(&self.engine, builder.build_p1());
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| anyhow!("instantiating: {e}"))?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| anyhow!("the program has no `_start`: {e}"))?;
        let code = match start.call(&mut store, ()) {
            Ok(()) => 0,
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => exit.0,
                None => return Err(anyhow!("the WASI program trapped: {e:?}")),
            },
        };
        drop(store);
        let text = |pipe: &MemoryOutputPipe| String::from_utf8_lossy(&pipe.contents()).into_owned();
        Ok(Run {
            code,
            stdout: text(&stdout),
            stderr: text(&stderr),
        })
    }
}
