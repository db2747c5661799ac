//! Executes the directives of one `.wast` file on wasmi with canister-vm's engine configuration.
//!
//! Every directive is one check: commands (`module`, `register`, `invoke`) must succeed, and
//! assertions must hold. Trap and error messages are not compared with the suite's expected text
//! (engines word them differently); the *kind* of outcome is: a trap, a link error, a rejected
//! module.

use std::collections::HashMap;

use wasmi::errors::{ErrorKind, InstantiationError};
use wasmi::{
    Engine, ExternRef, F32, F64, Instance, Linker, Module, Nullable, Store, TrapCode, V128, Val,
};
use wast::core::{AbstractHeapType, HeapType, NanPattern, V128Pattern, WastArgCore, WastRetCore};
use wast::token::{F32 as WastF32, F64 as WastF64, Id, Span};
use wast::{
    QuoteWat, QuoteWatTest, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet,
};

use wasmparser::{Validator, WasmFeatures};

use crate::manifest::ScopeEntry;
use crate::mode::{Hooks, Mode};
use crate::soundness::DirtyCheck;
use crate::spectest_host;

/// The outcome of one directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The check held.
    Pass,
    /// The check failed, and why.
    Fail(String),
    /// The check was not run, and why (an out-of-scope module, or one depending on it).
    Skip(String),
}

impl From<Result<(), String>> for Outcome {
    fn from(result: Result<(), String>) -> Self {
        match result {
            Ok(()) => Outcome::Pass,
            Err(message) => Outcome::Fail(message),
        }
    }
}

type Check = Result<(), String>;

/// An instance, or the stand-in for a module that was out of scope (with the reason).
#[derive(Debug, Clone)]
enum Target<T> {
    Live(T),
    OutOfScope(String),
    /// The module directive failed; directives aimed at it fail too.
    Failed(String),
}

/// Why executing an action or instantiating a module did not produce values.
#[derive(Debug)]
enum ExecError {
    /// The engine trapped (or instantiation failed while running: a start function, a segment).
    Trap(wasmi::Error),
    /// Instantiation failed on imports.
    Link(wasmi::Error),
    /// The module did not encode, compile or transform, or the harness could not run the action.
    Harness(String),
    /// The target is out of scope (the reason).
    Skip(String),
}

impl From<ExecError> for Outcome {
    fn from(error: ExecError) -> Self {
        match error {
            ExecError::Skip(reason) => Outcome::Skip(reason),
            other => Outcome::Fail(other.to_string()),
        }
    }
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::Trap(e) => write!(f, "trap: {e}"),
            ExecError::Link(e) => write!(f, "link error: {e}"),
            ExecError::Harness(e) => f.write_str(e),
            ExecError::Skip(reason) => write!(f, "skipped: {reason}"),
        }
    }
}

/// One file's execution state: a store, a linker holding `spectest` and the registered modules.
pub(crate) struct Runner<'h> {
    engine: Engine,
    store: Store<()>,
    linker: Linker<()>,
    mode: Mode,
    hooks: &'h Hooks,
    /// The most recently instantiated module: the default target of actions.
    current: Option<Target<Instance>>,
    /// Instances by their `$id`.
    named: HashMap<String, Target<Instance>>,
    /// `module definition`s by their `$id`, and the last one.
    definitions: HashMap<String, Target<Module>>,
    last_definition: Option<Target<Module>>,
    /// Names registered by out-of-scope modules, with the reason: importers are out of scope too.
    out_of_scope_names: HashMap<String, String>,
    /// The file's `needs=` entry: modules rejected for needing these features are out of scope.
    partial_scope: Option<&'h ScopeEntry>,
    /// How many modules `partial_scope` put out of scope.
    pub(crate) feature_skips: usize,
    /// Soundness mode's state.
    dirty: Option<DirtyCheck>,
}

impl<'h> Runner<'h> {
    pub(crate) fn new(
        mode: Mode,
        hooks: &'h Hooks,
        partial_scope: Option<&'h ScopeEntry>,
    ) -> Result<Self, String> {
        let engine = Engine::new(&canister_vm::runtime::engine::engine_config());
        let mut store = Store::new(&engine, ());
        let mut linker = Linker::new(&engine);
        // The suite registers the same name more than once (e.g. after re-instantiating).
        linker.allow_shadowing(true);
        spectest_host::define(&mut store, &mut linker)
            .map_err(|e| format!("defining spectest: {e}"))?;
        if let (true, Some(link_host)) = (mode.instruments(), hooks.link_host) {
            link_host(&mut linker)
                .map_err(|e| format!("defining the instrumentation host: {e}"))?;
        }
        let dirty = match (mode.checks_dirty_pages(), hooks.dirty_byte) {
            (true, Some(layout)) => Some(DirtyCheck::new(layout)),
            (true, None) => return Err("soundness mode needs Hooks::dirty_byte".into()),
            (false, _) => None,
        };
        Ok(Runner {
            engine,
            store,
            linker,
            mode,
            hooks,
            current: None,
            named: HashMap::new(),
            definitions: HashMap::new(),
            last_definition: None,
            out_of_scope_names: HashMap::new(),
            partial_scope,
            feature_skips: 0,
            dirty,
        })
    }

    /// Runs one directive.
    pub(crate) fn run(&mut self, directive: WastDirective<'_>) -> Outcome {
        match directive {
            WastDirective::Module(mut module) => {
                let id = module.name();
                let target = match self.build(&mut module) {
                    Ok(module) => match self.instantiate(&module) {
                        Ok(instance) => Ok(Target::Live(instance)),
                        Err(e) => Err(ExecError::Harness(e.to_string())),
                    },
                    Err(e) => Err(e),
                };
                self.settle(target, |runner, target| runner.set_current(target, id))
            }
            WastDirective::ModuleDefinition(mut module) => {
                let id = module.name();
                let target = self.build(&mut module).map(Target::Live);
                self.settle(target, |runner, target| runner.set_definition(target, id))
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let definition = match module {
                    Some(id) => self.definitions.get(id.name()).cloned(),
                    None => self.last_definition.clone(),
                };
                let target = match definition {
                    None => Err(ExecError::Harness("no such module definition".into())),
                    Some(Target::OutOfScope(reason)) => Err(ExecError::Skip(reason)),
                    Some(Target::Failed(why)) => Err(ExecError::Harness(format!(
                        "the module definition failed earlier ({why})"
                    ))),
                    Some(Target::Live(module)) => match self.instantiate(&module) {
                        Ok(inst) => Ok(Target::Live(inst)),
                        Err(e) => Err(ExecError::Harness(e.to_string())),
                    },
                };
                self.settle(target, |runner, target| {
                    runner.set_current(target, instance)
                })
            }
            WastDirective::Register { name, module, .. } => match self.instance(module) {
                Ok(instance) => self
                    .linker
                    .instance(&mut self.store, name, instance)
                    .map(drop)
                    .map_err(|e| format!("register {name:?}: {e}"))
                    .into(),
                Err(ExecError::Skip(reason)) => {
                    self.out_of_scope_names
                        .insert(name.to_owned(), reason.clone());
                    Outcome::Skip(reason)
                }
                Err(e) => Outcome::Fail(e.to_string()),
            },
            WastDirective::Invoke(invoke) => match self.invoke(&invoke) {
                Ok(_) => Outcome::Pass,
                Err(e) => e.into(),
            },
            WastDirective::AssertReturn { exec, results, .. } => match self.execute(exec) {
                Ok(actual) => self.match_results(&actual, &results).into(),
                Err(ExecError::Skip(reason)) => Outcome::Skip(reason),
                Err(e) => Outcome::Fail(format!("expected values, got {e}")),
            },
            WastDirective::AssertTrap { exec, .. } => match self.execute(exec) {
                Err(ExecError::Trap(_)) => Outcome::Pass,
                Err(ExecError::Skip(reason)) => Outcome::Skip(reason),
                Ok(values) => Outcome::Fail(format!("expected a trap, got {values:?}")),
                Err(e) => Outcome::Fail(format!("expected a trap, got {e}")),
            },
            WastDirective::AssertExhaustion { call, .. } => match self.invoke(&call) {
                Err(ExecError::Trap(e)) if e.as_trap_code() == Some(TrapCode::StackOverflow) => {
                    Outcome::Pass
                }
                Err(ExecError::Skip(reason)) => Outcome::Skip(reason),
                Ok(values) => Outcome::Fail(format!("expected exhaustion, got {values:?}")),
                Err(e) => Outcome::Fail(format!("expected exhaustion, got {e}")),
            },
            WastDirective::AssertInvalid { module, .. } => {
                self.expect_rejected(module, "invalid").into()
            }
            WastDirective::AssertMalformed { module, .. } => {
                self.expect_rejected(module, "malformed").into()
            }
            WastDirective::AssertInvalidCustom { module, .. }
            | WastDirective::AssertMalformedCustom { module, .. } => {
                self.expect_custom_ignored(module).into()
            }
            WastDirective::AssertUnlinkable { module, .. } => {
                let mut module = QuoteWat::Wat(module);
                match self.build(&mut module).map(|m| self.instantiate(&m)) {
                    Ok(Err(ExecError::Link(_))) => Outcome::Pass,
                    Ok(Ok(_)) => Outcome::Fail("expected a link error, it instantiated".into()),
                    Ok(Err(e)) | Err(e) => match e {
                        ExecError::Skip(reason) => Outcome::Skip(reason),
                        e => Outcome::Fail(format!("expected a link error, got {e}")),
                    },
                }
            }
            WastDirective::AssertException { .. } => {
                Outcome::Fail("assert_exception: exception handling is not supported".into())
            }
            WastDirective::AssertSuspension { .. } => {
                Outcome::Fail("assert_suspension: stack switching is not supported".into())
            }
            WastDirective::Thread(_) | WastDirective::Wait { .. } => {
                Outcome::Fail("thread/wait: threads are not supported".into())
            }
        }
    }

    /// Records the result of a module directive: `Skip` and failures leave a stand-in so later
    /// directives aimed at this module skip or fail instead of hitting an older module.
    fn settle<T>(
        &mut self,
        result: Result<Target<T>, ExecError>,
        record: impl FnOnce(&mut Self, Target<T>),
    ) -> Outcome {
        match result {
            Ok(target) => {
                record(self, target);
                Outcome::Pass
            }
            Err(ExecError::Skip(reason)) => {
                record(self, Target::OutOfScope(reason.clone()));
                Outcome::Skip(reason)
            }
            Err(e) => {
                record(self, Target::Failed(e.to_string()));
                Outcome::Fail(e.to_string())
            }
        }
    }

    fn set_current(&mut self, target: Target<Instance>, id: Option<Id<'_>>) {
        if let Some(id) = id {
            self.named.insert(id.name().to_owned(), target.clone());
        }
        self.current = Some(target);
    }

    fn set_definition(&mut self, target: Target<Module>, id: Option<Id<'_>>) {
        if let Some(id) = id {
            self.definitions
                .insert(id.name().to_owned(), target.clone());
        }
        self.last_definition = Some(target);
    }

    fn instance(&self, id: Option<Id<'_>>) -> Result<Instance, ExecError> {
        let target = match id {
            Some(id) => self.named.get(id.name()),
            None => self.current.as_ref(),
        };
        match target {
            Some(Target::Live(instance)) => Ok(*instance),
            Some(Target::OutOfScope(reason)) => Err(ExecError::Skip(reason.clone())),
            Some(Target::Failed(why)) => Err(ExecError::Harness(format!(
                "the target module failed earlier ({why})"
            ))),
            None => Err(ExecError::Harness(match id {
                Some(id) => format!("no module named ${}", id.name()),
                None => "no module instantiated yet".into(),
            })),
        }
    }

    /// Encodes and compiles a module, unless it is out of scope: it imports from an out-of-scope
    /// module, or it is rejected and needs a feature of the file's `needs=` entry.
    fn build(&mut self, module: &mut QuoteWat<'_>) -> Result<Module, ExecError> {
        let bytes = module
            .encode()
            .map_err(|e| ExecError::Harness(format!("module does not encode: {e}")))?;
        if let Some(reason) = self.imports_out_of_scope(&bytes) {
            return Err(ExecError::Skip(reason));
        }
        self.compile(&bytes)
            .map_err(|error| match self.partial_scope {
                Some(scope) if needs_any(&bytes, scope.needs) => {
                    self.feature_skips += 1;
                    ExecError::Skip(format!("out of scope: {}", scope.reason))
                }
                _ => ExecError::Harness(error),
            })
    }

    /// The reason, if `wasm` imports from a name an out-of-scope module registered.
    fn imports_out_of_scope(&self, wasm: &[u8]) -> Option<String> {
        if self.out_of_scope_names.is_empty() {
            return None;
        }
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            if let Ok(wasmparser::Payload::ImportSection(reader)) = payload {
                for import in reader.into_iter().flatten() {
                    if let Some(reason) = self.out_of_scope_names.get(import.module) {
                        return Some(format!("imports {:?}: {reason}", import.module));
                    }
                }
            }
        }
        None
    }

    /// Transforms (in the instrumented modes) and compiles `bytes`.
    fn compile(&self, bytes: &[u8]) -> Result<Module, String> {
        let transformed;
        let mut bytes = bytes;
        if self.mode.instruments() {
            let instrument = self.hooks.instrument.ok_or("no instrumentation hook")?;
            transformed = instrument(bytes).map_err(|e| format!("instrumentation failed: {e}"))?;
            bytes = &transformed;
        }
        let exported;
        if let Some(dirty) = &self.dirty {
            exported = dirty.prepare(bytes)?;
            bytes = &exported;
        }
        Module::new(&self.engine, bytes).map_err(|e| format!("module rejected: {e}"))
    }

    fn instantiate(&mut self, module: &Module) -> Result<Instance, ExecError> {
        let instance = self
            .linker
            .instantiate_and_start(&mut self.store, module)
            .map_err(classify)?;
        if let Some(dirty) = &mut self.dirty {
            dirty.add_instance(&self.store, instance);
        }
        Ok(instance)
    }

    /// Passes if the module fails to parse/encode, transform or compile.
    fn expect_rejected(&self, mut module: QuoteWat<'_>, what: &str) -> Check {
        let bytes = match module.to_test() {
            Ok(QuoteWatTest::Binary(bytes)) => bytes,
            // `(module quote ...)` text goes through the text parser here.
            Ok(QuoteWatTest::Text(_)) => match module.encode() {
                Ok(bytes) => bytes,
                Err(_) => return Ok(()),
            },
            // The text toolchain rejected it: `wast` checks part of validation (names, types).
            Err(_) => return Ok(()),
        };
        match self.compile(&bytes) {
            Err(_) => Ok(()),
            Ok(_) => Err(format!("expected a {what} module, it was accepted")),
        }
    }

    /// `assert_{malformed,invalid}_custom`: a malformed custom section or annotation never makes
    /// a module invalid (custom sections are not validated), so the text toolchain may reject it,
    /// and otherwise the engine must accept the module.
    fn expect_custom_ignored(&self, mut module: QuoteWat<'_>) -> Check {
        let Ok(bytes) = module.encode() else {
            return Ok(());
        };
        self.compile(&bytes)
            .map(drop)
            .map_err(|e| format!("a custom-section problem made the module fail: {e}"))
    }

    fn execute(&mut self, exec: WastExecute<'_>) -> Result<Vec<Val>, ExecError> {
        match exec {
            WastExecute::Invoke(invoke) => self.invoke(&invoke),
            WastExecute::Get { module, global, .. } => {
                let instance = self.instance(module)?;
                let global = instance
                    .get_global(&self.store, global)
                    .ok_or_else(|| ExecError::Harness(format!("no global export {global:?}")))?;
                Ok(vec![global.get(&self.store)])
            }
            WastExecute::Wat(module) => {
                let compiled = self.build(&mut QuoteWat::Wat(module))?;
                self.instantiate(&compiled)?;
                Ok(Vec::new())
            }
        }
    }

    fn invoke(&mut self, invoke: &WastInvoke<'_>) -> Result<Vec<Val>, ExecError> {
        let instance = self.instance(invoke.module)?;
        let func = instance
            .get_func(&self.store, invoke.name)
            .ok_or_else(|| ExecError::Harness(format!("no function export {:?}", invoke.name)))?;
        let args = invoke
            .args
            .iter()
            .map(|arg| self.arg(arg))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ExecError::Harness)?;
        let ty = func.ty(&self.store);
        let mut results: Vec<Val> = ty
            .results()
            .iter()
            .map(|t| Val::default_for_ty(*t))
            .collect();
        // Instrumented modules count instructions: give every invoke a budget large enough that
        // metering never interferes (as the runtime sets one before every message).
        if let Some(counter) =
            instance.get_global(&self.store, canister_vm::instrument::names::COUNTER)
        {
            counter
                .set(&mut self.store, Val::I64(i64::MAX / 2))
                .map_err(|e| ExecError::Harness(format!("setting the instruction counter: {e}")))?;
        }
        if let Some(dirty) = &mut self.dirty {
            dirty.before(&mut self.store);
        }
        let outcome = func.call(&mut self.store, &args, &mut results);
        if let Some(dirty) = &self.dirty {
            dirty.after(&self.store).map_err(ExecError::Harness)?;
        }
        outcome.map_err(ExecError::Trap)?;
        Ok(results)
    }

    fn arg(&mut self, arg: &WastArg<'_>) -> Result<Val, String> {
        let WastArg::Core(arg) = arg else {
            return Err("component-model argument".into());
        };
        Ok(match arg {
            WastArgCore::I32(x) => Val::I32(*x),
            WastArgCore::I64(x) => Val::I64(*x),
            WastArgCore::F32(x) => Val::F32(F32::from_bits(x.bits)),
            WastArgCore::F64(x) => Val::F64(F64::from_bits(x.bits)),
            WastArgCore::V128(x) => Val::V128(V128::from(u128::from_le_bytes(x.to_le_bytes()))),
            WastArgCore::RefNull(heap) => match null_kind(heap) {
                Some(RefKind::Func) => Val::FuncRef(Nullable::Null),
                Some(RefKind::Extern) => Val::ExternRef(Nullable::Null),
                None => return Err(format!("unsupported null reference {heap:?}")),
            },
            WastArgCore::RefExtern(n) => {
                Val::ExternRef(Nullable::Val(ExternRef::new(&mut self.store, *n)))
            }
            WastArgCore::RefHost(_) => return Err("ref.host is a GC value".into()),
        })
    }

    fn match_results(&self, actual: &[Val], expected: &[WastRet<'_>]) -> Check {
        if actual.len() != expected.len() {
            return Err(format!(
                "expected {} results, got {}: {actual:?}",
                expected.len(),
                actual.len()
            ));
        }
        for (i, (value, want)) in actual.iter().zip(expected).enumerate() {
            let WastRet::Core(want) = want else {
                return Err("component-model result".into());
            };
            if !self.matches(value, want) {
                return Err(format!(
                    "result {i}: expected {want:?}, got {}",
                    show(value)
                ));
            }
        }
        Ok(())
    }

    fn matches(&self, value: &Val, want: &WastRetCore<'_>) -> bool {
        match (want, value) {
            (WastRetCore::I32(w), Val::I32(v)) => w == v,
            (WastRetCore::I64(w), Val::I64(v)) => w == v,
            (WastRetCore::F32(w), Val::F32(v)) => f32_matches(v.to_bits(), w),
            (WastRetCore::F64(w), Val::F64(v)) => f64_matches(v.to_bits(), w),
            (WastRetCore::V128(w), Val::V128(v)) => v128_matches(v.as_u128(), w),
            (WastRetCore::RefNull(heap), Val::FuncRef(r)) => {
                r.is_null()
                    && heap
                        .as_ref()
                        .is_none_or(|h| null_kind(h) == Some(RefKind::Func))
            }
            (WastRetCore::RefNull(heap), Val::ExternRef(r)) => {
                r.is_null()
                    && heap
                        .as_ref()
                        .is_none_or(|h| null_kind(h) == Some(RefKind::Extern))
            }
            (WastRetCore::RefFunc(_), Val::FuncRef(r)) => !r.is_null(),
            (WastRetCore::RefExtern(want), Val::ExternRef(r)) => match (want, r) {
                (_, Nullable::Null) => false,
                (None, Nullable::Val(_)) => true,
                (Some(n), Nullable::Val(r)) => r.data(&self.store).downcast_ref::<u32>() == Some(n),
            },
            (WastRetCore::Either(options), v) => options.iter().any(|o| self.matches(v, o)),
            _ => false,
        }
    }
}

/// Whether `wasm` is valid with every feature on, and invalid without those in `needs`.
fn needs_any(wasm: &[u8], needs: WasmFeatures) -> bool {
    let validates = |features| {
        Validator::new_with_features(features)
            .validate_all(wasm)
            .is_ok()
    };
    validates(WasmFeatures::all()) && !validates(WasmFeatures::all().difference(needs))
}

/// Sorts an instantiation or call error into a link error or a trap.
fn classify(error: wasmi::Error) -> ExecError {
    let link = match error.kind() {
        ErrorKind::Linker(_) => true,
        ErrorKind::Instantiation(e) => matches!(
            e,
            InstantiationError::MismatchedNumberOfImports { .. }
                | InstantiationError::ImportTypeMismatch { .. }
                | InstantiationError::GlobalTypeMismatch { .. }
                | InstantiationError::FuncTypeMismatch { .. }
                | InstantiationError::TableTypeMismatch { .. }
                | InstantiationError::MemoryTypeMismatch { .. }
        ),
        _ => false,
    };
    if link {
        ExecError::Link(error)
    } else {
        ExecError::Trap(error)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefKind {
    Func,
    Extern,
}

/// The wasmi reference kind of a null of heap type `heap` (`None`: not representable).
fn null_kind(heap: &HeapType<'_>) -> Option<RefKind> {
    match heap {
        HeapType::Abstract {
            shared: false,
            ty: AbstractHeapType::Func | AbstractHeapType::NoFunc,
        } => Some(RefKind::Func),
        HeapType::Abstract {
            shared: false,
            ty: AbstractHeapType::Extern | AbstractHeapType::NoExtern,
        } => Some(RefKind::Extern),
        _ => None,
    }
}

fn f32_matches(bits: u32, want: &NanPattern<WastF32>) -> bool {
    match want {
        NanPattern::Value(w) => w.bits == bits,
        NanPattern::CanonicalNan => bits & 0x7fff_ffff == 0x7fc0_0000,
        NanPattern::ArithmeticNan => bits & 0x7fc0_0000 == 0x7fc0_0000,
    }
}

fn f64_matches(bits: u64, want: &NanPattern<WastF64>) -> bool {
    match want {
        NanPattern::Value(w) => w.bits == bits,
        NanPattern::CanonicalNan => bits & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000,
        NanPattern::ArithmeticNan => bits & 0x7ff8_0000_0000_0000 == 0x7ff8_0000_0000_0000,
    }
}

fn v128_matches(bits: u128, want: &V128Pattern) -> bool {
    let bytes = bits.to_le_bytes();
    let lane = |i: usize, width: usize| {
        let mut buf = [0u8; 8];
        buf[..width].copy_from_slice(&bytes[i * width..(i + 1) * width]);
        u64::from_le_bytes(buf)
    };
    match want {
        V128Pattern::I8x16(w) => (0..16).all(|i| lane(i, 1) as u8 == w[i] as u8),
        V128Pattern::I16x8(w) => (0..8).all(|i| lane(i, 2) as u16 == w[i] as u16),
        V128Pattern::I32x4(w) => (0..4).all(|i| lane(i, 4) as u32 == w[i] as u32),
        V128Pattern::I64x2(w) => (0..2).all(|i| lane(i, 8) == w[i] as u64),
        V128Pattern::F32x4(w) => (0..4).all(|i| f32_matches(lane(i, 4) as u32, &w[i])),
        V128Pattern::F64x2(w) => (0..2).all(|i| f64_matches(lane(i, 8), &w[i])),
    }
}

/// A value as the suite writes it (floats and vectors as bits).
fn show(value: &Val) -> String {
    match value {
        Val::F32(f) => format!("f32 {} ({:#010x})", f.to_float(), f.to_bits()),
        Val::F64(f) => format!("f64 {} ({:#018x})", f.to_float(), f.to_bits()),
        Val::V128(v) => format!("v128 {:#034x}", v.as_u128()),
        other => format!("{other:?}"),
    }
}

/// The 1-based line of `span` in `text`.
pub(crate) fn line_of(span: Span, text: &str) -> usize {
    span.linecol_in(text).0 + 1
}

/// Parses `text` (the contents of a `.wast` file) into directives.
pub(crate) fn parse<'a>(buf: &'a wast::parser::ParseBuffer<'a>) -> Result<Wast<'a>, wast::Error> {
    wast::parser::parse::<Wast<'a>>(buf)
}
