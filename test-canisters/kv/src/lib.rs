//! `kv`: a key-value store on `StableBTreeMap<u64, Vec<u8>>` that survives upgrades.
//!
//! Interface:
//! - `update put(key: nat64, value: blob) -> ()`
//! - `query get(key: nat64) -> (opt blob)`
//! - `query len() -> (nat64)`
//! - `update fill(n: nat64) -> ()`: inserts `n` new entries above the current largest key
//! - `query upgrades() -> (nat64)`: how many upgrades this canister has gone through

use std::cell::{Cell, RefCell};

use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{DefaultMemoryImpl, StableBTreeMap, StableCell};
use serde_bytes::ByteBuf;

type Memory = VirtualMemory<DefaultMemoryImpl>;

const MAP_MEMORY: MemoryId = MemoryId::new(0);
const UPGRADES_MEMORY: MemoryId = MemoryId::new(1);

thread_local! {
    static MEMORY_MANAGER: RefCell<MemoryManager<DefaultMemoryImpl>> =
        RefCell::new(MemoryManager::init(DefaultMemoryImpl::default()));

    static MAP: RefCell<StableBTreeMap<u64, Vec<u8>, Memory>> = RefCell::new(
        StableBTreeMap::init(MEMORY_MANAGER.with(|m| m.borrow().get(MAP_MEMORY))),
    );

    /// The upgrade count lives on the heap; it is only written to stable memory in `pre_upgrade`.
    static UPGRADES: Cell<u64> = const { Cell::new(0) };
}

fn upgrades_cell() -> StableCell<u64, Memory> {
    StableCell::init(MEMORY_MANAGER.with(|m| m.borrow().get(UPGRADES_MEMORY)), 0)
}

/// The deterministic 32-byte value `fill` stores under `key`.
fn fill_value(key: u64) -> Vec<u8> {
    let mut x = key ^ 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(32);
    for _ in 0..4 {
        // splitmix64 step
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out
}

#[ic_cdk::init]
fn init() {
    // Touch the map so its header is laid out in stable memory right away.
    MAP.with(|m| m.borrow().len());
}

#[ic_cdk::pre_upgrade]
fn pre_upgrade() {
    let mut cell = upgrades_cell();
    cell.set(UPGRADES.with(Cell::get));
}

#[ic_cdk::post_upgrade]
fn post_upgrade() {
    let saved = *upgrades_cell().get();
    UPGRADES.with(|u| u.set(saved + 1));
}

#[ic_cdk::update]
fn put(key: u64, value: ByteBuf) {
    MAP.with(|m| m.borrow_mut().insert(key, value.into_vec()));
}

#[ic_cdk::query]
fn get(key: u64) -> Option<ByteBuf> {
    MAP.with(|m| m.borrow().get(&key)).map(ByteBuf::from)
}

#[ic_cdk::query]
fn len() -> u64 {
    MAP.with(|m| m.borrow().len())
}

#[ic_cdk::update]
fn fill(n: u64) {
    MAP.with(|m| {
        let mut map = m.borrow_mut();
        let start = match map.last_key_value() {
            Some((k, _)) => k.checked_add(1).expect("fill: key space exhausted"),
            None => 0,
        };
        for i in 0..n {
            let key = start.checked_add(i).expect("fill: key space exhausted");
            map.insert(key, fill_value(key));
        }
    });
}

#[ic_cdk::query]
fn upgrades() -> u64 {
    UPGRADES.with(Cell::get)
}
