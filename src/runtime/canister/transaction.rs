//! Transactional memory of a canister: the committed copies of its memories, commit and
//! rollback of one message in O(pages it dirtied), snapshots for upgrades, and the sessions of
//! composite queries.

use super::*;

/// What a message rollback needs besides the committed memory copies.
pub(super) struct Mark {
    pub(super) globals: Vec<(u32, GlobalValue)>,
    pub(super) system: SystemState,
    pub(super) heap_len: usize,
    pub(super) stable_len: usize,
}

/// The committed memories: copies of heap and stable memory as of the last committed message,
/// kept page-exact so commit and rollback copy only the pages a message dirtied, and the state
/// hash, updated from the same dirty pages.
#[derive(Debug, Default)]
pub(super) struct Committed {
    pub(super) heap: Vec<u8>,
    pub(super) stable: Vec<u8>,
    pub(super) hash: crate::state::hash::StateHash,
}

pub(super) const PAGE: usize = crate::state::hash::PAGE_SIZE;

/// Copies the 4 KiB pages `pages` from `from` to `to` (both of the same length).
pub(super) fn copy_pages(to: &mut [u8], from: &[u8], pages: &[u64]) {
    for &p in pages {
        let start = p as usize * PAGE;
        let end = (start + PAGE).min(from.len());
        if start < end {
            to[start..end].copy_from_slice(&from[start..end]);
        }
    }
}

/// Reads and clears a byte map: the indices of the marked pages below `pages`.
pub(super) fn drain_map(map: &mut [u8], pages: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let n = (pages + 1).min(map.len()); // marks may land one page past the end
    for (chunk_index, chunk) in map[..n].chunks_mut(64).enumerate() {
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        for (i, b) in chunk.iter_mut().enumerate() {
            if *b != 0 {
                *b = 0;
                let page = chunk_index * 64 + i;
                if page < pages {
                    out.push(page as u64);
                }
            }
        }
    }
    out
}

/// Everything a rollback restores.
pub(super) struct Snapshot {
    pub(super) heap: Vec<u8>,
    pub(super) stable: Vec<u8>,
    pub(super) globals: Vec<(u32, GlobalValue)>,
    pub(super) system: SystemState,
    /// The only non-zero pages of `heap` and `stable`, when known: restoring then writes only
    /// those past the memories' current sizes.
    pub(super) nonzero: Option<NonZeroPages>,
}

/// A composite query's hold on one canister ([`Canister::begin_session`]): the canister's
/// messages of the evaluation see each other's changes, which all go when it ends. Holds what
/// the committed pages were before the evaluation first changed them (O(pages changed)).
pub(crate) struct Session {
    pub(super) mark: Mark,
    pub(super) heap: BTreeMap<u64, Option<Vec<u8>>>,
    pub(super) stable: BTreeMap<u64, Option<Vec<u8>>>,
}

/// The bytes of 4 KiB page `p` of `memory`, if the memory reaches it.
pub(super) fn page_copy(memory: &[u8], p: u64) -> Option<Vec<u8>> {
    let start = p as usize * PAGE;
    (start < memory.len()).then(|| memory[start..(start + PAGE).min(memory.len())].to_vec())
}

impl Canister {
    /// Takes the committed copies (and the state hash) from the live memories, and clears the
    /// byte maps. O(memory): at instantiation, restore and upgrade only.
    pub(super) fn reset_committed(&mut self) -> Result<(), Error> {
        self.reset_committed_with(None, None)
    }

    /// [`reset_committed`](Self::reset_committed) where the caller already holds a memory's
    /// bytes: `Some((bytes, nonzero))` (equal to the live memory, non-zero only at the pages
    /// `nonzero` lists) becomes that memory's committed copy and is hashed at those pages only,
    /// so the memory costs O(non-zero pages) instead of O(its size).
    pub(super) fn reset_committed_with(
        &mut self,
        heap: Option<(Vec<u8>, &[u64])>,
        stable: Option<(Vec<u8>, &[u64])>,
    ) -> Result<(), Error> {
        use crate::state::hash::{MemoryTree, StateHash};
        self.take_dirty();
        let committed = |live: &[u8], known: Option<(Vec<u8>, &[u64])>| match known {
            Some((bytes, nonzero)) if bytes.len() == live.len() => {
                let tree = MemoryTree::from_nonzero(&bytes, nonzero);
                Ok((bytes, tree))
            }
            _ => {
                // A sparse copy: zero pages of the committed copy stay unallocated.
                let bytes = crate::state::sparse_copy(live, None)
                    .map_err(|why| Error::State(StateError::Restore { why }))?;
                let tree = MemoryTree::from_scratch(&bytes);
                Ok::<_, Error>((bytes, tree))
            }
        };
        let (heap, heap_tree) = committed(self.heap(), heap)?;
        let (stable, stable_tree) = committed(self.stable(), stable)?;
        self.committed = Committed {
            heap,
            stable,
            hash: StateHash {
                heap: heap_tree,
                stable: stable_tree,
            },
        };
        Ok(())
    }

    /// Reads and clears the dirty pages of heap and stable memory.
    pub(super) fn take_dirty(&mut self) -> DirtyPages {
        let mut dirty = DirtyPages::default();
        let heap_pages = self
            .instance
            .memory(Mem::Heap)
            .map(|h| h.len().div_ceil(PAGE));
        if let Some(pages) = heap_pages
            && let Some(map) = self.instance.memory_mut(Mem::HeapMap)
        {
            dirty.heap = drain_map(map, pages);
            // Pages written by host functions, which the barrier does not see.
            let host = std::mem::take(&mut self.instance.ic0_mut().heap_dirty);
            if !host.is_empty() {
                dirty
                    .heap
                    .extend(host.into_iter().filter(|&p| p < pages as u64));
                dirty.heap.sort_unstable();
                dirty.heap.dedup();
            }
        }
        let stable_pages = self
            .instance
            .memory(Mem::Stable)
            .map(|s| s.len().div_ceil(PAGE));
        let native = match stable_pages {
            Some(pages) => match self.instance.memory_mut(Mem::StableMap) {
                Some(map) => {
                    dirty.stable = drain_map(map, pages);
                    true
                }
                None => false,
            },
            None => false,
        };
        if !native {
            // System-API mode: the host functions record the pages they write.
            let ic0 = self.instance.ic0_mut();
            let mut pages = std::mem::take(&mut ic0.stable_dirty);
            pages.sort_unstable();
            pages.dedup();
            let limit = ic0.stable.len().div_ceil(PAGE) as u64;
            pages.retain(|&p| p < limit);
            dirty.stable = pages;
        }
        dirty
    }

    pub(super) fn mark(&self) -> Mark {
        Mark {
            globals: self.globals(),
            system: self.system().clone(),
            heap_len: self.heap().len(),
            stable_len: self.stable().len(),
        }
    }

    /// Makes the live memories the committed ones: copies the dirty pages (O(dirty)).
    pub(super) fn commit(&mut self, dirty: &DirtyPages) {
        let heap = heap_of(&*self.instance);
        let stable = stable_of(&*self.instance);
        let c = &mut self.committed;
        // Memories only grow while a message commits; the new pages are zero unless dirty.
        let _ = crate::state::grow_zeroed(&mut c.heap, heap.len());
        let _ = crate::state::grow_zeroed(&mut c.stable, stable.len());
        c.heap.truncate(heap.len());
        c.stable.truncate(stable.len());
        copy_pages(&mut c.heap, heap, &dirty.heap);
        copy_pages(&mut c.stable, stable, &dirty.stable);
        c.hash
            .heap
            .update(heap, dirty.heap.iter().map(|&p| p as usize));
        c.hash
            .stable
            .update(stable, dirty.stable.iter().map(|&p| p as usize));
    }

    /// Puts the committed state back: the dirty pages (O(dirty)) when no memory grew, else a
    /// fresh instance.
    pub(super) fn rollback(&mut self, mark: Mark, dirty: &DirtyPages) -> Result<(), Error> {
        // An instance whose engine panicked is not trusted: it is replaced by a fresh one.
        let engine_failed = std::mem::take(&mut self.engine_failed);
        let grew = self.heap().len() != mark.heap_len
            || (self.native_stable() && self.stable().len() != mark.stable_len);
        if grew || engine_failed {
            // Sparse copies of the committed memories, at the pages their hash trees know to be
            // non-zero (a dense clone would make all of them resident).
            let mut snap = self.sparse_snapshot()?;
            snap.globals = mark.globals;
            snap.system = mark.system;
            let committed = std::mem::take(&mut self.committed);
            if engine_failed {
                *self = self.reinstantiate(snap.system.clone())?;
            }
            self.restore(&snap)?;
            self.take_dirty();
            self.committed = committed;
            return Ok(());
        }
        if let Some(heap) = self.instance.memory_mut(Mem::Heap) {
            copy_pages(heap, &self.committed.heap, &dirty.heap);
        }
        if self.native_stable() {
            if let Some(stable) = self.instance.memory_mut(Mem::Stable) {
                copy_pages(stable, &self.committed.stable, &dirty.stable);
            }
        } else {
            let stable = &mut self.instance.ic0_mut().stable;
            stable.truncate(mark.stable_len);
            copy_pages(stable, &self.committed.stable, &dirty.stable);
        }
        self.restore_globals(&mark.globals)?;
        self.instance.ic0_mut().system = mark.system;
        Ok(())
    }

    /// Ends a message: commits it or rolls it back, and records its dirty pages.
    pub(super) fn finish(
        &mut self,
        mark: Mark,
        commit: bool,
        outcome: &mut Outcome,
    ) -> Result<(), Error> {
        let dirty = self.take_dirty();
        outcome.written = dirty.clone();
        if commit {
            self.commit(&dirty);
            outcome.dirty = dirty;
        } else {
            self.rollback(mark, &dirty)?;
        }
        Ok(())
    }

    /// Whether stable memory is the injected Wasm memory (native mode) rather than the host
    /// buffer of the system-API mode.
    pub(super) fn native_stable(&self) -> bool {
        self.instance.memory(Mem::Stable).is_some()
    }

    /// The committed state (equal to the live one between messages), copying only the pages
    /// the state hash's trees know to be non-zero.
    pub(super) fn sparse_snapshot(&self) -> Result<Snapshot, Error> {
        let nonzero = NonZeroPages {
            heap: self.committed.hash.heap.nonzero_pages(),
            stable: self.committed.hash.stable.nonzero_pages(),
        };
        let copy = |bytes: &[u8], pages: &[u64]| {
            crate::state::sparse_copy(bytes, Some(pages))
                .map_err(|why| Error::State(StateError::Restore { why }))
        };
        Ok(Snapshot {
            heap: copy(&self.committed.heap, &nonzero.heap)?,
            stable: copy(&self.committed.stable, &nonzero.stable)?,
            globals: self.globals(),
            system: self.system().clone(),
            nonzero: Some(nonzero),
        })
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot {
            heap: self.heap().to_vec(),
            stable: self.stable().to_vec(),
            globals: self.globals(),
            system: self.system().clone(),
            nonzero: None,
        }
    }

    /// Grows `memory` to `bytes.len()` bytes (never shrinks) and writes `bytes` at 0; grows the
    /// write barrier's byte map `map` with it. With `nonzero` (the only non-zero pages of
    /// `bytes`), the part the growth added (zero) is written only at those pages.
    pub(super) fn fill_memory(
        &mut self,
        memory: Mem,
        map: Mem,
        bytes: &[u8],
        nonzero: Option<&[u64]>,
    ) -> Result<(), Error> {
        let restore_err = |why: String| Error::State(StateError::Restore { why });
        let current = self.instance.memory(memory).map_or(0, |m| m.len()) as u64;
        let want = bytes.len() as u64;
        if want < current {
            return Err(restore_err(format!(
                "saved memory has {want} bytes, fewer than the module's initial {current}"
            )));
        }
        if want > current {
            self.instance
                .grow(memory, (want - current) / WASM_PAGE_SIZE)
                .map_err(|e| restore_err(format!("growing memory to {want} bytes: {e}")))?;
            // The barrier's byte map must cover the grown memory: one 64 KiB map page per 4096
            // memory pages, plus one.
            if self.instance.memory(map).is_some() {
                let need = want / WASM_PAGE_SIZE / 4096 + 1;
                let have = self.instance.pages(map);
                if need > have {
                    self.instance
                        .grow(map, need - have)
                        .map_err(|e| restore_err(format!("growing the dirty-page map: {e}")))?;
                }
            }
        }
        if let Some(data) = self.instance.memory_mut(memory) {
            // Page by page, writing only pages that differ: restoring a mostly-zero memory into
            // a fresh (zero) one leaves its zero pages untouched, and not resident.
            let compared = match nonzero {
                Some(_) => current as usize,
                None => bytes.len(),
            };
            for (dst, src) in data[..compared]
                .chunks_mut(PAGE)
                .zip(bytes[..compared].chunks(PAGE))
            {
                if dst != src {
                    dst.copy_from_slice(src);
                }
            }
            if let Some(pages) = nonzero {
                // Memory added by the growth reads zero: only the non-zero pages past the
                // initial size need writing.
                let first = pages.partition_point(|&p| (p as usize) * PAGE < compared);
                crate::state::copy_listed_pages(&mut data[..bytes.len()], bytes, &pages[first..]);
            }
        }
        Ok(())
    }

    pub(super) fn set_stable(
        &mut self,
        stable: &[u8],
        nonzero: Option<&[u64]>,
    ) -> Result<(), Error> {
        if self.native_stable() {
            // Native mode: a Wasm memory cannot shrink; `restore` re-instantiates instead.
            if stable.len() < self.stable().len() {
                return Err(Error::State(StateError::Restore {
                    why: "stable memory cannot shrink in place".into(),
                }));
            }
            self.fill_memory(Mem::Stable, Mem::StableMap, stable, nonzero)?;
            self.instance
                .set_stable_bytes(stable.len() as i64)
                .map_err(|why| Error::State(StateError::Restore { why }))?;
        } else {
            // A sparse copy: a mostly-zero stable memory stays mostly unallocated.
            self.instance.ic0_mut().stable = crate::state::sparse_copy(stable, nonzero)
                .map_err(|why| Error::State(StateError::Restore { why }))?;
        }
        Ok(())
    }

    /// Puts the canister back to `snap`, in place when memory sizes allow, else by
    /// re-instantiating the module.
    pub(super) fn restore(&mut self, snap: &Snapshot) -> Result<(), Error> {
        let heap_len = self.heap().len();
        let stable_len = self.stable().len();
        let in_place = heap_len <= snap.heap.len()
            && (!self.native_stable() || stable_len <= snap.stable.len());
        if !in_place {
            *self = self.reinstantiate(snap.system.clone())?;
        }
        if self.instance.memory(Mem::Heap).is_some() {
            let nonzero = snap.nonzero.as_ref().map(|n| &n.heap[..]);
            self.fill_memory(Mem::Heap, Mem::HeapMap, &snap.heap, nonzero)?;
        }
        self.set_stable(&snap.stable, snap.nonzero.as_ref().map(|n| &n.stable[..]))?;
        self.restore_globals(&snap.globals)?;
        self.instance.ic0_mut().system = snap.system.clone();
        Ok(())
    }

    pub(super) fn restore_globals(&mut self, globals: &[(u32, GlobalValue)]) -> Result<(), Error> {
        for (index, value) in globals {
            self.instance
                .set_global(*index, *value)
                .map_err(|why| Error::State(StateError::Restore { why }))?;
        }
        Ok(())
    }

    /// Starts a composite query's evaluation on this canister (see [`Session`]).
    pub(crate) fn begin_session(&self) -> Session {
        Session {
            mark: self.mark(),
            heap: BTreeMap::new(),
            stable: BTreeMap::new(),
        }
    }

    /// Runs one message of a composite query's evaluation: a trap undoes the message; otherwise
    /// its changes stay for the evaluation's later messages (until [`end_session`]).
    ///
    /// [`end_session`]: Self::end_session
    pub(crate) fn session_message(
        &mut self,
        session: &mut Session,
        target: Target<'_>,
        ctx: MessageContext,
    ) -> Result<Run, Error> {
        let mark = self.mark();
        let mut run = self.run_target(target, ctx);
        let dirty = self.take_dirty();
        run.outcome.written = dirty.clone();
        if run.trapped {
            self.rollback(mark, &dirty)?;
        } else {
            for &p in &dirty.heap {
                let old = page_copy(&self.committed.heap, p);
                session.heap.entry(p).or_insert(old);
            }
            for &p in &dirty.stable {
                let old = page_copy(&self.committed.stable, p);
                session.stable.entry(p).or_insert(old);
            }
            self.commit(&dirty);
            run.outcome.dirty = dirty;
        }
        Ok(run)
    }

    /// Ends a composite query's evaluation: everything its messages changed is undone, in
    /// O(pages changed) (O(memory) if a memory grew).
    pub(crate) fn end_session(&mut self, session: Session) -> Result<(), Error> {
        let Session { mark, heap, stable } = session;
        let c = &mut self.committed;
        let grew = c.heap.len() != mark.heap_len || c.stable.len() != mark.stable_len;
        for (memory, pages) in [(&mut c.heap, &heap), (&mut c.stable, &stable)] {
            for (&p, old) in pages {
                if let Some(old) = old {
                    let start = p as usize * PAGE;
                    memory[start..start + old.len()].copy_from_slice(old);
                }
            }
        }
        c.heap.truncate(mark.heap_len);
        c.stable.truncate(mark.stable_len);
        if grew {
            // The instance's memories are larger than before: a fresh instance with the
            // committed bytes (dense copies), then committed copies and hashes from it.
            let snap = Snapshot {
                heap: c.heap.clone(),
                stable: c.stable.clone(),
                globals: mark.globals,
                system: mark.system,
                nonzero: None,
            };
            self.restore(&snap)?;
            self.take_dirty();
            return self.reset_committed();
        }
        let (heap, stable): (Vec<u64>, Vec<u64>) =
            (heap.into_keys().collect(), stable.into_keys().collect());
        c.hash
            .heap
            .update(&c.heap, heap.iter().map(|&p| p as usize));
        c.hash
            .stable
            .update(&c.stable, stable.iter().map(|&p| p as usize));
        self.rollback(mark, &DirtyPages { heap, stable })
    }
}
