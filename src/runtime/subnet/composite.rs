//! Composite queries: a query that calls query methods of other canisters (and of itself).
//!
//! A composite query is evaluated apart from the subnet's replicated queue, in the same
//! deterministic FIFO order: its root message and every callback run as messages of the
//! evaluation; a call to a composite query method opens a call context of its own, a call to a
//! plain query method runs that query (its changes are discarded at once); a call to anything
//! else is rejected. Within the evaluation a canister's messages see each other's changes (an
//! `await` in ic-cdk resumes in a callback that reads the state the method left); when the
//! evaluation ends, every change to every canister is undone ([`Canister::end_session`]).
//! Nothing is logged as a caused message: like any query, it changes no state.

use std::collections::{BTreeMap, VecDeque};

use candid::Principal;

use super::{CallOptions, Subnet, context_answer, not_found, runnable};
use crate::error::Error;
use crate::runtime::canister::{
    Callbacks, DirtyPages, MessageInput, Outcome, Reject, RejectCode, Run, Session, Target,
    did_not_reply,
};
use crate::runtime::ic0::api::{EntryPoint, MessageContext, OutgoingCall};

/// A call context of the evaluation.
struct Context {
    canister: Principal,
    caller: Principal,
    /// The pending call it answers (`None`: the user's query).
    origin: Option<u64>,
    responded: bool,
    outstanding: u32,
}

/// A call made in the evaluation, waiting for its response.
struct Pending {
    context: u64,
    callbacks: Callbacks,
}

enum Message {
    Request {
        call: u64,
        caller: Principal,
        callee: Principal,
        method: String,
        arg: Vec<u8>,
    },
    Response {
        call: u64,
        result: Result<Vec<u8>, Reject>,
    },
}

/// One composite query's evaluation.
struct Evaluation {
    sessions: BTreeMap<Principal, Session>,
    queue: VecDeque<Message>,
    contexts: BTreeMap<u64, Context>,
    calls: BTreeMap<u64, Pending>,
    next: u64,
    answer: Option<Result<Vec<u8>, Reject>>,
    time: u64,
}

impl Subnet {
    /// Evaluates composite query `method` of `canister` (which has one) for `options.caller`.
    /// The outcome's instructions and debug output are the root message's.
    pub(super) fn composite_query(
        &mut self,
        canister: Principal,
        method: &str,
        arg: &[u8],
        options: &CallOptions,
    ) -> Result<Outcome, Error> {
        let mut eval = Evaluation {
            sessions: BTreeMap::new(),
            queue: VecDeque::new(),
            contexts: BTreeMap::new(),
            calls: BTreeMap::new(),
            next: 0,
            answer: None,
            time: options.time.unwrap_or(self.time),
        };
        let ran = self.evaluate(&mut eval, canister, method, arg, options.caller);
        // Whatever happened, every canister the evaluation touched goes back.
        for (id, session) in std::mem::take(&mut eval.sessions) {
            if let Some(c) = self
                .canisters
                .get_mut(&id)
                .and_then(|s| s.canister.as_mut())
            {
                c.end_session(session)?;
            }
        }
        let mut outcome = ran?;
        outcome.result = eval
            .answer
            .take()
            .unwrap_or_else(|| Err(did_not_reply(canister.as_slice())));
        outcome.dirty = DirtyPages::default();
        Ok(outcome)
    }

    fn evaluate(
        &mut self,
        eval: &mut Evaluation,
        canister: Principal,
        method: &str,
        arg: &[u8],
        caller: Principal,
    ) -> Result<Outcome, Error> {
        let root = self.open_composite(eval, None, canister, caller, method, arg.to_vec())?;
        while let Some(message) = eval.queue.pop_front() {
            match message {
                Message::Request {
                    call,
                    caller,
                    callee,
                    method,
                    arg,
                } => self.deliver_composite(eval, call, caller, callee, &method, arg)?,
                Message::Response { call, result } => self.respond_composite(eval, call, result)?,
            }
        }
        Ok(root)
    }

    /// Runs composite query `method` of `canister` as a new call context answering `origin`.
    fn open_composite(
        &mut self,
        eval: &mut Evaluation,
        origin: Option<u64>,
        canister: Principal,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Outcome, Error> {
        eval.next += 1;
        let context = eval.next;
        eval.contexts.insert(
            context,
            Context {
                canister,
                caller,
                origin,
                responded: false,
                outstanding: 0,
            },
        );
        let ctx = MessageContext {
            method: method.to_string(),
            arg,
            caller: caller.as_slice().to_vec(),
            composite: true,
            // Only the query a user called gets a data certificate.
            certified: origin.is_none(),
            ..MessageContext::new(EntryPoint::CompositeQuery, eval.time)
        };
        let export = format!("canister_composite_query {method}");
        let run = self.run_composite(eval, canister, Target::Export(&export), ctx)?;
        let outcome = run.outcome.clone();
        self.after_composite(eval, context, run);
        Ok(outcome)
    }

    fn run_composite(
        &mut self,
        eval: &mut Evaluation,
        canister: Principal,
        target: Target<'_>,
        ctx: MessageContext,
    ) -> Result<Run, Error> {
        let c = self
            .canisters
            .get_mut(&canister)
            .and_then(|s| s.canister.as_mut())
            .ok_or_else(|| Error::Internal(format!("composite query on empty {canister}")))?;
        let session = eval
            .sessions
            .entry(canister)
            .or_insert_with(|| c.begin_session());
        c.session_message(session, target, ctx)
    }

    fn deliver_composite(
        &mut self,
        eval: &mut Evaluation,
        call: u64,
        caller: Principal,
        callee: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<(), Error> {
        let refusal = match self.canisters.get_mut(&callee) {
            None => Some(not_found(callee)),
            Some(slot) => match runnable(callee, slot) {
                Err(reject) => Some(reject),
                Ok(c) if c.is_composite(method) => None,
                Ok(c) if c.methods().queries.iter().any(|q| q == method) => {
                    // A plain query: it runs, and its changes go at once.
                    let input = MessageInput {
                        caller: Some(caller),
                        time: Some(eval.time),
                    };
                    let result = c.query_uncertified(method, &arg, &input)?.result;
                    eval.queue.push_back(Message::Response { call, result });
                    return Ok(());
                }
                Ok(_) => Some(Reject {
                    code: RejectCode::CanisterError,
                    message: format!(
                        "Canister {callee} has no query method '{method}': a composite query \
                         may call query and composite query methods only"
                    ),
                }),
            },
        };
        match refusal {
            Some(reject) => eval.queue.push_back(Message::Response {
                call,
                result: Err(reject),
            }),
            None => {
                self.open_composite(eval, Some(call), callee, caller, method, arg)?;
            }
        }
        Ok(())
    }

    fn respond_composite(
        &mut self,
        eval: &mut Evaluation,
        call: u64,
        result: Result<Vec<u8>, Reject>,
    ) -> Result<(), Error> {
        let pending = eval
            .calls
            .remove(&call)
            .ok_or_else(|| Error::Internal(format!("composite: unknown call {call}")))?;
        let context = eval
            .contexts
            .get_mut(&pending.context)
            .ok_or_else(|| Error::Internal(format!("composite: call {call} has no context")))?;
        context.outstanding -= 1;
        let (canister, caller, replied) = (context.canister, context.caller, context.responded);
        let (entry, callback, arg, reject) = match result {
            Ok(reply) => (
                EntryPoint::ReplyCallback,
                pending.callbacks.reply,
                reply,
                None,
            ),
            Err(r) => (
                EntryPoint::RejectCallback,
                pending.callbacks.reject,
                Vec::new(),
                Some((r.code as u32, r.message)),
            ),
        };
        let time = eval.time;
        let base = |entry| MessageContext {
            caller: caller.as_slice().to_vec(),
            replied,
            composite: true,
            ..MessageContext::new(entry, time)
        };
        let ctx = MessageContext {
            arg,
            reject: reject.clone(),
            ..base(entry)
        };
        let run = self.run_composite(eval, canister, Target::Callback(callback), ctx)?;
        if run.trapped
            && let Some(cleanup) = pending.callbacks.cleanup
        {
            let ctx = MessageContext {
                reject,
                ..base(EntryPoint::Cleanup)
            };
            self.run_composite(eval, canister, Target::Callback(cleanup), ctx)?;
        }
        self.after_composite(eval, pending.context, run);
        Ok(())
    }

    /// Sends the calls a message of the evaluation made and answers its context when complete
    /// (as [`Subnet`]'s replicated messages do).
    fn after_composite(&mut self, eval: &mut Evaluation, context_id: u64, run: Run) {
        let Some(context) = eval.contexts.get_mut(&context_id) else {
            return;
        };
        let canister = context.canister;
        for call in run.calls {
            let OutgoingCall {
                callee,
                method,
                arg,
                reply,
                reject,
                cleanup,
                ..
            } = call;
            context.outstanding += 1;
            eval.next += 1;
            let id = eval.next;
            eval.calls.insert(
                id,
                Pending {
                    context: context_id,
                    callbacks: Callbacks {
                        reply,
                        reject,
                        cleanup,
                    },
                },
            );
            match Principal::try_from_slice(&callee) {
                Ok(callee) => eval.queue.push_back(Message::Request {
                    call: id,
                    caller: canister,
                    callee,
                    method,
                    arg,
                }),
                Err(e) => eval.queue.push_back(Message::Response {
                    call: id,
                    result: Err(Reject {
                        code: RejectCode::DestinationInvalid,
                        message: format!("the callee is not a valid principal: {e}"),
                    }),
                }),
            }
        }
        let answer = context_answer(
            canister,
            context.responded,
            context.outstanding,
            run.responded,
            run.trapped,
            run.outcome.result,
        );
        if let Some(result) = answer {
            context.responded = true;
            match context.origin {
                None => eval.answer = Some(result),
                Some(call) => eval.queue.push_back(Message::Response { call, result }),
            }
        }
        if context.responded && context.outstanding == 0 {
            eval.contexts.remove(&context_id);
        }
    }
}
