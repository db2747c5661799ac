//! The typed library API (`Subnet::update_call`/`query_call`/`install`, the same on
//! `PersistentSubnet`) on the ic-cdk test canister `typed` (`test-canisters/typed`): Rust types
//! mirroring its `typed.did` go in and come out, rejects and replies of the wrong type are
//! errors that say which.

use candid::{CandidType, Deserialize, Nat, Principal};
use canister_vm::runtime::persistent::PersistentSubnet;
use canister_vm::runtime::subnet::Subnet;
use canister_vm::runtime::{CallError, CanisterConfig, RejectCode};

use crate::canisters::test_canister_bytes;

/// `type Priority = variant { low; medium; high : record { deadline : nat64 } }`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
enum Priority {
    #[serde(rename = "low")]
    Low,
    #[serde(rename = "medium")]
    Medium,
    #[serde(rename = "high")]
    High { deadline: u64 },
}

/// `type Item`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
struct Item {
    id: u64,
    title: String,
    done: bool,
    owner: Principal,
    tags: Vec<String>,
    priority: Priority,
    note: Option<String>,
}

/// `type NewItem`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
struct NewItem {
    title: String,
    tags: Vec<String>,
    priority: Priority,
    note: Option<String>,
}

/// `type Error = variant { not_found : nat64; already_done : nat64; empty_title }`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
enum ItemError {
    #[serde(rename = "not_found")]
    NotFound(u64),
    #[serde(rename = "already_done")]
    AlreadyDone(u64),
    #[serde(rename = "empty_title")]
    EmptyTitle,
}

/// `variant { ok : T; err : Error }`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
enum Outcome<T> {
    #[serde(rename = "ok")]
    Ok(T),
    #[serde(rename = "err")]
    Err(ItemError),
}

/// `type Stats`.
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
struct Stats {
    count: u64,
    done: u64,
    owners: Vec<Principal>,
    greeting: String,
}

/// The init argument, `record { greeting : text }`.
#[derive(CandidType, Deserialize)]
struct InitArg {
    greeting: String,
}

fn alice() -> Principal {
    Principal::from_slice(&[0xa1; 29])
}

fn bob() -> Principal {
    Principal::from_slice(&[0xb0, 0xb0])
}

fn init() -> (InitArg,) {
    (InitArg {
        greeting: "hi".into(),
    },)
}

fn milk() -> NewItem {
    NewItem {
        title: "buy milk".into(),
        tags: vec!["shop".into(), "today".into()],
        priority: Priority::High { deadline: 42 },
        note: Some("semi-skimmed".into()),
    }
}

fn taxes() -> NewItem {
    NewItem {
        title: "file taxes".into(),
        tags: vec![],
        priority: Priority::Medium,
        note: None,
    }
}

/// The item `new` becomes once added as `id` by `owner`.
fn item(id: u64, new: NewItem, owner: Principal) -> Item {
    Item {
        id,
        title: new.title,
        done: false,
        owner,
        tags: new.tags,
        priority: new.priority,
        note: new.note,
    }
}

/// The owners `stats` reports for alice and bob: sorted, each once.
fn owners() -> Vec<Principal> {
    let mut owners = vec![alice(), bob()];
    owners.sort();
    owners
}

#[test]
fn typed_calls_round_trip_records_variants_options_vectors_and_principals() {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let id = subnet
        .install(test_canister_bytes("typed"), init(), alice())
        .unwrap();

    // Two items from two callers, typed arguments in, a variant out.
    let (added,): (Outcome<u64>,) = subnet.update_call(id, "add", (milk(),), alice()).unwrap();
    assert_eq!(added, Outcome::Ok(0));
    let (added,): (Outcome<u64>,) = subnet.update_call(id, "add", (taxes(),), bob()).unwrap();
    assert_eq!(added, Outcome::Ok(1));

    // `get` gives `opt Item` back with every field, the owner being who added it.
    let (got,): (Option<Item>,) = subnet.query_call(id, "get", (1u64,), alice()).unwrap();
    let got = got.expect("item 1 exists");
    assert_eq!(got.id, 1);
    assert_eq!(got.title, "file taxes");
    assert!(!got.done);
    assert_eq!(got.owner, bob());
    assert!(got.tags.is_empty());
    assert_eq!(got.priority, Priority::Medium);
    assert_eq!(got.note, None);
    let (got,): (Option<Item>,) = subnet.query_call(id, "get", (0u64,), bob()).unwrap();
    assert_eq!(got, Some(item(0, milk(), alice())));
    let (missing,): (Option<Item>,) = subnet.query_call(id, "get", (7u64,), bob()).unwrap();
    assert_eq!(missing, None);

    // `opt nat32`: some, then none.
    let (first,): (Vec<Item>,) = subnet
        .query_call(id, "list", (Some(1u32),), alice())
        .unwrap();
    assert_eq!(first, vec![item(0, milk(), alice())]);
    let (all,): (Vec<Item>,) = subnet
        .query_call(id, "list", (None::<u32>,), alice())
        .unwrap();
    assert_eq!(all, vec![item(0, milk(), alice()), item(1, taxes(), bob())]);

    // `complete`: ok with the item, then err = already_done; an unknown id is not_found.
    let (done,): (Outcome<Item>,) = subnet.update_call(id, "complete", (0u64,), bob()).unwrap();
    let mut expected = item(0, milk(), alice());
    expected.done = true;
    assert_eq!(done, Outcome::Ok(expected));
    let (again,): (Outcome<Item>,) = subnet.update_call(id, "complete", (0u64,), bob()).unwrap();
    assert_eq!(again, Outcome::Err(ItemError::AlreadyDone(0)));
    let (unknown,): (Outcome<Item>,) = subnet.update_call(id, "complete", (9u64,), bob()).unwrap();
    assert_eq!(unknown, Outcome::Err(ItemError::NotFound(9)));

    // An empty title is refused by the canister as a value, not a reject.
    let mut empty = taxes();
    empty.title.clear();
    let (refused,): (Outcome<u64>,) = subnet.update_call(id, "add", (empty,), alice()).unwrap();
    assert_eq!(refused, Outcome::Err(ItemError::EmptyTitle));

    // The caller arrives as the principal given.
    let (me,): (Principal,) = subnet.query_call(id, "whoami", (), bob()).unwrap();
    assert_eq!(me, bob());
    let (me,): (Principal,) = subnet.query_call(id, "whoami", (), alice()).unwrap();
    assert_eq!(me, alice());

    let (stats,): (Stats,) = subnet.query_call(id, "stats", (), alice()).unwrap();
    assert_eq!(
        stats,
        Stats {
            count: 2,
            done: 1,
            owners: owners(),
            greeting: "hi".into(),
        }
    );

    // A blob in, a blob and a nat out (two reply values).
    let bytes = serde_bytes::ByteBuf::from(vec![0u8, 1, 2, 255]);
    let (echoed, len): (serde_bytes::ByteBuf, Nat) = subnet
        .query_call(id, "echo_blob", (bytes.clone(),), alice())
        .unwrap();
    assert_eq!(echoed, bytes);
    assert_eq!(len, Nat::from(4u32));
}

#[test]
fn a_reply_of_another_type_a_missing_method_and_a_trapping_init_are_errors_that_say_which() {
    let mut subnet = Subnet::new(CanisterConfig::default());
    let id = subnet
        .install(test_canister_bytes("typed"), init(), alice())
        .unwrap();

    // `stats` replies a record: asking for text is a decode error naming the method.
    let err = subnet
        .query_call::<_, (String,)>(id, "stats", (), alice())
        .unwrap_err();
    match &err {
        CallError::Decode {
            method,
            expected,
            reply,
            ..
        } => {
            assert_eq!(method, "stats");
            assert!(expected.contains("String"), "{expected}");
            assert!(reply.starts_with(b"DIDL"));
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("the reply of `stats` does not decode as"),
        "{text}"
    );

    // Also on an update: the call ran (the item was added) but the reply is not a `bool`.
    let err = subnet
        .update_call::<_, (bool,)>(id, "add", (milk(),), alice())
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Decode { method, .. } if method == "add"),
        "{err:?}"
    );
    let (stats,): (Stats,) = subnet.query_call(id, "stats", (), alice()).unwrap();
    assert_eq!(stats.count, 1);

    // A method the canister does not have: the subnet rejects the call.
    for err in [
        subnet
            .update_call::<_, ()>(id, "no_such_method", (), alice())
            .unwrap_err(),
        subnet
            .query_call::<_, ()>(id, "no_such_method", (), alice())
            .unwrap_err(),
    ] {
        let reject = err.reject().unwrap_or_else(|| panic!("a reject: {err:?}"));
        assert_eq!(reject.code, RejectCode::CanisterError);
        assert!(reject.message.contains("no_such_method"), "{reject}");
        assert!(matches!(&err, CallError::Rejected { method, .. } if method == "no_such_method"));
    }

    // Arguments of the wrong type: the canister traps decoding them, a reject again.
    let err = subnet
        .update_call::<_, (Outcome<u64>,)>(id, "add", ("not a record",), alice())
        .unwrap_err();
    assert_eq!(
        err.reject().map(|r| r.code),
        Some(RejectCode::CanisterError),
        "{err:?}"
    );

    // `canister_init` without its record traps: the install is rejected and takes no id.
    let before = subnet.canister_ids();
    let err = subnet
        .install(test_canister_bytes("typed"), (), alice())
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Rejected { method, reject }
            if method == "install_code" && reject.code == RejectCode::CanisterError),
        "{err:?}"
    );
    // A module that is not valid is rejected the same way, with the reason.
    let err = subnet
        .install_raw(b"\0asm not a module".to_vec(), b"", alice())
        .unwrap_err();
    let reject = err.reject().expect("a reject");
    assert!(reject.message.contains("not valid"), "{}", reject.message);
    assert_eq!(subnet.canister_ids(), before);
}

/// The same flow through a `PersistentSubnet`: committed to a directory, reopened, the same
/// answers.
#[test]
fn a_persistent_subnet_takes_the_same_typed_calls_and_keeps_their_effects() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("subnet");
    let (id, stats) = {
        let mut subnet = PersistentSubnet::open_or_create(&dir, CanisterConfig::default()).unwrap();
        let id = subnet
            .install(test_canister_bytes("typed"), init(), alice(), Some("todo"))
            .unwrap();
        assert_eq!(subnet.name_of(id), Some("todo"));
        let (a,): (Outcome<u64>,) = subnet.update_call(id, "add", (milk(),), alice()).unwrap();
        let (b,): (Outcome<u64>,) = subnet.update_call(id, "add", (taxes(),), bob()).unwrap();
        assert_eq!((a, b), (Outcome::Ok(0), Outcome::Ok(1)));
        let (done,): (Outcome<Item>,) = subnet.update_call(id, "complete", (1u64,), bob()).unwrap();
        assert!(matches!(
            done,
            Outcome::Ok(Item {
                id: 1,
                done: true,
                ..
            })
        ));
        let (got,): (Option<Item>,) = subnet.query_call(id, "get", (0u64,), bob()).unwrap();
        assert_eq!(got, Some(item(0, milk(), alice())));
        let err = subnet
            .query_call::<_, (u64,)>(id, "stats", (), alice())
            .unwrap_err();
        assert!(
            matches!(&err, CallError::Decode { method, .. } if method == "stats"),
            "{err:?}"
        );
        let err = subnet
            .update_call::<_, ()>(id, "no_such_method", (), alice())
            .unwrap_err();
        assert!(err.reject().is_some(), "{err:?}");
        // A failed install commits nothing and returns the reject.
        let err = subnet
            .install(test_canister_bytes("typed"), (), alice(), None)
            .unwrap_err();
        assert!(
            matches!(&err, CallError::Rejected { method, .. } if method == "install_code"),
            "{err:?}"
        );
        let (stats,): (Stats,) = subnet.query_call(id, "stats", (), alice()).unwrap();
        assert_eq!(
            stats,
            Stats {
                count: 2,
                done: 1,
                owners: owners(),
                greeting: "hi".into(),
            }
        );
        (id, stats)
    };
    let mut reopened = PersistentSubnet::open(&dir, CanisterConfig::default()).unwrap();
    assert_eq!(reopened.resolve("todo"), Some(id));
    assert_eq!(reopened.subnet().canister_ids(), vec![id]);
    let (again,): (Stats,) = reopened.query_call(id, "stats", (), bob()).unwrap();
    assert_eq!(again, stats);
    let (more,): (Outcome<u64>,) = reopened
        .update_call(id, "add", (taxes(),), alice())
        .unwrap();
    assert_eq!(more, Outcome::Ok(2));
}
