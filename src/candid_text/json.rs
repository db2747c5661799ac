//! Candid values as JSON, in the convention of dfinity's `idl2json` (what `dfx canister call
//! … | idl2json` prints), with its default options:
//!
//! - the argument list is a JSON array of its values;
//! - `nat`, `int`, `nat64` and `int64` are strings (JSON numbers lose precision above 2^53),
//!   the smaller integers are numbers, floats are numbers (`"NaN"` where JSON has none);
//!   numbers are plain digits: where idl2json 0.10.1 prints a `nat` or `int` (and a field's
//!   numeric id) the way Candid text groups digits, `"1_700_000_000"`, this prints
//!   `"1700000000"`, which JSON readers can parse;
//! - `opt v` is `[v]` and `null`-valued `opt` is `[]`; `null` is `null`;
//! - a record is an object keyed by field name (a field without a name by its number, as Candid
//!   prints it); a variant is an object with one key, its tag;
//! - `blob` and `vec nat8` are arrays of numbers; principals and services are their text form;
//!   a `func` is `{"principal": …, "code": method}`; `reserved` is the string `"reserved"`.
//!
//! Decoding a reply with the method's types first (see [`super::Interface`]) is what gives the
//! fields their names.

use candid::IDLArgs;
use candid::types::value::IDLValue;
use serde_json::{Map, Number, Value};

/// `args` as a JSON array (see the module documentation for the convention).
pub fn args_to_json(args: &IDLArgs) -> Value {
    Value::Array(args.args.iter().map(value_to_json).collect())
}

/// One Candid value as JSON.
pub fn value_to_json(value: &IDLValue) -> Value {
    let float =
        |f: f64| Number::from_f64(f).map_or_else(|| Value::String("NaN".into()), Value::Number);
    match value {
        IDLValue::Bool(b) => Value::Bool(*b),
        IDLValue::Null => Value::Null,
        IDLValue::Text(s) => Value::String(s.clone()),
        IDLValue::Number(s) => Value::String(s.clone()),
        IDLValue::Float64(f) => float(*f),
        IDLValue::Float32(f) => float(f64::from(*f)),
        IDLValue::Opt(v) => Value::Array(vec![value_to_json(v)]),
        IDLValue::None => Value::Array(Vec::new()),
        IDLValue::Vec(items) => Value::Array(items.iter().map(value_to_json).collect()),
        IDLValue::Blob(bytes) => Value::Array(bytes.iter().map(|b| Value::from(*b)).collect()),
        IDLValue::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|f| (label(&f.id), value_to_json(&f.val)))
                .collect::<Map<_, _>>(),
        ),
        IDLValue::Variant(v) => {
            let mut map = Map::new();
            map.insert(label(&v.0.id), value_to_json(&v.0.val));
            Value::Object(map)
        }
        IDLValue::Principal(p) | IDLValue::Service(p) => Value::String(p.to_text()),
        IDLValue::Func(p, method) => {
            let mut map = Map::new();
            map.insert("principal".into(), Value::String(p.to_text()));
            map.insert("code".into(), Value::String(method.clone()));
            Value::Object(map)
        }
        IDLValue::Int(i) => Value::String(i.0.to_string()),
        IDLValue::Nat(n) => Value::String(n.0.to_string()),
        IDLValue::Nat64(n) => Value::String(n.to_string()),
        IDLValue::Int64(i) => Value::String(i.to_string()),
        IDLValue::Nat8(n) => Value::from(*n),
        IDLValue::Nat16(n) => Value::from(*n),
        IDLValue::Nat32(n) => Value::from(*n),
        IDLValue::Int8(i) => Value::from(*i),
        IDLValue::Int16(i) => Value::from(*i),
        IDLValue::Int32(i) => Value::from(*i),
        IDLValue::Reserved => Value::String("reserved".into()),
    }
}

/// A field's key: its name, or its number in plain digits.
fn label(id: &candid::types::Label) -> String {
    match id {
        candid::types::Label::Named(name) => name.clone(),
        candid::types::Label::Id(n) | candid::types::Label::Unnamed(n) => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected JSON is what `idl2json::idl_args2json` 0.10.1 with default options printed
    /// for the same text (checked once, by hand: the crate is not a dependency, it pins an old
    /// `candid_parser`), but for the digit grouping of the module docs.
    #[test]
    fn follows_the_idl2json_convention() {
        let args = candid_parser::parse_idl_args(
            r#"(record { name = "a"; n = 5 : nat; big = 18446744073709551615 : nat64;
                small = 7 : nat8; neg = -3 : int32; f = 1.5 : float64 },
               opt (opt (1 : nat16)), (null : opt text), variant { ok = principal "aaaaa-aa" },
               blob "\01\02", vec { true; false }, record { 10 : nat32; "x" }, variant { low },
               (-5 : int), (3.0 : float32), vec { 1 : nat8; 2 : nat8 },
               (1700000001000000000 : int), record { 1224700491 = 1 : nat })"#,
        )
        .unwrap();
        let json = args_to_json(&args);
        let expected = serde_json::json!([
            {"name": "a", "n": "5", "big": "18446744073709551615", "small": 7, "neg": -3, "f": 1.5},
            [[1]],
            [],
            {"ok": "aaaaa-aa"},
            [1, 2],
            [true, false],
            {"0": 10, "1": "x"},
            {"low": null},
            "-5",
            3.0,
            [1, 2],
            // idl2json 0.10.1 groups these digits ("1_700_…"); plain digits here.
            "1700000001000000000",
            {"1224700491": "1"}
        ]);
        assert_eq!(json, expected);
    }
}
