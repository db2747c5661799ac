//! The `canister-vm` command: see `canister-vm --help`.

fn main() -> std::process::ExitCode {
    canister_vm::cli::main()
}
