use super::*;

fn sample(heap_byte: u8) -> CanisterState {
    CanisterState {
        wasm: b"\0asm\x01\0\0\0".to_vec(),
        stable_mode: StableMode::Syscall,
        heap_type: HeapType::Wasm32,
        heap: vec![heap_byte; 65536],
        stable: vec![7; 65536 * 2],
        globals: vec![(0, GlobalValue::I32(42)), (3, GlobalValue::F64(1))],
        system: SystemState::new(vec![4]),
        clock: Clock::default(),
    }
}

fn checkpoint<'a>(state: &'a CanisterState, changed: Changed<'a>) -> Checkpoint<'a> {
    Checkpoint {
        wasm: &state.wasm,
        stable_mode: state.stable_mode,
        heap_type: state.heap_type,
        heap: &state.heap,
        stable: &state.stable,
        globals: state.globals.clone(),
        system: &state.system,
        clock: &state.clock,
        state_hash: [9; 32],
        changed,
        log_record: None,
    }
}

fn files_starting_with(dir: &Path, prefix: &str) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .count()
}

#[test]
fn save_then_load_round_trips_and_keeps_one_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path().join("c"));
    assert!(!dir.exists());
    assert!(matches!(
        dir.load(),
        Err(Error::State(StateError::NoCanister { .. }))
    ));
    dir.save(&sample(1)).unwrap();
    dir.save(&sample(2)).unwrap();
    assert_eq!(dir.load().unwrap(), sample(2));
    assert_eq!(files_starting_with(dir.path(), "checkpoint-"), 1);
    assert_eq!(files_starting_with(dir.path(), "wal-"), 1);
}

#[test]
fn a_delta_checkpoint_writes_only_the_listed_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    let mut state = sample(1);
    let first = dir.save(&state).unwrap();
    assert_eq!(first.pages_written, 16 + 32, "every non-zero page");
    state.heap[5 * PAGE_SIZE + 3] = 0xAA;
    state.stable[31 * PAGE_SIZE] = 0xBB;
    state.stable.resize(65536 * 3, 0); // grown: the new pages are zero
    state.clock.messages = 9;
    let stats = dir
        .checkpoint(&checkpoint(
            &state,
            Changed::Pages {
                heap: &[5],
                stable: &[31],
            },
        ))
        .unwrap();
    assert_eq!(stats.number, 1);
    assert_eq!(stats.pages_written, 2);
    let loaded = dir.load_checked().unwrap();
    assert_eq!(loaded.state, state);
    assert_eq!(loaded.state_hash, [9; 32]);
    // The log holds the two pages and nothing else.
    let wal = fs::metadata(dir.path().join("wal-1.bin")).unwrap().len();
    assert_eq!(wal, stats.log_bytes);
    assert_eq!(wal, 16 + 2 * RECORD_BYTES as u64);
}

#[test]
fn a_compare_checkpoint_finds_exactly_the_changed_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    let mut state = sample(1);
    dir.save(&state).unwrap();
    // A smaller heap with one changed page, as after an upgrade.
    state.heap.truncate(8 * PAGE_SIZE);
    state.heap[2 * PAGE_SIZE] = 0;
    state.stable[0] = 1;
    let stats = dir
        .checkpoint(&checkpoint(&state, Changed::Compare))
        .unwrap();
    assert_eq!(stats.pages_written, 2);
    assert_eq!(dir.load().unwrap(), state);
    assert_eq!(
        fs::metadata(dir.path().join(HEAP_FILE)).unwrap().len(),
        8 * PAGE_SIZE as u64
    );
}

#[test]
fn a_crash_before_the_switch_leaves_the_previous_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    dir.save(&sample(1)).unwrap();
    // The next checkpoint wrote its log and manifest but did not switch CURRENT.
    fs::write(tmp.path().join("wal-1.bin"), b"partial").unwrap();
    fs::write(tmp.path().join("checkpoint-1.json.tmp"), b"{").unwrap();
    assert_eq!(dir.load().unwrap(), sample(1));
    // The next checkpoint still works and replaces the leftovers.
    dir.save(&sample(3)).unwrap();
    assert_eq!(dir.load().unwrap(), sample(3));
}

#[test]
fn a_crash_after_the_switch_is_repaired_from_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    let mut state = sample(1);
    dir.save(&state).unwrap();
    state.heap[PAGE_SIZE] = 0x55;
    dir.checkpoint(&checkpoint(
        &state,
        Changed::Pages {
            heap: &[1],
            stable: &[],
        },
    ))
    .unwrap();
    // Pretend the apply was interrupted half way: the page file still has the old page and
    // APPLIED names the previous checkpoint.
    let mut w = PageWriter::open(&tmp.path().join(HEAP_FILE)).unwrap();
    w.write_page(1, &[1; PAGE_SIZE]).unwrap();
    fs::write(tmp.path().join(APPLIED), "0").unwrap();
    assert_eq!(dir.load().unwrap(), state);
    assert_eq!(fs::read_to_string(tmp.path().join(APPLIED)).unwrap(), "1");
}

#[test]
fn corrupted_files_are_reported_not_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    let mut state = sample(1);
    dir.save(&state).unwrap();
    state.heap[0] = 2;
    dir.checkpoint(&checkpoint(
        &state,
        Changed::Pages {
            heap: &[0],
            stable: &[],
        },
    ))
    .unwrap();
    // A damaged log that must be applied is refused.
    let wal = tmp.path().join("wal-1.bin");
    let mut bytes = fs::read(&wal).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&wal, bytes).unwrap();
    fs::write(tmp.path().join(APPLIED), "0").unwrap();
    let err = dir.load().unwrap_err().to_string();
    assert!(err.contains("wal-1.bin"), "{err}");
    // A page file shorter than the manifest says is refused.
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::new(tmp.path());
    dir.save(&sample(1)).unwrap();
    fs::write(tmp.path().join(STABLE_FILE), b"short").unwrap();
    let err = dir.load().unwrap_err().to_string();
    assert!(err.contains("stable.pages"), "{err}");
}

#[test]
fn an_old_format_directory_gets_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(CURRENT), "snapshot-3").unwrap();
    let err = StateDir::new(tmp.path()).load().unwrap_err().to_string();
    assert!(err.contains("older canister-vm"), "{err}");
}
