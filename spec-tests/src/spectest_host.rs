//! The `spectest` host module, as the official reference interpreter defines it
//! (`interpreter/host/spectest.ml` in WebAssembly/spec).
//!
//! ```wat
//! (module
//!   (global (export "global_i32") i32 (i32.const 666))
//!   (global (export "global_i64") i64 (i64.const 666))
//!   (global (export "global_f32") f32 (f32.const 666.6))
//!   (global (export "global_f64") f64 (f64.const 666.6))
//!   (table (export "table") 10 20 funcref)
//!   (table (export "table64") i64 10 20 funcref)
//!   (memory (export "memory") 1 2)
//!   (func (export "print"))
//!   (func (export "print_i32") (param i32))
//!   (func (export "print_i64") (param i64))
//!   (func (export "print_f32") (param f32))
//!   (func (export "print_f64") (param f64))
//!   (func (export "print_i32_f32") (param i32 f32))
//!   (func (export "print_f64_f64") (param f64 f64)))
//! ```
//!
//! The print functions print nothing (the suite never checks their output), so test logs stay quiet.

use wasmi::{
    F32, F64, Func, Global, Linker, Memory, MemoryType, Mutability, Ref, RefType, Store, Table,
    TableType, Val,
};

/// The module name the suite imports these items from.
pub const MODULE: &str = "spectest";

/// Defines every `spectest` item in `linker`, allocated in `store`.
pub fn define(store: &mut Store<()>, linker: &mut Linker<()>) -> Result<(), wasmi::Error> {
    let globals = [
        ("global_i32", Val::I32(666)),
        ("global_i64", Val::I64(666)),
        ("global_f32", Val::F32(F32::from_float(666.6))),
        ("global_f64", Val::F64(F64::from_float(666.6))),
    ];
    for (name, value) in globals {
        let global = Global::new(&mut *store, value, Mutability::Const);
        linker.define(MODULE, name, global)?;
    }

    let null = Ref::null(RefType::Func);
    let table = Table::new(
        &mut *store,
        TableType::new(RefType::Func, 10, Some(20)),
        null,
    )?;
    linker.define(MODULE, "table", table)?;
    let table64 = Table::new(
        &mut *store,
        TableType::new64(RefType::Func, 10, Some(20)),
        null,
    )?;
    linker.define(MODULE, "table64", table64)?;

    let memory = Memory::new(&mut *store, MemoryType::new(1, Some(2)))?;
    linker.define(MODULE, "memory", memory)?;

    let prints = [
        ("print", Func::wrap(&mut *store, || {})),
        ("print_i32", Func::wrap(&mut *store, |_: i32| {})),
        ("print_i64", Func::wrap(&mut *store, |_: i64| {})),
        ("print_f32", Func::wrap(&mut *store, |_: f32| {})),
        ("print_f64", Func::wrap(&mut *store, |_: f64| {})),
        (
            "print_i32_f32",
            Func::wrap(&mut *store, |_: i32, _: f32| {}),
        ),
        (
            "print_f64_f64",
            Func::wrap(&mut *store, |_: f64, _: f64| {}),
        ),
    ];
    for (name, func) in prints {
        linker.define(MODULE, name, func)?;
    }
    Ok(())
}
