//! The state hash: a Merkle tree over 4 KiB pages of every memory, plus sizes, globals,
//! certified data and every other fact that decides the canister's behaviour (DESIGN.md §6).
//!
//! Each memory has a binary Merkle tree whose leaves are the SHA-256 of its 4 KiB pages (domain
//! separated; the tree fixes each page's position). Updating a set of dirty pages rehashes those
//! leaves and their paths to the root: O(dirty · log pages), never O(memory size).
//!
//! Two levels:
//! - the *memory hash* ([`StateHash::root`]) combines the memory roots with the memory sizes,
//!   the mutable globals and the certified data. Until state format 3 this was the whole state
//!   hash, so directories and logs written before still verify against it;
//! - the *state hash* ([`state_root`]) combines the memory hash with the [`Metadata`]: module
//!   hash, stable mode, heap type, canister id, controllers, version, cycle balance, global
//!   timer and clock (message counter and time). An edit of any of them changes it.

use sha2::{Digest, Sha256};

use super::GlobalValue;

/// Size of a tracked page.
pub const PAGE_SIZE: usize = 4096;

/// A 32-byte SHA-256 digest.
pub type Hash = [u8; 32];

/// The hash of one page's bytes. A page's position is bound by its place in the tree, so equal
/// pages hash equally, which lets the (common) all-zero page use a precomputed leaf.
fn leaf(_index: u64, bytes: &[u8]) -> Hash {
    if bytes.len() == PAGE_SIZE && bytes.iter().all(|&b| b == 0) {
        static ZERO: std::sync::OnceLock<Hash> = std::sync::OnceLock::new();
        return *ZERO.get_or_init(|| hash_page(&[0; PAGE_SIZE]));
    }
    hash_page(bytes)
}

fn hash_page(bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(b"canister-vm page\0");
    h.update(bytes);
    h.finalize().into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(b"canister-vm node\0");
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The Merkle tree of one memory's pages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryTree {
    /// `levels[0]` are the leaves (one per page); each next level halves, the last has one node.
    levels: Vec<Vec<Hash>>,
    len: usize,
}

fn page_of(memory: &[u8], page: usize) -> &[u8] {
    let start = page * PAGE_SIZE;
    &memory[start..(start + PAGE_SIZE).min(memory.len())]
}

impl MemoryTree {
    /// The tree of `memory`, hashing every page.
    pub fn from_scratch(memory: &[u8]) -> Self {
        let pages = memory.len().div_ceil(PAGE_SIZE);
        let leaves = (0..pages)
            .map(|p| leaf(p as u64, page_of(memory, p)))
            .collect();
        let mut tree = MemoryTree {
            levels: vec![leaves],
            len: memory.len(),
        };
        tree.rebuild_upper_levels();
        tree
    }

    /// The tree of `memory` whose pages not listed in `nonzero` (ascending page indices) are
    /// known to be zero: only the listed pages are read, so a large, mostly-zero memory hashes in
    /// O(listed pages) plus a cheap pass over the leaf level. Equal to
    /// [`from_scratch`](Self::from_scratch) when the unlisted pages are indeed zero.
    pub fn from_nonzero(memory: &[u8], nonzero: &[u64]) -> Self {
        let pages = memory.len().div_ceil(PAGE_SIZE);
        let mut leaves = vec![leaf(0, &[0; PAGE_SIZE]); pages];
        for &p in nonzero {
            let p = p as usize;
            if p < pages {
                leaves[p] = leaf(p as u64, page_of(memory, p));
            }
        }
        if let Some(last) = pages.checked_sub(1)
            && !memory.len().is_multiple_of(PAGE_SIZE)
        {
            // A partial last page is not the all-zero 4 KiB page even when its bytes are zero.
            leaves[last] = leaf(last as u64, page_of(memory, last));
        }
        let mut tree = MemoryTree {
            levels: vec![leaves],
            len: memory.len(),
        };
        tree.rebuild_upper_levels();
        tree
    }

    fn rebuild_upper_levels(&mut self) {
        self.levels.truncate(1);
        while self.levels.last().map_or(0, |l| l.len()) > 1 {
            let below = self.levels.last().expect("at least the leaves");
            // Runs of equal pairs (zero pages, mostly) are hashed once per run.
            let mut last: Option<(&[Hash], Hash)> = None;
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => match last {
                        Some((prev, hash)) if prev == pair => hash,
                        _ => {
                            let hash = node(l, r);
                            last = Some((pair, hash));
                            hash
                        }
                    },
                    [single] => *single,
                    _ => unreachable!("chunks(2)"),
                })
                .collect();
            self.levels.push(above);
        }
    }

    /// Rehashes the pages in `dirty` (page indices) of `memory`. If the memory changed size the
    /// new pages are hashed too.
    pub fn update(&mut self, memory: &[u8], dirty: impl IntoIterator<Item = usize>) {
        let pages = memory.len().div_ceil(PAGE_SIZE);
        let old_pages = self.levels.first().map_or(0, |l| l.len());
        if memory.len() != self.len {
            // Resized. Pages added by growth are zero unless the message wrote them (then they
            // are dirty), so only dirty pages and the old last page (possibly partial) are read.
            let mut dirty: Vec<usize> = dirty.into_iter().filter(|&p| p < pages).collect();
            dirty.sort_unstable();
            let leaves = &mut self.levels[0];
            leaves.truncate(pages.min(old_pages));
            let from = leaves.len().saturating_sub(1);
            leaves.truncate(from);
            if from < pages {
                leaves.push(leaf(from as u64, page_of(memory, from)));
            }
            let zero = leaf(0, &[0; PAGE_SIZE]);
            for p in leaves.len()..pages {
                let full = (p + 1) * PAGE_SIZE <= memory.len();
                leaves.push(if full && dirty.binary_search(&p).is_err() {
                    zero
                } else {
                    leaf(p as u64, page_of(memory, p))
                });
            }
            self.len = memory.len();
            for p in dirty {
                if p < from {
                    self.levels[0][p] = leaf(p as u64, page_of(memory, p));
                }
            }
            self.rebuild_upper_levels();
            return;
        }
        let mut touched: Vec<usize> = dirty.into_iter().filter(|&p| p < pages).collect();
        touched.sort_unstable();
        touched.dedup();
        for &p in &touched {
            self.levels[0][p] = leaf(p as u64, page_of(memory, p));
        }
        for level in 1..self.levels.len() {
            let mut parents: Vec<usize> = touched.iter().map(|p| p / 2).collect();
            parents.dedup();
            for &i in &parents {
                let below = &self.levels[level - 1];
                let hash = match below.get(2 * i + 1) {
                    Some(r) => node(&below[2 * i], r),
                    None => below[2 * i],
                };
                self.levels[level][i] = hash;
            }
            touched = parents;
        }
    }

    /// The pages whose leaf is not the all-zero page's, ascending: every page not listed is
    /// zero (a partial last page is always listed). O(pages), no page is read.
    pub fn nonzero_pages(&self) -> Vec<u64> {
        let zero = leaf(0, &[0; PAGE_SIZE]);
        self.levels.first().map_or_else(Vec::new, |leaves| {
            (0..leaves.len() as u64)
                .filter(|&p| leaves[p as usize] != zero)
                .collect()
        })
    }

    /// The root (all zeros for an empty memory).
    pub fn root(&self) -> Hash {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or([0; 32])
    }
}

/// The state hash of a canister.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateHash {
    /// The heap's tree.
    pub heap: MemoryTree,
    /// Stable memory's tree.
    pub stable: MemoryTree,
}

impl StateHash {
    /// Hashes both memories from scratch.
    pub fn from_scratch(heap: &[u8], stable: &[u8]) -> Self {
        StateHash {
            heap: MemoryTree::from_scratch(heap),
            stable: MemoryTree::from_scratch(stable),
        }
    }

    /// The memory hash: the root over memory roots, memory sizes, globals and certified data
    /// (the state hash of state format 2; [`state_root`] adds the metadata).
    pub fn root(
        &self,
        heap_len: usize,
        stable_len: usize,
        globals: &[(u32, GlobalValue)],
        certified_data: &[u8],
    ) -> Hash {
        let mut h = Sha256::new();
        h.update(b"canister-vm state\0");
        h.update((heap_len as u64).to_le_bytes());
        h.update(self.heap.root());
        h.update((stable_len as u64).to_le_bytes());
        h.update(self.stable.root());
        h.update((globals.len() as u64).to_le_bytes());
        for (index, value) in globals {
            h.update(index.to_le_bytes());
            let encoded = serde_json::to_vec(value).expect("global values serialize");
            h.update((encoded.len() as u64).to_le_bytes());
            h.update(&encoded);
        }
        h.update((certified_data.len() as u64).to_le_bytes());
        h.update(certified_data);
        h.finalize().into()
    }
}

/// Everything besides memories, globals and certified data that decides how a canister
/// behaves: hashed into the state hash by [`state_root`].
#[derive(Debug, Clone, Copy)]
pub struct Metadata<'a> {
    /// SHA-256 of the installed (uninstrumented) module.
    pub module_sha256: &'a Hash,
    /// How stable memory is reached.
    pub stable_mode: super::StableMode,
    /// The heap's address type.
    pub heap_type: crate::abi::HeapType,
    /// System state (canister id, controllers, version, cycles, timer; its certified data is in
    /// the memory hash already and is hashed again here, harmlessly).
    pub system: &'a super::SystemState,
    /// Message counter and time.
    pub clock: &'a super::Clock,
}

fn update_bytes(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The state hash: the memory hash ([`StateHash::root`]) combined with `meta`.
pub fn state_root(memory_hash: &Hash, meta: &Metadata<'_>) -> Hash {
    let mut h = Sha256::new();
    h.update(b"canister-vm state v3\0");
    h.update(memory_hash);
    h.update(meta.module_sha256);
    // Enums by their serialized names, so the hash does not depend on declaration order.
    let stable_mode = serde_json::to_string(&meta.stable_mode).expect("enums serialize");
    let heap_type = serde_json::to_string(&meta.heap_type).expect("enums serialize");
    update_bytes(&mut h, stable_mode.as_bytes());
    update_bytes(&mut h, heap_type.as_bytes());
    let sys = meta.system;
    update_bytes(&mut h, &sys.canister_id);
    h.update((sys.controllers.len() as u64).to_le_bytes());
    for c in &sys.controllers {
        update_bytes(&mut h, c);
    }
    update_bytes(&mut h, &sys.certified_data);
    h.update(sys.global_timer.to_le_bytes());
    h.update(sys.canister_version.to_le_bytes());
    h.update(sys.cycle_balance.to_le_bytes());
    h.update(meta.clock.messages.to_le_bytes());
    h.update(meta.clock.last_time.to_le_bytes());
    h.finalize().into()
}

/// The state hash of `state`, hashing its memories from scratch.
pub fn state_hash_of(state: &super::CanisterState) -> Hash {
    let memory = StateHash::from_scratch(&state.heap, &state.stable).root(
        state.heap.len(),
        state.stable.len(),
        &state.globals,
        &state.system.certified_data,
    );
    let module: Hash = Sha256::digest(&state.wasm).into();
    state_root(
        &memory,
        &Metadata {
            module_sha256: &module,
            stable_mode: state.stable_mode,
            heap_type: state.heap_type,
            system: &state.system,
            clock: &state.clock,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator for test patterns.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    #[test]
    fn incremental_updates_equal_hashing_from_scratch() {
        let mut rng = Lcg(7);
        let mut memory = vec![0u8; 37 * PAGE_SIZE];
        let mut tree = MemoryTree::from_scratch(&memory);
        for round in 0..50 {
            let mut dirty = Vec::new();
            for _ in 0..(rng.next() % 6) {
                let at = rng.next() as usize % memory.len();
                memory[at] ^= (rng.next() as u8) | 1;
                dirty.push(at / PAGE_SIZE);
            }
            if round % 10 == 9 {
                // Grow by a few pages (as memory.grow would), marking nothing.
                memory.resize(memory.len() + (round / 10 + 1) * PAGE_SIZE, 0);
            }
            tree.update(&memory, dirty);
            assert_eq!(tree, MemoryTree::from_scratch(&memory), "round {round}");
        }
    }

    #[test]
    fn hashing_only_the_nonzero_pages_equals_hashing_all() {
        let mut rng = Lcg(11);
        for pages in [0usize, 1, 2, 3, 7, 64, 129] {
            let mut memory = vec![0u8; pages * PAGE_SIZE];
            let mut nonzero = Vec::new();
            for p in 0..pages {
                if rng.next().is_multiple_of(3) {
                    memory[p * PAGE_SIZE + rng.next() as usize % PAGE_SIZE] = 1;
                    nonzero.push(p as u64);
                } else if rng.next().is_multiple_of(2) {
                    // Listing a zero page is allowed: it is read and found zero.
                    nonzero.push(p as u64);
                }
            }
            assert_eq!(
                MemoryTree::from_nonzero(&memory, &nonzero),
                MemoryTree::from_scratch(&memory),
                "{pages} pages"
            );
        }
        // The tree itself knows which pages are not zero.
        let mut memory = vec![0u8; 9 * PAGE_SIZE];
        memory[3 * PAGE_SIZE + 5] = 1;
        memory[8 * PAGE_SIZE] = 1;
        assert_eq!(
            MemoryTree::from_scratch(&memory).nonzero_pages(),
            vec![3, 8]
        );
        // A memory whose length is not a whole number of pages.
        let memory = vec![0u8; PAGE_SIZE + 10];
        assert_eq!(
            MemoryTree::from_nonzero(&memory, &[]),
            MemoryTree::from_scratch(&memory)
        );
    }

    #[test]
    fn every_page_and_every_input_counts() {
        let memory = vec![1u8; 5 * PAGE_SIZE];
        let base = StateHash::from_scratch(&memory, &[]);
        let root =
            |s: &StateHash, g: &[(u32, GlobalValue)], c: &[u8]| s.root(memory.len(), 0, g, c);
        let r0 = root(&base, &[], b"");
        for page in 0..5 {
            let mut m = memory.clone();
            m[page * PAGE_SIZE + 17] = 2;
            let mut tree = base.clone();
            tree.heap.update(&m, [page]);
            assert_ne!(tree.heap.root(), base.heap.root(), "page {page}");
        }
        assert_ne!(r0, root(&base, &[(0, GlobalValue::I32(1))], b""));
        assert_ne!(r0, root(&base, &[], b"x"));
        assert_ne!(r0, base.root(memory.len(), 65536, &[], b""));
        // Equal states hash equal, independently built.
        assert_eq!(r0, root(&StateHash::from_scratch(&memory, &[]), &[], b""));
    }
}
