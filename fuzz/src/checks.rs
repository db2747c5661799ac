//! The four checks and their verdicts.

use std::panic::{AssertUnwindSafe, catch_unwind};

use canister_vm::instrument::{Config, StableMode, instrument};

use crate::exec::wasmi_exec::WasmiExec;
use crate::exec::{
    BUDGET, Call, CallResult, Exec, InstantiateError, STABLE_LIMIT_PAGES, State, Value,
};
use crate::generate::{FUEL, Input};
use crate::module::{Layout, expose, validates};

/// A check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Plain wasmi vs instrumented wasmi (native and, with stable imports, system-API stable).
    PlainVsInstrumented,
    /// wasmi vs wasmtime, instrumented (strict, counter included) and plain.
    WasmiVsWasmtime,
    /// After every call, every changed 4 KiB page is marked in the write barrier's byte map.
    BarrierSoundness,
    /// Instrumentation never panics; its output validates; garbage is an error.
    InstrumentNeverPanics,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 4] = [
        Target::PlainVsInstrumented,
        Target::WasmiVsWasmtime,
        Target::BarrierSoundness,
        Target::InstrumentNeverPanics,
    ];

    /// The target's name (that of its cargo-fuzz target).
    pub fn name(self) -> &'static str {
        match self {
            Target::PlainVsInstrumented => "plain_vs_instrumented",
            Target::WasmiVsWasmtime => "wasmi_vs_wasmtime",
            Target::BarrierSoundness => "barrier_soundness",
            Target::InstrumentNeverPanics => "instrument_never_panics",
        }
    }

    /// Parses [`Target::name`].
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether this build can run the target (`wasmi_vs_wasmtime` needs feature `wasmtime`).
    pub fn is_available(self) -> bool {
        self != Target::WasmiVsWasmtime || cfg!(feature = "wasmtime")
    }
}

/// A difference that is expected and documented (README, "Fuzzing"), not a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Documented {
    /// The plain module produced a non-canonical NaN that the instrumented one canonicalizes:
    /// the mismatch disappears when the reference run is canonicalized too.
    NanPayload,
    /// One side overflowed its stack where the other did not (or at another depth):
    /// instrumentation adds locals, engines have different stacks.
    StackDepth,
    /// The metered side ran out of instructions where the unmetered side trapped otherwise: a
    /// bulk operation (`memory.fill/copy/init`, `table.fill/copy/init`) whose length alone
    /// exceeds the budget is charged before it runs, as the replica's instrumentation charges
    /// it, so it traps with the instruction limit before its bounds check.
    BulkCharge,
}

impl Documented {
    /// A short name for summaries.
    pub fn name(self) -> &'static str {
        match self {
            Documented::NanPayload => "nan-payload",
            Documented::StackDepth => "stack-depth",
            Documented::BulkCharge => "bulk-charge",
        }
    }
}

/// A mismatch, soundness violation or panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The class (`result`, `trap`, `memory`, `global`, `stable`, `counter`, `soundness`,
    /// `instantiate`, `engine-panic`, `instrument-panic`, `instrument-rejects`, `invalid-output`).
    pub class: &'static str,
    /// What differed, one line.
    pub detail: String,
}

/// A check's verdict on one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No difference.
    Pass,
    /// Only a documented difference (the run stops at it).
    Documented(Documented, String),
    /// Not checked (the generated module is outside canister-vm's feature set, or no calls).
    Skipped(String),
    /// A mismatch or violation.
    Finding(Finding),
}

/// The result of a check on one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Calls made (per compared pair, counted once).
    pub calls: u64,
}

impl Outcome {
    fn new(verdict: Verdict, calls: u64) -> Outcome {
        Outcome { verdict, calls }
    }
    /// The finding, if the verdict is one.
    pub fn finding(&self) -> Option<&Finding> {
        match &self.verdict {
            Verdict::Finding(f) => Some(f),
            _ => None,
        }
    }
}

fn finding(class: &'static str, detail: impl Into<String>) -> Verdict {
    Verdict::Finding(Finding {
        class,
        detail: detail.into(),
    })
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

/// Runs `f`, turning a panic into `Err(finding of class)`.
fn guard<T>(class: &'static str, what: &str, f: impl FnOnce() -> T) -> Result<T, Verdict> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|p| finding(class, format!("{what} panicked: {}", panic_message(&*p))))
}

/// The instrumentation settings the checks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The module as written.
    Plain,
    /// Everything, native stable memory.
    Native,
    /// Everything, system-API stable memory.
    Syscall,
    /// NaN canonicalization only: the reference that tells NaN-payload differences apart.
    NanOnly,
}

impl Setting {
    fn config(self) -> Option<Config> {
        let generic = Config::generic().stable_limit_pages(STABLE_LIMIT_PAGES);
        match self {
            Setting::Plain => None,
            Setting::Native => Some(generic.stable(StableMode::Native)),
            Setting::Syscall => Some(generic),
            Setting::NanOnly => Some(generic.metering(false).barrier(false)),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Setting::Plain => "plain",
            Setting::Native => "instrumented(native)",
            Setting::Syscall => "instrumented(syscall)",
            Setting::NanOnly => "nan-only",
        }
    }
    fn metered(self) -> bool {
        matches!(self, Setting::Native | Setting::Syscall)
    }
}

/// A module ready to run: exposed, validated, with its calls.
pub struct Prepared {
    /// The exposed plain module.
    pub plain: Vec<u8>,
    /// Its layout.
    pub layout: Layout,
    /// The calls.
    pub calls: Vec<Call>,
    /// wasm-smith's fuel global, reset before every call.
    pub fuel_global: Option<u32>,
}

impl Prepared {
    /// Exposes and validates `input`'s module.
    pub fn new(input: &Input) -> Result<Prepared, Verdict> {
        Self::from_parts(&input.wasm, input.calls.clone(), input.fuel_global)
    }

    /// Exposes and validates `wasm`, to be called with `calls`.
    pub fn from_parts(
        wasm: &[u8],
        calls: Vec<Call>,
        fuel_global: Option<u32>,
    ) -> Result<Prepared, Verdict> {
        if let Err(e) = validates(wasm) {
            return Err(Verdict::Skipped(format!("not valid for canister-vm: {e}")));
        }
        let plain = expose(wasm).map_err(|e| finding("expose", e.to_string()))?;
        let layout = Layout::of(&plain).map_err(|e| finding("expose", e.to_string()))?;
        Ok(Prepared {
            plain,
            layout,
            calls,
            fuel_global,
        })
    }

    /// The module for `setting` (instrumentation errors and panics are findings).
    pub fn module(&self, setting: Setting) -> Result<Vec<u8>, Verdict> {
        let Some(config) = setting.config() else {
            return Ok(self.plain.clone());
        };
        match guard("instrument-panic", "instrument", || {
            instrument(&self.plain, &config)
        })? {
            Ok(out) => Ok(out.wasm),
            Err(e) => Err(finding(
                "instrument-rejects",
                format!("{} rejected a valid module: {e}", setting.name()),
            )),
        }
    }
}

/// The engines a run can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// wasmi.
    Wasmi,
    /// wasmtime (feature `wasmtime`).
    #[cfg(feature = "wasmtime")]
    Wasmtime,
}

/// One side of a comparison.
struct Side {
    label: String,
    metered: bool,
    exec: Box<dyn Exec>,
}

fn instantiate(
    engine: Engine,
    wasm: &[u8],
    layout: &Layout,
) -> Result<Result<Box<dyn Exec>, InstantiateError>, Verdict> {
    match engine {
        Engine::Wasmi => guard("engine-panic", "wasmi compile/instantiate", || {
            WasmiExec::new(wasm, layout).map(|e| Box::new(e) as Box<dyn Exec>)
        }),
        #[cfg(feature = "wasmtime")]
        Engine::Wasmtime => guard("engine-panic", "wasmtime compile/instantiate", || {
            crate::exec::wasmtime_exec::WasmtimeExec::new(wasm, layout)
                .map(|e| Box::new(e) as Box<dyn Exec>)
        }),
    }
}

/// A comparison's result: calls made, or the calls made until the first divergence.
type Compared = Result<u64, (u64, Divergence)>;

/// Where two sides first differed.
struct Divergence {
    class: &'static str,
    detail: String,
    stack_overflow: bool,
    /// The divergence is one side's instruction limit against another trap (see
    /// [`Documented::BulkCharge`]).
    bulk_charge: bool,
}

/// The first difference between two states, if any.
fn diff_states(a: &State, b: &State) -> Option<(&'static str, String)> {
    for (i, (x, y)) in a.memories.iter().zip(&b.memories).enumerate() {
        if x != y {
            return Some(("memory", describe_bytes(&format!("memory {i}"), x, y)));
        }
    }
    for (i, (x, y)) in a.globals.iter().zip(&b.globals).enumerate() {
        if x != y {
            return Some(("global", format!("global {i}: {x:?} vs {y:?}")));
        }
    }
    if a.stable != b.stable {
        return Some((
            "stable",
            describe_bytes("stable memory", &a.stable, &b.stable),
        ));
    }
    None
}

fn describe_bytes(what: &str, x: &[u8], y: &[u8]) -> String {
    if x.len() != y.len() {
        return format!("{what}: {} vs {} bytes", x.len(), y.len());
    }
    let first = x.iter().zip(y).position(|(a, b)| a != b).unwrap_or(0);
    let end = (first + 8).min(x.len());
    format!(
        "{what}: first difference at byte {first} (page {}): {:02x?} vs {:02x?}",
        first / 4096,
        &x[first..end],
        &y[first..end]
    )
}

/// Runs `sides` in lockstep over the calls, comparing each with `sides[0]` after instantiation
/// and after every call. Returns the calls made, or the first divergence.
fn lockstep(prepared: &Prepared, sides: &mut [Side], compare_counters: bool) -> Compared {
    let layout = &prepared.layout;
    let base: Vec<State> = sides.iter_mut().map(|s| s.exec.state(layout)).collect();
    for (i, state) in base.iter().enumerate().skip(1) {
        if let Some((class, detail)) = diff_states(&base[0], state) {
            let detail = format!(
                "after instantiation, {} vs {}: {detail}",
                sides[0].label, sides[i].label
            );
            return Err((
                0,
                Divergence {
                    class,
                    detail,
                    stack_overflow: false,
                    bulk_charge: false,
                },
            ));
        }
    }
    let mut calls = 0;
    for (n, call) in prepared.calls.iter().enumerate() {
        let mut outcomes = Vec::with_capacity(sides.len());
        for side in sides.iter_mut() {
            if let Some(g) = prepared.fuel_global {
                side.exec.set_global(g, Value::I32(FUEL as i32));
            }
            side.exec.set_counter(BUDGET);
            let result = side.exec.call(call);
            let used = if side.metered {
                side.exec.counter().map(|c| BUDGET - c)
            } else {
                None
            };
            let state = side.exec.state(layout);
            outcomes.push((result, used, state));
        }
        calls += 1;
        let stack_overflow = outcomes.iter().any(|(r, _, _)| r.is_stack_overflow());
        let at = |i: usize| format!("call #{n} {call}: {} vs {}", sides[0].label, sides[i].label);
        for i in 1..sides.len() {
            let (r0, _, s0) = &outcomes[0];
            let (ri, _, si) = &outcomes[i];
            let bulk_charge = matches!(
                (r0, ri),
                (CallResult::Trapped(a), CallResult::Trapped(b))
                    if (a == "instruction limit") != (b == "instruction limit")
            );
            let diverge = |class: &'static str, detail: String| {
                Err((
                    calls,
                    Divergence {
                        class,
                        detail: format!("{}: {detail}", at(i)),
                        stack_overflow,
                        bulk_charge,
                    },
                ))
            };
            if r0 != ri {
                let class = match (r0, ri) {
                    (CallResult::Returned(_), CallResult::Returned(_)) => "result",
                    _ => "trap",
                };
                return diverge(class, format!("{r0:?} vs {ri:?}"));
            }
            if let Some((class, detail)) = diff_states(s0, si) {
                return diverge(class, format!("{detail} (both {r0:?})"));
            }
        }
        if compare_counters {
            let metered: Vec<(usize, i64)> = outcomes
                .iter()
                .enumerate()
                .filter_map(|(i, (_, used, _))| used.map(|u| (i, u)))
                .collect();
            if let Some(&(first, u0)) = metered.first()
                && let Some(&(i, ui)) = metered.iter().find(|(_, u)| *u != u0)
            {
                return Err((
                    calls,
                    Divergence {
                        class: "counter",
                        detail: format!(
                            "call #{n} {call}: {} counted {u0} instructions, {} counted {ui}",
                            sides[first].label, sides[i].label
                        ),
                        stack_overflow,
                        bulk_charge: false,
                    },
                ));
            }
        }
        // A stack overflow on every side ends the comparison: the depth it hit may differ.
        if stack_overflow {
            break;
        }
    }
    Ok(calls)
}

/// Instantiates `settings` on `engines` (pairwise) and runs them in lockstep.
fn compare(
    prepared: &Prepared,
    sides: &[(Engine, Setting)],
    compare_counters: bool,
) -> Result<Compared, Verdict> {
    let mut built: Vec<Side> = Vec::new();
    let mut first_err: Option<(String, InstantiateError)> = None;
    for &(engine, setting) in sides {
        let wasm = prepared.module(setting)?;
        let label = format!("{}/{engine:?}", setting.name()).to_lowercase();
        match instantiate(engine, &wasm, &prepared.layout)? {
            Ok(exec) => {
                if let Some((l, e)) = &first_err {
                    return Err(finding(
                        "instantiate",
                        format!("{l} failed ({e:?}) but {label} instantiated"),
                    ));
                }
                built.push(Side {
                    label,
                    metered: setting.metered(),
                    exec,
                });
            }
            Err(e) => {
                // Every side must fail alike: the same trap, or rejected by both engines' rules.
                let alike = |a: &InstantiateError| match (a, &e) {
                    (InstantiateError::Rejected(_), InstantiateError::Rejected(_)) => true,
                    (a, e) => a == e,
                };
                if !built.is_empty() {
                    return Err(finding(
                        "instantiate",
                        format!("{} instantiated but {label} failed: {e:?}", built[0].label),
                    ));
                }
                if let Some((l, first)) = &first_err
                    && !alike(first)
                {
                    return Err(finding(
                        "instantiate",
                        format!("{l}: {first:?}, {label}: {e:?}"),
                    ));
                }
                first_err.get_or_insert((label, e));
            }
        }
    }
    match first_err {
        // Every side rejected the module at instantiation (wasmi reports an active segment out
        // of bounds as an error, not a trap): counted as skipped.
        Some((label, InstantiateError::Rejected(why))) => {
            return Err(Verdict::Skipped(format!("{label} rejects: {why}")));
        }
        // Every side trapped the same way while instantiating.
        Some(_) => return Ok(Ok(0)),
        None => {}
    }
    guard("engine-panic", "a call", || {
        lockstep(prepared, &mut built, compare_counters)
    })
}

/// Checks `input` with `target`.
pub fn check(target: Target, input: &Input) -> Outcome {
    match target {
        Target::InstrumentNeverPanics => instrument_never_panics(&input.wasm, &[]),
        _ => match Prepared::new(input) {
            Ok(prepared) => check_prepared(target, &prepared),
            Err(verdict) => Outcome::new(verdict, 0),
        },
    }
}

/// Checks an already prepared module (the repro tests build theirs by hand).
pub fn check_prepared(target: Target, prepared: &Prepared) -> Outcome {
    let result = match target {
        Target::PlainVsInstrumented => plain_vs_instrumented(prepared),
        Target::WasmiVsWasmtime => wasmi_vs_wasmtime(prepared),
        Target::BarrierSoundness => barrier_soundness(prepared),
        Target::InstrumentNeverPanics => return instrument_never_panics(&prepared.plain, &[]),
    };
    match result {
        Ok(outcome) => outcome,
        Err(verdict) => Outcome::new(verdict, 0),
    }
}

/// Turns a divergence into a verdict: stack overflows are documented; anything else is a
/// NaN-payload difference if `nan_reference` (the same comparison with the reference side
/// canonicalized) passes, or a finding.
fn classify(
    calls: u64,
    divergence: Divergence,
    nan_reference: Option<&dyn Fn() -> Result<Compared, Verdict>>,
) -> Outcome {
    if divergence.stack_overflow {
        return Outcome::new(
            Verdict::Documented(Documented::StackDepth, divergence.detail),
            calls,
        );
    }
    if divergence.bulk_charge {
        return Outcome::new(
            Verdict::Documented(Documented::BulkCharge, divergence.detail),
            calls,
        );
    }
    if let Some(reference) = nan_reference {
        match reference() {
            Ok(Ok(_)) => {
                return Outcome::new(
                    Verdict::Documented(Documented::NanPayload, divergence.detail),
                    calls,
                );
            }
            Ok(Err((_, d))) if d.stack_overflow => {
                return Outcome::new(Verdict::Documented(Documented::StackDepth, d.detail), calls);
            }
            _ => {}
        }
    }
    Outcome::new(finding(divergence.class, divergence.detail), calls)
}

fn plain_vs_instrumented(prepared: &Prepared) -> Result<Outcome, Verdict> {
    let mut settings = vec![Setting::Plain, Setting::Native];
    if prepared.layout.imports_stable {
        settings.push(Setting::Syscall);
    }
    let sides: Vec<_> = settings.iter().map(|s| (Engine::Wasmi, *s)).collect();
    match compare(prepared, &sides, true)? {
        Ok(calls) => Ok(Outcome::new(Verdict::Pass, calls)),
        Err((calls, d)) => {
            let reference = || {
                let mut sides = sides.clone();
                sides[0].1 = Setting::NanOnly;
                compare(prepared, &sides, true)
            };
            Ok(classify(calls, d, Some(&reference)))
        }
    }
}

#[cfg(feature = "wasmtime")]
fn wasmi_vs_wasmtime(prepared: &Prepared) -> Result<Outcome, Verdict> {
    let mut calls = 0;
    // Instrumented: strict (canonical NaNs, same counter).
    let mut settings = vec![Setting::Native];
    if prepared.layout.imports_stable {
        settings.push(Setting::Syscall);
    }
    for setting in settings {
        let sides = [(Engine::Wasmi, setting), (Engine::Wasmtime, setting)];
        match compare(prepared, &sides, true)? {
            Ok(n) => calls += n,
            Err((n, d)) => return Ok(classify(calls + n, d, None)),
        }
    }
    // Plain: engine bugs that plain canister code can hit; NaN payloads may differ.
    let sides = [
        (Engine::Wasmi, Setting::Plain),
        (Engine::Wasmtime, Setting::Plain),
    ];
    match compare(prepared, &sides, false)? {
        Ok(n) => Ok(Outcome::new(Verdict::Pass, calls + n)),
        Err((n, d)) => {
            let reference = || {
                compare(
                    prepared,
                    &[
                        (Engine::Wasmi, Setting::NanOnly),
                        (Engine::Wasmtime, Setting::NanOnly),
                    ],
                    false,
                )
            };
            Ok(classify(calls + n, d, Some(&reference)))
        }
    }
}

#[cfg(not(feature = "wasmtime"))]
fn wasmi_vs_wasmtime(_prepared: &Prepared) -> Result<Outcome, Verdict> {
    Err(Verdict::Skipped(
        "wasmi_vs_wasmtime needs the `wasmtime` feature".into(),
    ))
}

/// The 4 KiB pages whose bytes differ (bytes past the old end count as changed if non-zero).
pub fn changed_pages(before: &[u8], after: &[u8]) -> Vec<u64> {
    const PAGE: usize = 4096;
    after
        .chunks(PAGE)
        .enumerate()
        .filter(|(page, now)| {
            let start = page * PAGE;
            let old = before
                .get(start..before.len().min(start + now.len()))
                .unwrap_or(&[]);
            now[..old.len()] != *old || now[old.len()..].iter().any(|b| *b != 0)
        })
        .map(|(page, _)| page as u64)
        .collect()
}

fn barrier_soundness(prepared: &Prepared) -> Result<Outcome, Verdict> {
    let mut settings = vec![Setting::Native];
    if prepared.layout.imports_stable {
        settings.push(Setting::Syscall);
    }
    let layout = &prepared.layout;
    let mut calls = 0;
    for setting in settings {
        let wasm = prepared.module(setting)?;
        let mut exec = match instantiate(Engine::Wasmi, &wasm, layout)? {
            Ok(exec) => exec,
            Err(InstantiateError::Trapped(_)) => continue,
            Err(InstantiateError::Rejected(why)) => {
                return Err(Verdict::Skipped(format!(
                    "{} rejects: {why}",
                    setting.name()
                )));
            }
        };
        // Memory index `layout.memories` is native stable memory, if present.
        let tracked = layout.memories + u32::from(setting == Setting::Native);
        for (n, call) in prepared.calls.iter().enumerate() {
            for k in 0..tracked {
                if let Some(map) = exec.dirty_map(k) {
                    map.fill(0);
                }
            }
            exec.take_host_dirty();
            let before: Vec<Vec<u8>> = (0..tracked)
                .map(|k| exec.raw_memory(k).map(<[u8]>::to_vec).unwrap_or_default())
                .collect();
            let stable_before = exec.stable().to_vec();
            if let Some(g) = prepared.fuel_global {
                exec.set_global(g, Value::I32(FUEL as i32));
            }
            exec.set_counter(BUDGET);
            let result = guard("engine-panic", "a call", || exec.call(call))?;
            calls += 1;
            let (heap_dirty, stable_dirty) = exec.take_host_dirty();
            for (k, old) in before.iter().enumerate() {
                let k = k as u32;
                let now = exec.raw_memory(k).map(<[u8]>::to_vec).unwrap_or_default();
                for page in changed_pages(old, &now) {
                    let marked = exec
                        .dirty_map(k)
                        .and_then(|m| m.get(page as usize).copied())
                        .is_some_and(|b| b != 0)
                        || (k == 0 && heap_dirty.contains(&page));
                    if !marked {
                        return Ok(Outcome::new(
                            finding(
                                "soundness",
                                format!(
                                    "{}: call #{n} {call} ({result:?}) changed page {page} of \
                                     memory {k} but the byte map does not mark it",
                                    setting.name()
                                ),
                            ),
                            calls,
                        ));
                    }
                }
            }
            if setting == Setting::Syscall {
                for page in changed_pages(&stable_before, exec.stable()) {
                    if !stable_dirty.contains(&page) {
                        return Ok(Outcome::new(
                            finding(
                                "soundness",
                                format!(
                                    "{}: call #{n} {call} changed stable page {page} unrecorded",
                                    setting.name()
                                ),
                            ),
                            calls,
                        ));
                    }
                }
            }
            if result.is_stack_overflow() {
                break;
            }
        }
    }
    Ok(Outcome::new(Verdict::Pass, calls))
}

/// Instruments `wasm` with every setting and `extra` inputs as garbage: no panic, every output
/// validates, a valid module is accepted by the generic settings.
pub fn instrument_never_panics(wasm: &[u8], extra: &[&[u8]]) -> Outcome {
    let valid = validates(wasm).is_ok();
    let settings: [(&str, Config, bool); 5] = [
        ("generic/native", Setting::Native.config().unwrap(), true),
        ("generic/syscall", Setting::Syscall.config().unwrap(), true),
        ("generic/nan-only", Setting::NanOnly.config().unwrap(), true),
        ("canister/native", Config::default(), false),
        (
            "canister/syscall",
            Config::default().stable(StableMode::Syscall),
            false,
        ),
    ];
    let mut runs = 0;
    let mut one =
        |name: &str, bytes: &[u8], config: &Config, must_accept: bool| -> Result<(), Verdict> {
            runs += 1;
            match guard("instrument-panic", name, || instrument(bytes, config))? {
                Ok(out) => match validates(&out.wasm) {
                    Ok(()) => Ok(()),
                    Err(e) => Err(finding(
                        "invalid-output",
                        format!("{name}: output does not validate: {e}"),
                    )),
                },
                Err(e) if must_accept => Err(finding(
                    "instrument-rejects",
                    format!("{name} rejected a valid module: {e}"),
                )),
                Err(_) => Ok(()),
            }
        };
    let mut run = || -> Result<(), Verdict> {
        for (name, config, generic) in &settings {
            one(name, wasm, config, valid && *generic)?;
        }
        // Garbage and mutated modules: errors are fine, panics and invalid output are not.
        for (i, bytes) in extra.iter().enumerate() {
            one(&format!("garbage #{i}"), bytes, &Config::default(), false)?;
        }
        for (i, mutant) in mutants(wasm).iter().enumerate() {
            for (name, config, _) in &settings[..2] {
                one(&format!("mutant #{i} {name}"), mutant, config, false)?;
            }
        }
        Ok(())
    };
    let verdict = match run() {
        Ok(()) if valid => Verdict::Pass,
        Ok(()) => Verdict::Skipped("not valid for canister-vm".into()),
        Err(v) => v,
    };
    Outcome::new(verdict, runs)
}

/// A few mutations of `wasm` (one byte changed, truncations), deterministic.
fn mutants(wasm: &[u8]) -> Vec<Vec<u8>> {
    if wasm.len() < 9 {
        return Vec::new();
    }
    let mut rng = fastrand::Rng::with_seed(wasm.len() as u64);
    let mut out = Vec::new();
    for _ in 0..4 {
        let mut m = wasm.to_vec();
        let i = rng.usize(8..m.len());
        m[i] = rng.u8(..);
        out.push(m);
    }
    out.push(wasm[..rng.usize(8..wasm.len())].to_vec());
    out
}

/// Checks the input of `seed`.
pub fn check_seed(target: Target, seed: u64) -> Outcome {
    if crate::generate::uses_store_generator(target, seed) {
        return match guard("generator-panic", "store generator", || {
            crate::generate::stores_module(seed)
        }) {
            Ok(input) => check(target, &input),
            Err(v) => Outcome::new(v, 0),
        };
    }
    let data = crate::generate::seed_bytes(seed);
    check_data(target, &data)
}

/// Checks the input built from `data` (a libFuzzer input, or a seed's bytes).
pub fn check_data(target: Target, data: &[u8]) -> Outcome {
    let input = match guard("generator-panic", "wasm-smith", || Input::new(data)) {
        Ok(Ok(input)) => input,
        Ok(Err(e)) => return Outcome::new(Verdict::Skipped(format!("generator: {e}")), 0),
        Err(v) => return Outcome::new(v, 0),
    };
    match target {
        Target::InstrumentNeverPanics => instrument_never_panics(&input.wasm, &[data]),
        _ => check(target, &input),
    }
}
