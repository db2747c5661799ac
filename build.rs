//! Tells the library whether it is being built unoptimised (cfg `canister_vm_unoptimised`).
//!
//! Cargo's profiles apply from the root workspace only: a project that depends on canister-vm
//! builds it, and the wasmi interpreter under it, with that project's profile, where the dev
//! profile means opt-level 0 for every dependency. Canisters then run ~70x slower (README,
//! "Using canister-vm as a dependency", measures it), and every
//! data certificate (a BLS signature) takes about a second. A build script cannot see the
//! interpreter's profile, only canister-vm's own (`OPT_LEVEL`), which is 0 exactly when the
//! dependent's profile has none of the lines the documentation gives ("Using canister-vm as a
//! dependency"; canister-vm's own workspace builds it at opt-level 1 in dev). The library then
//! prints a one-time warning when the first canister is instantiated (`runtime::engine`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(canister_vm_unoptimised)");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("OPT_LEVEL").is_ok_and(|level| level == "0") {
        println!("cargo::rustc-cfg=canister_vm_unoptimised");
    }
}
