//! Instrumentation errors and the traps injected code raises.

/// Why a module cannot be instrumented: each variant names the rule that failed and where.
#[derive(Debug, thiserror::Error)]
pub enum InstrumentError {
    /// The bytes are not a valid Wasm module for canister-vm's feature set.
    #[error("invalid Wasm module: {message} (at byte offset {offset:#x})")]
    InvalidWasm {
        /// The validator's message.
        message: String,
        /// Byte offset in the module.
        offset: usize,
    },
    /// Re-encoding the module failed.
    #[error("re-encoding the module failed: {0}")]
    Encode(String),
    /// The module breaks a canister rule (DESIGN.md §8).
    #[error("invalid canister module: {0}")]
    Rule(Box<super::rules::RuleError>),
    /// The metering pass cannot instrument the module.
    #[error(transparent)]
    Metering(Box<super::metering::MeteringError>),
    /// The write-barrier pass cannot instrument the module.
    #[error(transparent)]
    Barrier(Box<super::barrier::BarrierError>),
    /// The NaN-canonicalization pass cannot instrument the module.
    #[error(transparent)]
    Nan(Box<super::nan::NanError>),
}

impl From<super::barrier::BarrierError> for InstrumentError {
    fn from(e: super::barrier::BarrierError) -> Self {
        InstrumentError::Barrier(Box::new(e))
    }
}

impl From<super::rules::RuleError> for InstrumentError {
    fn from(e: super::rules::RuleError) -> Self {
        InstrumentError::Rule(Box::new(e))
    }
}

impl From<super::metering::MeteringError> for InstrumentError {
    fn from(e: super::metering::MeteringError) -> Self {
        InstrumentError::Metering(Box::new(e))
    }
}

impl From<wasmparser::BinaryReaderError> for InstrumentError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        InstrumentError::InvalidWasm {
            message: e.message().to_string(),
            offset: e.offset(),
        }
    }
}

/// A trap raised by injected code through the `canister_vm.trap(code)` import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[repr(i32)]
pub enum InjectedTrap {
    /// The message used up its instruction budget.
    #[error("instruction limit exceeded")]
    InstructionLimit = 1,
    /// A stable memory access outside stable memory (or `offset + size` overflowed).
    #[error("stable memory out of bounds")]
    StableOutOfBounds = 2,
    /// A stable memory access whose heap range is outside the heap.
    #[error("heap out of bounds")]
    HeapOutOfBounds = 3,
    /// A 32-bit stable function while stable memory is larger than 4 GiB.
    #[error("stable memory is larger than 4 GiB; use the 64-bit stable API")]
    StableTooBigFor32Bit = 4,
}

impl InjectedTrap {
    /// The trap with this code, if any.
    pub fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            1 => InjectedTrap::InstructionLimit,
            2 => InjectedTrap::StableOutOfBounds,
            3 => InjectedTrap::HeapOutOfBounds,
            4 => InjectedTrap::StableTooBigFor32Bit,
            _ => return None,
        })
    }
    /// The code passed to `canister_vm.trap`.
    pub fn code(self) -> i32 {
        self as i32
    }
}
