//! Suite 3, barrier vs signals: the same write pattern — `stores` 8-byte stores into each of
//! 256 pages of a 16 MiB memory (`benches/wat/dirty_pages.wat`), one store per loop iteration —
//! with its dirty pages tracked three ways, on wasmi:
//!
//! - `plain`: no tracking (the floor);
//! - `barrier`: the kernel instrumented with canister-vm's write barrier (metering off), the byte
//!   map read and cleared after each run;
//! - `signals`: the uninstrumented kernel over a memmap2 region handed to wasmi with
//!   `Memory::new_static`, tracked by `mprotect` + a SIGSEGV handler (the approach the IC uses
//!   for the heap): the region is made read-only before each run, the first write to a page
//!   faults, the handler records the page and makes it writable, and the dirty pages are
//!   collected after the run. This tracker is a benchmark-only baseline (Linux only).
//!
//! The sweep over stores per dirty page finds where the barrier's per-store cost overtakes the
//! signals' per-page cost. Ids: `barrier_signals/<stores>/<plain|barrier|signals>`; the time is
//! per run of 256 dirty pages.

#[cfg(target_os = "linux")]
mod linux {
    use criterion::Criterion;
    use wasmi::{Engine, Linker, Memory, MemoryType, Module, Store, TypedFunc};

    use canister_vm::instrument::{Config, instrument};

    use super::common::{self, Length};

    const KERNEL: &str = include_str!("wat/dirty_pages.wat");

    /// Pages of the kernel's memory: 16 MiB in 4 KiB pages.
    const MEMORY_PAGES: usize = 4096;
    /// Dirty pages per run, and the distance between them (in pages).
    const DIRTY: i32 = 256;
    const STRIDE: i32 = 16;
    /// Stores per dirty page, swept.
    pub const STORES: [i32; 8] = [1, 4, 16, 64, 256, 1024, 4096, 16384];

    /// An mprotect + SIGSEGV dirty-page tracker over one anonymous mapping.
    mod tracker {
        use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

        use memmap2::MmapMut;

        use super::MEMORY_PAGES;

        const PAGE: usize = 4096;
        static BASE: AtomicUsize = AtomicUsize::new(0);
        static LEN: AtomicUsize = AtomicUsize::new(0);
        static DIRTY: [AtomicU8; MEMORY_PAGES] = [const { AtomicU8::new(0) }; MEMORY_PAGES];

        /// The SIGSEGV handler: a write to a protected page of the tracked region records the
        /// page and unprotects it (the faulting store then re-executes); any other fault restores
        /// the default action, so it repeats and terminates the process.
        extern "C" fn on_fault(
            _sig: libc::c_int,
            info: *mut libc::siginfo_t,
            _ctx: *mut libc::c_void,
        ) {
            // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler.
            let addr = unsafe { (*info).si_addr() } as usize;
            let base = BASE.load(Ordering::Relaxed);
            let len = LEN.load(Ordering::Relaxed);
            if addr >= base && addr < base + len {
                let page = (addr - base) / PAGE;
                DIRTY[page].store(1, Ordering::Relaxed);
                // SAFETY: the page lies inside the tracked mapping; mprotect is async-signal-safe.
                unsafe {
                    libc::mprotect(
                        (base + page * PAGE) as *mut libc::c_void,
                        PAGE,
                        libc::PROT_READ | libc::PROT_WRITE,
                    );
                }
            } else {
                // SAFETY: resetting a signal disposition is async-signal-safe.
                unsafe {
                    libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                }
            }
        }

        /// The tracked region (leaked: it lives as long as the process).
        pub struct Tracker {
            base: *mut u8,
            len: usize,
        }

        impl Tracker {
            /// Maps `MEMORY_PAGES` pages, touches them (no first-touch faults later) and
            /// installs the handler. Once per process.
            pub fn new() -> Tracker {
                let len = MEMORY_PAGES * PAGE;
                let mut map = MmapMut::map_anon(len).expect("mmap");
                map.fill(0);
                let map: &'static mut MmapMut = Box::leak(Box::new(map));
                let base = map.as_mut_ptr();
                BASE.store(base as usize, Ordering::SeqCst);
                LEN.store(len, Ordering::SeqCst);
                // SAFETY: installing an SA_SIGINFO handler with a zeroed, then filled, sigaction.
                unsafe {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    let handler: extern "C" fn(
                        libc::c_int,
                        *mut libc::siginfo_t,
                        *mut libc::c_void,
                    ) = on_fault;
                    action.sa_sigaction = handler as usize;
                    action.sa_flags = libc::SA_SIGINFO;
                    libc::sigemptyset(&mut action.sa_mask);
                    assert_eq!(
                        libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()),
                        0
                    );
                }
                Tracker { base, len }
            }

            /// The region as the static buffer wasmi's `Memory::new_static` takes. Call once.
            pub fn buffer(&self) -> &'static mut [u8] {
                // SAFETY: the mapping is leaked (never unmapped) and handed out only once.
                unsafe { std::slice::from_raw_parts_mut(self.base, self.len) }
            }

            /// Starts a round: clears the dirty set and write-protects the whole region.
            pub fn protect(&self) {
                for d in &DIRTY {
                    d.store(0, Ordering::Relaxed);
                }
                // SAFETY: the range is the tracked mapping.
                let rc = unsafe {
                    libc::mprotect(self.base as *mut libc::c_void, self.len, libc::PROT_READ)
                };
                assert_eq!(rc, 0);
            }

            /// The pages written since [`Tracker::protect`].
            pub fn dirty(&self) -> Vec<u64> {
                (0..MEMORY_PAGES)
                    .filter(|&p| DIRTY[p].load(Ordering::Relaxed) != 0)
                    .map(|p| p as u64)
                    .collect()
            }
        }
    }

    type Run = TypedFunc<(i32, i32, i32), ()>;

    /// Instantiates `wasm` with `memory` as its `env.mem`.
    fn instantiate(
        engine: &Engine,
        wasm: &[u8],
        memory: impl FnOnce(&mut Store<()>) -> Memory,
    ) -> (Store<()>, wasmi::Instance, Run) {
        let module = Module::new(engine, wasm).unwrap();
        let mut store = Store::new(engine, ());
        let mem = memory(&mut store);
        let mut linker = Linker::<()>::new(engine);
        linker.define("env", "mem", mem).unwrap();
        let instance = linker.instantiate_and_start(&mut store, &module).unwrap();
        let run = instance
            .get_typed_func::<(i32, i32, i32), ()>(&store, "run")
            .unwrap();
        (store, instance, run)
    }

    fn plain_memory(store: &mut Store<()>) -> Memory {
        Memory::new(store, MemoryType::new(256, Some(256))).unwrap()
    }

    pub fn barrier_signals(c: &mut Criterion) {
        let engine = canister_vm::runtime::engine::new_engine();
        let plain = wat::parse_str(KERNEL).unwrap();
        let barrier = instrument(&plain, &Config::generic().metering(false))
            .unwrap()
            .wasm;

        let (mut plain_store, _, plain_run) = instantiate(&engine, &plain, plain_memory);
        let (mut barrier_store, barrier_instance, barrier_run) =
            instantiate(&engine, &barrier, plain_memory);
        let map = barrier_instance
            .get_memory(
                &barrier_store,
                &canister_vm::instrument::barrier::map_export(0),
            )
            .unwrap();
        let tracker = tracker::Tracker::new();
        let buffer = tracker.buffer();
        let (mut signal_store, _, signal_run) = instantiate(&engine, &plain, move |store| {
            Memory::new_static(store, MemoryType::new(256, Some(256)), buffer).unwrap()
        });

        // Both trackers find exactly the written pages.
        let expected: Vec<u64> = (0..DIRTY as u64).map(|p| p * STRIDE as u64).collect();
        tracker.protect();
        signal_run
            .call(&mut signal_store, (DIRTY, 1, STRIDE))
            .unwrap();
        assert_eq!(tracker.dirty(), expected);
        barrier_run
            .call(&mut barrier_store, (DIRTY, 1, STRIDE))
            .unwrap();
        assert_eq!(drain(map.data_mut(&mut barrier_store)), expected);

        let mut group = c.benchmark_group("barrier_signals");
        common::configure(&mut group, Length::Short);
        for stores in STORES {
            group.bench_function(format!("{stores}/plain"), |b| {
                b.iter(|| {
                    plain_run
                        .call(&mut plain_store, (DIRTY, stores, STRIDE))
                        .unwrap()
                })
            });
            group.bench_function(format!("{stores}/barrier"), |b| {
                b.iter(|| {
                    barrier_run
                        .call(&mut barrier_store, (DIRTY, stores, STRIDE))
                        .unwrap();
                    let dirty = drain(map.data_mut(&mut barrier_store));
                    assert_eq!(dirty.len(), DIRTY as usize);
                })
            });
            group.bench_function(format!("{stores}/signals"), |b| {
                b.iter(|| {
                    tracker.protect();
                    signal_run
                        .call(&mut signal_store, (DIRTY, stores, STRIDE))
                        .unwrap();
                    let dirty = tracker.dirty();
                    assert_eq!(dirty.len(), DIRTY as usize);
                })
            });
        }
        group.finish();
    }

    /// Reads and clears a byte map, as the runtime does after a message.
    fn drain(map: &mut [u8]) -> Vec<u64> {
        let mut out = Vec::new();
        for (p, b) in map[..MEMORY_PAGES].iter_mut().enumerate() {
            if *b != 0 {
                *b = 0;
                out.push(p as u64);
            }
        }
        out
    }
}

mod common;

#[cfg(target_os = "linux")]
criterion::criterion_group!(benches, linux::barrier_signals);
#[cfg(target_os = "linux")]
criterion::criterion_main!(benches);

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("barrier_signals: the mprotect + SIGSEGV baseline is Linux only");
}
