//! The three ways a spec file is run, and the hooks the instrumented modes need.
//!
//! | mode | module bytes | extra check after every `invoke` |
//! |---|---|---|
//! | [`Mode::Plain`] | as written | none |
//! | [`Mode::Instrumented`] | through [`Hooks::instrument`] | none (transparency, DESIGN.md §4) |
//! | [`Mode::Soundness`] | through [`Hooks::instrument`] | every changed 4 KiB page is marked in the dirty byte map ([`Hooks::dirty_byte`]) |
//!
//! A mode whose hook is missing is *unavailable*: its files are reported as skipped, never passed.

use std::fmt;

/// The error a [`Transform`] returns: anything printable.
pub type TransformError = Box<dyn std::error::Error + Send + Sync>;

/// Rewrites a module's bytes before it is compiled (the instrumentation pass).
pub type Transform = fn(&[u8]) -> Result<Vec<u8>, TransformError>;

/// Locates the dirty-map byte that marks one 4 KiB page of a tracked memory.
///
/// Arguments: the tracked memory's index, the 4 KiB page within it, and the current size of every
/// tracked memory in 4 KiB pages (index order). Returns the byte offset in that memory's byte map
/// (`canister_vm:dirty:<memory>`), or `None` if the layout has no byte for it (the page then
/// counts as unmarked).
pub type DirtyByte = fn(memory: u32, page: u64, tracked_pages: &[u64]) -> Option<u64>;

/// Defines, in the runner's linker, the host functions instrumented modules import (e.g.
/// `canister_vm.trap`).
pub type LinkHost = fn(&mut wasmi::Linker<()>) -> Result<(), wasmi::Error>;

/// How a spec file is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Modules compile exactly as the suite wrote them.
    Plain,
    /// Every module passes through the instrumentation hook first; results must not change.
    Instrumented,
    /// [`Mode::Instrumented`], and after every invoke each changed 4 KiB page of every memory
    /// must be marked in its dirty byte map (`canister_vm:dirty:<memory>`).
    Soundness,
}

impl Mode {
    /// Every mode, in reporting order.
    pub const ALL: [Mode; 3] = [Mode::Plain, Mode::Instrumented, Mode::Soundness];

    /// The mode's lowercase name (`plain`, `instrumented`, `soundness`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Instrumented => "instrumented",
            Mode::Soundness => "soundness",
        }
    }

    /// Parses [`Mode::name`].
    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether module bytes go through [`Hooks::instrument`].
    pub fn instruments(self) -> bool {
        matches!(self, Mode::Instrumented | Mode::Soundness)
    }

    /// Whether invokes are followed by the dirty-page check.
    pub fn checks_dirty_pages(self) -> bool {
        matches!(self, Mode::Soundness)
    }

    /// `Err(reason)` if `hooks` lacks what this mode needs.
    pub fn availability(self, hooks: &Hooks) -> Result<(), &'static str> {
        if self.instruments() && hooks.instrument.is_none() {
            return Err("instrumentation hook not available yet (Hooks::instrument is unset)");
        }
        if self.checks_dirty_pages() && hooks.dirty_byte.is_none() {
            return Err("write barrier not available yet (Hooks::dirty_byte is unset)");
        }
        Ok(())
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the instrumented modes plug in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hooks {
    /// The instrumentation pass ([`Mode::Instrumented`], [`Mode::Soundness`]).
    pub instrument: Option<Transform>,
    /// The dirty byte map's layout ([`Mode::Soundness`]).
    pub dirty_byte: Option<DirtyByte>,
    /// The host functions instrumented modules import (instrumented modes only).
    pub link_host: Option<LinkHost>,
}

impl Hooks {
    /// The hooks canister-vm provides: [`instrument_generic`], [`link_canister_vm`] and the write
    /// barrier's layout, [`barrier_byte`].
    pub fn canister_vm() -> Hooks {
        Hooks {
            instrument: Some(instrument_generic),
            dirty_byte: Some(barrier_byte),
            link_host: Some(link_canister_vm),
        }
    }
}

/// canister-vm's write barrier: byte `p` of memory `k`'s map marks its 4 KiB page `p`.
pub fn barrier_byte(_memory: u32, page: u64, _tracked_pages: &[u64]) -> Option<u64> {
    Some(page)
}

/// canister-vm's instrumentation with [`Config::generic`] (any valid module, no canister rules).
///
/// [`Config::generic`]: canister_vm::instrument::Config::generic
pub fn instrument_generic(wasm: &[u8]) -> Result<Vec<u8>, TransformError> {
    use canister_vm::instrument::{Config, instrument};
    Ok(instrument(wasm, &Config::generic())?.wasm)
}

/// Defines `canister_vm.trap(code: i32)`, which injected code calls to trap (an instruction limit,
/// a stable-memory bounds check): it traps with the reason's text.
pub fn link_canister_vm(linker: &mut wasmi::Linker<()>) -> Result<(), wasmi::Error> {
    use canister_vm::instrument::{InjectedTrap, metering::TRAP_IMPORT, names::HOST_MODULE};
    linker.func_wrap(
        HOST_MODULE,
        TRAP_IMPORT,
        |code: i32| -> Result<(), wasmi::Error> {
            Err(match InjectedTrap::from_code(code) {
                Some(trap) => wasmi::Error::new(trap.to_string()),
                None => wasmi::Error::new(format!("injected trap with unknown code {code}")),
            })
        },
    )?;
    Ok(())
}
