//! `cargo xtask`: the project's chores, in Rust.
fn main() {}
