//! What a message is given and what it gives back: inputs, outcomes, rejects, limits.

/// IC reject codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum RejectCode {
    /// Fatal system error.
    SysFatal = 1,
    /// Transient system error.
    SysTransient = 2,
    /// The destination is invalid.
    DestinationInvalid = 3,
    /// The canister called `ic0.msg_reject`.
    CanisterReject = 4,
    /// The canister trapped or did not reply.
    CanisterError = 5,
    /// Unknown.
    SysUnknown = 6,
}

/// A rejected message: code and message, as a caller on the IC would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The IC reject code.
    pub code: RejectCode,
    /// The reject message (names the trap reason for a trap).
    pub message: String,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reject code {} ({:?}): {}",
            self.code as u8, self.code, self.message
        )
    }
}

/// The outcome of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Reply bytes, or the reject.
    pub result: Result<Vec<u8>, Reject>,
    /// Instructions the message executed (0 when the module is not metered).
    pub instructions: u64,
    /// Lines the canister printed with `ic0.debug_print`.
    pub debug_log: Vec<String>,
    /// The 4 KiB pages the message wrote (by the write barrier; empty for a message that did
    /// not commit, whose pages were restored).
    pub dirty: DirtyPages,
    /// The 4 KiB pages the message wrote, whether its changes were kept or not (a query's, a
    /// trapped message's): what it touched, as `canister-vm bench` reports it. Equal to
    /// [`Outcome::dirty`] for a message that committed.
    pub written: DirtyPages,
}

impl Outcome {
    /// The outcome of a message refused before it ran: `reject`, nothing executed or written.
    pub fn rejected(reject: Reject) -> Self {
        Outcome {
            result: Err(reject),
            instructions: 0,
            debug_log: Vec::new(),
            dirty: DirtyPages::default(),
            written: DirtyPages::default(),
        }
    }
}

/// 4 KiB pages written by a message, sorted, as reported by the write barrier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirtyPages {
    /// Heap pages.
    pub heap: Vec<u64>,
    /// Stable memory pages.
    pub stable: Vec<u64>,
}

/// Caller and time of a message; `None` picks the deterministic default (the anonymous
/// principal; the previous message's time plus one second).
///
/// ```
/// use canister_vm::runtime::MessageInput;
/// let input = MessageInput::from(candid::Principal::from_slice(&[1, 2, 3]));
/// assert_eq!(input.caller.unwrap().as_slice(), [1, 2, 3]);
/// assert_eq!(input.time, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageInput {
    /// The caller.
    pub caller: Option<candid::Principal>,
    /// `ic0.time` in nanoseconds.
    pub time: Option<u64>,
}

impl From<candid::Principal> for MessageInput {
    /// A message from `caller` at the default time.
    fn from(caller: candid::Principal) -> Self {
        MessageInput {
            caller: Some(caller),
            time: None,
        }
    }
}

/// Instruction limits per message kind (IC defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstructionLimits {
    /// Per update (and replicated query).
    pub update: u64,
    /// Per query.
    pub query: u64,
    /// Per install or upgrade (pre_upgrade, start and post_upgrade together count separately).
    pub install: u64,
}

impl Default for InstructionLimits {
    fn default() -> Self {
        InstructionLimits {
            update: 40_000_000_000,
            query: 5_000_000_000,
            install: 300_000_000_000,
        }
    }
}
