//! `cargo xtask spec`.
use anyhow::{Result, bail};

/// Runs the spec suite.
pub fn run(_args: &[String]) -> Result<()> {
    bail!("not written yet")
}
