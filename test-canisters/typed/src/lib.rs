//! `typed`: a to-do list with a Candid interface of records, variants, `opt`, `vec`, principals,
//! text and blobs, written with ic-cdk 0.20. The interface (`typed.did`) is embedded in the
//! module as the `icp:public candid:service` custom section, as `dfx` (through `ic-wasm
//! metadata`) embeds it, so tools type arguments and name reply fields from the module alone.
//!
//! - `init(record { greeting : text })`
//! - `update add(NewItem) -> (variant { ok : nat64; err : Error })`: the new item's id (from 0),
//!   owned by the caller; an empty title is `err = variant { empty_title }`
//! - `query get(nat64) -> (opt Item)`
//! - `query list(opt nat32) -> (vec Item)`: every item, or the first `n`
//! - `update complete(nat64) -> (variant { ok : Item; err : Error })`
//! - `query whoami() -> (principal)`: the caller
//! - `query stats() -> (Stats)`: counts, the owners (sorted, each once) and the init greeting
//! - `query echo_blob(blob) -> (blob, nat)`: the bytes and their length

use std::cell::RefCell;

use candid::{CandidType, Deserialize, Nat, Principal};

/// The interface, embedded in the module as the custom section `icp:public candid:service`
/// (a `#[link_section]` static becomes a custom section of the same name in wasm32).
#[used]
#[unsafe(link_section = "icp:public candid:service")]
static CANDID_SERVICE: [u8; include_bytes!("../typed.did").len()] = *include_bytes!("../typed.did");

#[derive(CandidType, Deserialize, Clone, Debug, PartialEq)]
enum Priority {
    #[serde(rename = "low")]
    Low,
    #[serde(rename = "medium")]
    Medium,
    #[serde(rename = "high")]
    High { deadline: u64 },
}

#[derive(CandidType, Deserialize, Clone, Debug)]
struct Item {
    id: u64,
    title: String,
    done: bool,
    owner: Principal,
    tags: Vec<String>,
    priority: Priority,
    note: Option<String>,
}

#[derive(CandidType, Deserialize)]
struct NewItem {
    title: String,
    tags: Vec<String>,
    priority: Priority,
    note: Option<String>,
}

#[derive(CandidType, Deserialize, Debug)]
enum Error {
    #[serde(rename = "not_found")]
    NotFound(u64),
    #[serde(rename = "already_done")]
    AlreadyDone(u64),
    #[serde(rename = "empty_title")]
    EmptyTitle,
}

/// `variant { ok : T; err : Error }`, the Candid convention of `Result`.
#[derive(CandidType, Deserialize)]
enum Outcome<T> {
    #[serde(rename = "ok")]
    Ok(T),
    #[serde(rename = "err")]
    Err(Error),
}

#[derive(CandidType)]
struct Stats {
    count: u64,
    done: u64,
    owners: Vec<Principal>,
    greeting: String,
}

#[derive(CandidType, Deserialize)]
struct InitArg {
    greeting: String,
}

thread_local! {
    static ITEMS: RefCell<Vec<Item>> = const { RefCell::new(Vec::new()) };
    static GREETING: RefCell<String> = const { RefCell::new(String::new()) };
}

#[ic_cdk::init]
fn init(arg: InitArg) {
    GREETING.with(|g| *g.borrow_mut() = arg.greeting);
}

#[ic_cdk::update]
fn add(new: NewItem) -> Outcome<u64> {
    if new.title.is_empty() {
        return Outcome::Err(Error::EmptyTitle);
    }
    ITEMS.with(|items| {
        let mut items = items.borrow_mut();
        let id = items.len() as u64;
        items.push(Item {
            id,
            title: new.title,
            done: false,
            owner: ic_cdk::api::msg_caller(),
            tags: new.tags,
            priority: new.priority,
            note: new.note,
        });
        Outcome::Ok(id)
    })
}

#[ic_cdk::query]
fn get(id: u64) -> Option<Item> {
    ITEMS.with(|items| items.borrow().get(id as usize).cloned())
}

#[ic_cdk::query]
fn list(first: Option<u32>) -> Vec<Item> {
    ITEMS.with(|items| {
        let items = items.borrow();
        let n = first.map_or(items.len(), |n| (n as usize).min(items.len()));
        items[..n].to_vec()
    })
}

#[ic_cdk::update]
fn complete(id: u64) -> Outcome<Item> {
    ITEMS.with(|items| match items.borrow_mut().get_mut(id as usize) {
        None => Outcome::Err(Error::NotFound(id)),
        Some(item) if item.done => Outcome::Err(Error::AlreadyDone(id)),
        Some(item) => {
            item.done = true;
            Outcome::Ok(item.clone())
        }
    })
}

#[ic_cdk::query]
fn whoami() -> Principal {
    ic_cdk::api::msg_caller()
}

#[ic_cdk::query]
fn stats() -> Stats {
    ITEMS.with(|items| {
        let items = items.borrow();
        let mut owners: Vec<Principal> = items.iter().map(|i| i.owner).collect();
        owners.sort();
        owners.dedup();
        Stats {
            count: items.len() as u64,
            done: items.iter().filter(|i| i.done).count() as u64,
            owners,
            greeting: GREETING.with(|g| g.borrow().clone()),
        }
    })
}

#[ic_cdk::query]
fn echo_blob(bytes: serde_bytes::ByteBuf) -> (serde_bytes::ByteBuf, Nat) {
    let n = Nat::from(bytes.len());
    (bytes, n)
}
