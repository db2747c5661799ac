//! A canister's Candid interface: read from the module's `candid:service` metadata or a `.did`
//! file, and used to type arguments and name reply fields as `dfx canister call` does.
//!
//! Typing follows `dfx`: the argument text is parsed, then annotated with the method's argument
//! types (`candid::IDLArgs::annotate_types`: `(0)` becomes a `nat64` where the method takes one,
//! record fields are matched by name, omitted trailing `opt` arguments become `null`) and
//! encoded with those types; a value that does not fit is an error before the canister runs.
//! Replies are decoded with the method's result types, so record fields and variant tags print
//! with their names instead of hashes.

use candid::types::{Function, Type, TypeInner};
use candid::{IDLArgs, TypeEnv};

use super::{MAX_NESTING, excerpt, nesting};
use crate::error::Error;

/// The custom sections the interface may be embedded in (public first), as `ic-wasm metadata`
/// and dfx write them.
pub const METADATA_SECTIONS: [&str; 2] =
    ["icp:public candid:service", "icp:private candid:service"];

/// The largest interface text accepted (the replica caps a module's custom sections far below
/// this; a `.did` file of a real service is a few tens of KiB).
pub const MAX_INTERFACE_BYTES: usize = 4 << 20;

/// A parsed, type-checked Candid service description.
#[derive(Debug, Clone)]
pub struct Interface {
    env: TypeEnv,
    /// The service's init (and post-upgrade) argument types; empty where the description does
    /// not name them (`service : { … }`).
    init: Vec<Type>,
    /// The service type (after following names).
    service: Type,
}

impl Interface {
    /// Parses and type-checks a service description (`.did` text) with `candid_parser`.
    pub fn parse(text: &str) -> Result<Interface, Error> {
        Interface::load(text, candid_parser::utils::CandidSource::Text(text))
    }

    /// Reads, parses and type-checks a `.did` file, resolving its `import`s relative to it.
    pub fn read_file(path: &std::path::Path) -> Result<Interface, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Interface::load(&text, candid_parser::utils::CandidSource::File(path))
    }

    fn load(
        text: &str,
        source: candid_parser::utils::CandidSource<'_>,
    ) -> Result<Interface, Error> {
        let err = |why: String| Error::Input(format!("invalid Candid interface: {why}"));
        if text.len() > MAX_INTERFACE_BYTES {
            return Err(err(format!(
                "{} bytes; at most {MAX_INTERFACE_BYTES} are accepted",
                text.len()
            )));
        }
        let depth = nesting(text);
        if depth > MAX_NESTING {
            return Err(err(format!(
                "types are nested {depth} levels deep; at most {MAX_NESTING} are accepted"
            )));
        }
        let (env, actor) = source.load().map_err(|e| err(one_line(&e.to_string())))?;
        let actor = actor.ok_or_else(|| err("it has no service (`service : { … }`)".into()))?;
        let actor = env.trace_type(&actor).map_err(|e| err(e.to_string()))?;
        let (init, service) = match actor.as_ref() {
            TypeInner::Class(init, service) => (
                init.clone(),
                env.trace_type(service).map_err(|e| err(e.to_string()))?,
            ),
            _ => (Vec::new(), actor.clone()),
        };
        // Every method must be a function (checked once, so `method` cannot fail later).
        env.as_service(&service).map_err(|e| err(e.to_string()))?;
        Ok(Interface { env, init, service })
    }

    /// The interface embedded in `wasm` as `candid:service` metadata (`None` when the module has
    /// none, or is not a module: validation reports that). Metadata that is not valid UTF-8 or
    /// does not parse is an error.
    pub fn from_module(wasm: &[u8]) -> Result<Option<Interface>, Error> {
        match metadata(wasm) {
            Some((section, bytes)) => {
                let text = std::str::from_utf8(bytes).map_err(|e| {
                    Error::Input(format!(
                        "the module's `{section}` section is not UTF-8: {e}"
                    ))
                })?;
                Interface::parse(text)
                    .map(Some)
                    .map_err(|e| Error::Input(format!("the module's `{section}` section: {e}")))
            }
            None => Ok(None),
        }
    }

    /// The service, printed as Candid (`service : (init) -> { … }`), as `dfx` and `didc` print it.
    pub fn pretty(&self) -> String {
        let actor = if self.init.is_empty() {
            self.service.clone()
        } else {
            TypeInner::Class(self.init.clone(), self.service.clone()).into()
        };
        candid::pretty::candid::compile(&self.env, &Some(actor))
    }

    /// The method `name`, if the interface lists it.
    pub fn method<'a>(&'a self, name: &'a str) -> Option<&'a Function> {
        self.env.get_method(&self.service, name).ok()
    }

    /// The names of the interface's methods.
    pub fn methods(&self) -> Vec<String> {
        self.env
            .as_service(&self.service)
            .map(|methods| methods.iter().map(|(name, _)| name.clone()).collect())
            .unwrap_or_default()
    }

    /// Encodes argument text for `method` with its argument types (`None` if the interface does
    /// not list the method). A value that does not fit the types is an error naming the method
    /// and the types.
    pub fn encode_args(&self, method: &str, text: &str) -> Option<Result<Vec<u8>, Error>> {
        let func = self.method(method)?;
        Some(self.encode_typed(&format!("method `{method}`"), &func.args, text))
    }

    /// Encodes the argument of `canister_init` (and `canister_post_upgrade`) with the service's
    /// init types (`None` if the interface does not name them).
    pub fn encode_init(&self, text: &str) -> Option<Result<Vec<u8>, Error>> {
        if self.init.is_empty() {
            return None;
        }
        Some(self.encode_typed("the init argument", &self.init, text))
    }

    fn encode_typed(&self, what: &str, types: &[Type], text: &str) -> Result<Vec<u8>, Error> {
        let args = super::parse_args(text)?;
        let expected = types_text(types);
        let mismatch = |why: String| {
            Error::Input(format!(
                "the argument `{}` does not match {what}, which takes {expected}: {}",
                excerpt(text, 100),
                one_line(&why)
            ))
        };
        if args.args.len() > types.len() {
            return Err(mismatch(format!(
                "{} values given, {} expected",
                args.args.len(),
                types.len()
            )));
        }
        let typed = args
            .annotate_types(true, &self.env, types)
            .map_err(|e| mismatch(e.to_string()))?;
        typed
            .to_bytes_with_types(&self.env, types)
            .map_err(|e| mismatch(e.to_string()))
    }

    /// Decodes a reply of `method` with its result types (`None` if the interface does not list
    /// the method); a reply that does not match them is an error saying so.
    pub fn decode_reply(&self, method: &str, bytes: &[u8]) -> Option<Result<IDLArgs, String>> {
        let func = self.method(method)?;
        Some(
            IDLArgs::from_bytes_with_types(bytes, &self.env, &func.rets).map_err(|e| {
                format!(
                    "the reply of `{method}` does not match its result type {}: {}",
                    types_text(&func.rets),
                    one_line(&e.to_string())
                )
            }),
        )
    }
}

/// Types as Candid prints an argument list: `(nat64, opt text)`.
fn types_text(types: &[Type]) -> String {
    candid::pretty::candid::pp_args(types)
        .pretty(100)
        .to_string()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `candid:service` metadata section of `wasm` ([`METADATA_SECTIONS`] order) and its
/// name (among the sections before any malformed part of the module).
fn metadata(wasm: &[u8]) -> Option<(&'static str, &[u8])> {
    let mut found: Vec<(&'static str, &[u8])> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        // A module that does not parse has no metadata here: installing it reports why.
        let Ok(payload) = payload else { break };
        if let wasmparser::Payload::CustomSection(section) = payload
            && let Some(name) = METADATA_SECTIONS.iter().find(|n| **n == section.name())
        {
            found.push((name, section.data()));
        }
    }
    found.sort_by_key(|(name, _)| METADATA_SECTIONS.iter().position(|n| n == name));
    found.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DID: &str = r#"
        type Shape = variant { circle : record { r : nat32 }; dot };
        service : (record { name : text }) -> {
          get : (nat64) -> (opt record { id : nat64; label : text }) query;
          count : () -> (nat64) query;
          put : (record { id : nat64; tags : vec text; shape : Shape }, opt text) -> ();
        }"#;

    #[test]
    fn arguments_are_typed_by_the_method() {
        let i = Interface::parse(DID).unwrap();
        let bytes = i.encode_args("get", "(0)").unwrap().unwrap();
        // `(0)` is a nat64 here, not the untyped default (int).
        let back = IDLArgs::from_bytes(&bytes).unwrap();
        assert_eq!(back.args, vec![candid::IDLValue::Nat64(0)]);
        // Field names, a variant with a record, and an omitted trailing opt.
        let bytes = i
            .encode_args(
                "put",
                r#"(record { id = 1; tags = vec { "a" }; shape = variant { circle = record { r = 2 } } })"#,
            )
            .unwrap()
            .unwrap();
        assert_eq!(IDLArgs::from_bytes(&bytes).unwrap().args.len(), 2);
        assert!(i.encode_args("nope", "()").is_none());
        assert_eq!(i.methods(), ["count", "get", "put"]);
    }

    #[test]
    fn mismatches_name_the_method_and_the_types() {
        let i = Interface::parse(DID).unwrap();
        let err = i
            .encode_args("get", r#"("zero")"#)
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not match method `get`, which takes (nat64)"),
            "{err}"
        );
        let err = i
            .encode_args("get", "(1, 2)")
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 values given, 1 expected"), "{err}");
        let err = i.encode_init("()").unwrap().unwrap_err().to_string();
        assert!(err.contains("the init argument"), "{err}");
    }

    #[test]
    fn replies_get_field_names() {
        let i = Interface::parse(DID).unwrap();
        #[derive(candid::CandidType)]
        struct Row {
            id: u64,
            label: String,
        }
        let bytes = candid::encode_one(Some(Row {
            id: 3,
            label: "x".into(),
        }))
        .unwrap();
        let text = i.decode_reply("get", &bytes).unwrap().unwrap().to_string();
        assert!(text.contains("label = \"x\""), "{text}");
        assert!(text.contains("id = 3 : nat64"), "{text}");
        let err = i
            .decode_reply("count", &candid::encode_one("no").unwrap())
            .unwrap()
            .unwrap_err();
        assert!(
            err.contains("the reply of `count` does not match its result type (nat64)"),
            "{err}"
        );
    }

    #[test]
    fn bad_interfaces_are_errors() {
        for (text, why) in [
            ("service : { f : (nat) -> (; }", "invalid Candid interface"),
            ("type t = nat;", "has no service"),
            (
                &format!("service : {{ f : ({}nat) -> () }}", "opt ".repeat(300)),
                "nested",
            ),
        ] {
            let err = Interface::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn metadata_is_read_from_custom_sections() {
        let mut module = wasm_encoder::Module::new();
        module.section(&wasm_encoder::CustomSection {
            name: "icp:private candid:service".into(),
            data: b"service : { b : () -> () }".as_slice().into(),
        });
        module.section(&wasm_encoder::CustomSection {
            name: "icp:public candid:service".into(),
            data: b"service : { a : () -> () }".as_slice().into(),
        });
        let wasm = module.finish();
        let i = Interface::from_module(&wasm).unwrap().unwrap();
        assert_eq!(i.methods(), vec!["a".to_string()]);
        assert!(
            Interface::from_module(&wasm_encoder::Module::new().finish())
                .unwrap()
                .is_none()
        );
        // Not a module (or a truncated one): no interface, and no error either.
        assert!(
            Interface::from_module(b"\0asm\x01\0\0\0\x05")
                .unwrap()
                .is_none()
        );
    }
}
