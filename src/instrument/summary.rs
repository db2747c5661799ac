//! What instrumentation did, printed by `canister-vm instrument`.

use std::fmt;

use super::validate::ModuleInfo;
use super::{Config, StableMode};

/// A summary of one instrumentation run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Memories of the output module: (index, description).
    pub memories: Vec<(u32, String)>,
    /// Exports added for the host.
    pub host_exports: Vec<String>,
    /// `ic0` imports replaced by injected functions.
    pub replaced_imports: Vec<String>,
    /// Functions injected.
    pub injected_functions: Vec<String>,
    /// Index of the injected stable memory (native mode, when the module uses stable memory).
    pub stable_memory_index: Option<u32>,
    /// Stable read/write call sites given the inline constant-length fast path.
    pub stable_fast_paths: u64,
    /// 64-bit stable read/write call sites with a run-time length that take the inline path
    /// when the length is 8.
    pub stable_dynamic_fast_paths: u64,
    /// Places where instruction counting was inserted.
    pub metering_points: u64,
    /// Write-barrier marks emitted (one per marked store group, unmarked store or bulk operator).
    pub barrier_marks: u64,
    /// Stores whose mark the write barrier elided (covered by an earlier mark).
    pub barrier_elided: u64,
    /// Float operations whose NaN results are canonicalized.
    pub nan_points: u64,
    /// The stable mode used.
    pub stable_mode: String,
    /// The address type of memory 0 (wasm32 when the module has no memory).
    pub heap_type: crate::abi::HeapType,
}

impl Summary {
    /// An empty summary for `info` instrumented with `config`.
    pub fn new(info: &ModuleInfo, config: &Config) -> Self {
        let mut memories = Vec::new();
        for (i, m) in info.memory_decls.iter().enumerate() {
            let role = if i == 0 {
                "heap"
            } else {
                "declared by the module"
            };
            let ty = if m.memory64 { "i64" } else { "i32" };
            let limits = match m.maximum {
                Some(max) => format!("{}..{max} pages", m.minimum),
                None => format!("{}.. pages (no maximum)", m.minimum),
            };
            memories.push((i as u32, format!("{role}, {ty}, {limits}")));
        }
        Summary {
            memories,
            heap_type: if info.heap64 {
                crate::abi::HeapType::Wasm64
            } else {
                crate::abi::HeapType::Wasm32
            },
            stable_mode: match config.stable {
                StableMode::Native => "native".into(),
                StableMode::Syscall => "syscall".into(),
            },
            ..Summary::default()
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "stable memory: {}", self.stable_mode)?;
        writeln!(f, "memories:")?;
        for (i, m) in &self.memories {
            writeln!(f, "  {i}: {m}")?;
        }
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        writeln!(f, "replaced imports: {}", list(&self.replaced_imports))?;
        writeln!(f, "injected functions: {}", list(&self.injected_functions))?;
        writeln!(f, "host exports: {}", list(&self.host_exports))?;
        writeln!(
            f,
            "stable fast paths: {} constant-length, {} run-time length (when 8 bytes)",
            self.stable_fast_paths, self.stable_dynamic_fast_paths
        )?;
        writeln!(f, "metering points: {}", self.metering_points)?;
        writeln!(f, "NaN canonicalization points: {}", self.nan_points)?;
        write!(
            f,
            "write barrier: {} marks, {} elided",
            self.barrier_marks, self.barrier_elided
        )
    }
}
