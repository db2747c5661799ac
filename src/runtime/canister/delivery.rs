//! Messages a subnet delivers to a canister: requests, responses (callbacks and cleanup),
//! system tasks and ingress inspection, each as its own transaction.

use super::*;

/// What a message runs: an export, or a callback of table 0.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// An exported function.
    Export(&'a str),
    /// A callback from table 0.
    Callback(Callback),
}

/// The raw result of running a message.
pub(crate) struct Run {
    pub outcome: Outcome,
    pub trapped: bool,
    /// The message replied or rejected (explicitly).
    pub responded: bool,
    pub calls: Vec<OutgoingCall>,
    pub cycles_left: u128,
}

/// The reject of an update that returned without replying (and, on a subnet, whose call
/// context has no outstanding calls left).
pub(crate) fn did_not_reply(canister_id: &[u8]) -> Reject {
    Reject {
        code: RejectCode::CanisterError,
        message: format!(
            "Canister {} did not reply to the call",
            candid::Principal::from_slice(canister_id).to_text()
        ),
    }
}

/// A message a subnet delivers to a canister.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// Request or response.
    pub kind: DeliveryKind,
    /// `msg_caller`: the caller of the call context the message belongs to.
    pub caller: Vec<u8>,
    /// Cycles still available in that call context.
    pub cycles_available: u128,
    /// `msg_deadline`.
    pub deadline: u64,
    /// The call context was already answered.
    pub replied: bool,
    /// Instructions the call context's earlier messages executed (`performance_counter(1)`).
    pub context_instructions: u64,
}

/// See [`Delivery`].
#[derive(Debug, Clone)]
pub(crate) enum DeliveryKind {
    /// A call of `method`.
    Request { method: String, arg: Vec<u8> },
    /// The response to one of the canister's calls.
    Response {
        callbacks: Callbacks,
        result: Result<Vec<u8>, Reject>,
        refund: u128,
    },
    /// A system task: `canister_heartbeat` or `canister_global_timer` (the entry point says
    /// which). The global timer is deactivated before the task runs, and stays so even if the
    /// task traps, as on the IC.
    Task(EntryPoint),
}

/// The callbacks of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Callbacks {
    pub reply: Callback,
    pub reject: Callback,
    pub cleanup: Option<Callback>,
}

/// What executing a [`Delivery`] did.
#[derive(Debug, Clone)]
pub(crate) struct Executed {
    /// The message's outcome; `result` is the trap's reject if it trapped.
    pub outcome: Outcome,
    /// The message trapped (its changes were undone).
    pub trapped: bool,
    /// The message answered its call context (with `outcome.result`).
    pub responded: bool,
    /// Calls the message performed (none if it trapped).
    pub calls: Vec<OutgoingCall>,
    /// Cycles of the call context still available after the message.
    pub cycles_left: u128,
    /// The cleanup callback that ran after the callback trapped.
    pub cleanup: Option<Outcome>,
}

impl Executed {
    pub(super) fn from_run(run: Run, cleanup: Option<Outcome>) -> Self {
        Executed {
            outcome: run.outcome,
            trapped: run.trapped,
            responded: run.responded,
            calls: run.calls,
            cycles_left: run.cycles_left,
            cleanup,
        }
    }

    /// A request rejected before it ran (e.g. no such method).
    pub(super) fn rejected(reject: Reject, cycles_left: u128) -> Self {
        Executed {
            outcome: Outcome::rejected(reject),
            trapped: false,
            responded: true,
            calls: Vec::new(),
            cycles_left,
            cleanup: None,
        }
    }
}

impl Canister {
    /// Executes one message of a subnet (a request, or a response for one of this canister's
    /// calls) as its own transaction: everything but a trap commits, as on the IC (a reject or
    /// a missing reply does not undo the message's changes). After a callback traps and is
    /// rolled back, its cleanup callback (if any) runs as a transaction of its own.
    pub(crate) fn execute(&mut self, delivery: Delivery, time: u64) -> Result<Executed, Error> {
        let Delivery {
            kind,
            caller,
            cycles_available,
            deadline,
            replied,
            context_instructions,
        } = delivery;
        let base = |entry| MessageContext {
            caller: caller.clone(),
            cycles_available,
            deadline,
            replied,
            call_context_instructions: context_instructions,
            ..MessageContext::new(entry, time)
        };
        let executed = match kind {
            DeliveryKind::Request { method, arg } => {
                if self.is_composite(&method) && !self.methods.updates.contains(&method) {
                    let id = candid::Principal::from_slice(&self.system().canister_id).to_text();
                    self.tick(time);
                    return Ok(Executed::rejected(
                        Reject {
                            code: RejectCode::CanisterError,
                            message: format!(
                                "Canister {id}: composite query method '{method}' cannot be \
                                 called in replicated mode"
                            ),
                        },
                        cycles_available,
                    ));
                }
                let (entry, export) = if self.methods.updates.contains(&method) {
                    (EntryPoint::Update, format!("canister_update {method}"))
                } else if self.methods.queries.contains(&method) {
                    (
                        EntryPoint::ReplicatedQuery,
                        Methods::export_of_query(&self.exports, &method),
                    )
                } else {
                    let id = candid::Principal::from_slice(&self.system().canister_id).to_text();
                    self.tick(time);
                    return Ok(Executed::rejected(
                        Reject {
                            code: RejectCode::CanisterError,
                            message: format!("Canister {id} has no update method '{method}'"),
                        },
                        cycles_available,
                    ));
                };
                let ctx = MessageContext {
                    method: method.clone(),
                    arg,
                    ..base(entry)
                };
                let mark = self.mark();
                let mut run = self.run_target(Target::Export(&export), ctx);
                // A replicated query's changes are discarded; it makes no calls.
                let commit = !run.trapped && entry == EntryPoint::Update;
                if commit {
                    self.instance.ic0_mut().system.canister_version += 1;
                }
                if entry == EntryPoint::ReplicatedQuery {
                    run.calls.clear();
                }
                self.finish(mark, commit, &mut run.outcome)?;
                // A message that did not commit (a trap, or any replicated query) accepted
                // nothing: its acceptances were rolled back with the balance.
                if !commit {
                    run.cycles_left = cycles_available;
                }
                Executed::from_run(run, None)
            }
            DeliveryKind::Task(entry) => {
                let export = match entry {
                    EntryPoint::Heartbeat => "canister_heartbeat",
                    _ => "canister_global_timer",
                };
                if entry == EntryPoint::GlobalTimer {
                    self.instance.ic0_mut().system.global_timer = 0;
                }
                if !self.has_export(export) {
                    return Err(Error::Internal(format!(
                        "a system task for `{export}`, which the module does not export"
                    )));
                }
                let mark = self.mark();
                let mut run = self.run_target(Target::Export(export), base(entry));
                let commit = !run.trapped;
                if commit {
                    self.instance.ic0_mut().system.canister_version += 1;
                }
                self.finish(mark, commit, &mut run.outcome)?;
                Executed::from_run(run, None)
            }
            DeliveryKind::Response {
                callbacks,
                result,
                refund,
            } => {
                // Refunded cycles reach the balance whatever the callback does.
                self.instance.ic0_mut().system.cycle_balance =
                    self.system().cycle_balance.saturating_add(refund);
                let (entry, callback, arg, reject) = match result {
                    Ok(reply) => (EntryPoint::ReplyCallback, callbacks.reply, reply, None),
                    Err(r) => (
                        EntryPoint::RejectCallback,
                        callbacks.reject,
                        Vec::new(),
                        Some((r.code as u32, r.message)),
                    ),
                };
                let ctx = MessageContext {
                    arg,
                    cycles_refunded: refund,
                    reject: reject.clone(),
                    ..base(entry)
                };
                let mark = self.mark();
                let mut run = self.run_target(Target::Callback(callback), ctx);
                let commit = !run.trapped;
                if commit {
                    self.instance.ic0_mut().system.canister_version += 1;
                }
                self.finish(mark, commit, &mut run.outcome)?;
                let mut cleanup = None;
                if run.trapped {
                    run.cycles_left = cycles_available;
                    if let Some(cb) = callbacks.cleanup {
                        let ctx = MessageContext {
                            reject,
                            ..base(EntryPoint::Cleanup)
                        };
                        let mark = self.mark();
                        let mut c = self.run_target(Target::Callback(cb), ctx);
                        let commit = !c.trapped;
                        self.finish(mark, commit, &mut c.outcome)?;
                        cleanup = Some(c.outcome);
                    }
                }
                Executed::from_run(run, cleanup)
            }
        };
        self.tick(time);
        Ok(executed)
    }

    /// Whether `method` is a composite query method.
    pub(crate) fn is_composite(&self, method: &str) -> bool {
        self.methods.composite.iter().any(|m| m == method)
    }

    /// Runs `canister_inspect_message` for an ingress update of `method` with `arg` from
    /// `caller` at `time`, as the IC does before it accepts the message: its changes are
    /// discarded; the message is accepted when the hook calls `ic0.accept_message` (or when the
    /// module does not export the hook), refused with a reject otherwise or if it traps.
    pub(crate) fn inspect(
        &mut self,
        method: &str,
        arg: &[u8],
        caller: &[u8],
        time: u64,
    ) -> Result<Result<(), Reject>, Error> {
        const HOOK: &str = "canister_inspect_message";
        if !self.has_export(HOOK) {
            return Ok(Ok(()));
        }
        let ctx = MessageContext {
            method: method.to_string(),
            arg: arg.to_vec(),
            caller: caller.to_vec(),
            ..MessageContext::new(EntryPoint::InspectMessage, time)
        };
        let mark = self.mark();
        let mut run = self.run_target(Target::Export(HOOK), ctx);
        let accepted = self.instance.ic0_mut().ctx.accepted;
        self.finish(mark, false, &mut run.outcome)?;
        let id = candid::Principal::from_slice(&self.system().canister_id).to_text();
        Ok(match run.outcome.result {
            Err(reject) => Err(reject),
            Ok(_) if accepted => Ok(()),
            Ok(_) => Err(Reject {
                code: RejectCode::CanisterReject,
                message: format!(
                    "Canister {id} rejected the message: its canister_inspect_message did not \
                     call ic0.accept_message (method `{method}`)"
                ),
            }),
        })
    }
}
