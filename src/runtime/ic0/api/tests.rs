use super::*;

const GIB: u64 = 1024 * 1024 * 1024;

fn api(entry: EntryPoint) -> Ic0 {
    let mut api = Ic0::new(
        SystemState::new(vec![4]),
        Vec::new(),
        400 * GIB / WASM_PAGE_SIZE,
        HeapType::Wasm32,
    );
    api.begin(MessageContext {
        entry,
        method: "m".into(),
        arg: b"DIDL\0\0".to_vec(),
        caller: vec![4],
        time: 42,
    });
    api
}

#[test]
fn stable64_grow_size_read_write() {
    let mut a = api(EntryPoint::Update);
    let mut heap = vec![0u8; 1024];
    assert_eq!(a.stable64_size(&mut heap).unwrap(), 0);
    assert_eq!(a.stable64_grow(&mut heap, 2).unwrap(), 0);
    assert_eq!(a.stable64_size(&mut heap).unwrap(), 2);
    heap[..4].copy_from_slice(b"abcd");
    let end = 2 * WASM_PAGE_SIZE as i64;
    a.stable64_write(&mut heap, end - 4, 0, 4).unwrap(); // exact end
    a.stable64_read(&mut heap, 100, end - 4, 4).unwrap();
    assert_eq!(&heap[100..104], b"abcd");
    // One past the end.
    assert!(matches!(
        a.stable64_read(&mut heap, 0, end - 3, 4),
        Err(HostTrap::StableOutOfBounds { .. })
    ));
    // offset + size overflows.
    assert!(matches!(
        a.stable64_write(&mut heap, -1, 0, 2),
        Err(HostTrap::StableOutOfBounds { .. })
    ));
    // Heap out of bounds is a different trap.
    assert!(matches!(
        a.stable64_read(&mut heap, 1020, 0, 8),
        Err(HostTrap::HeapOutOfBounds { .. })
    ));
    // Zero length returns before any bounds check.
    a.stable64_read(&mut heap, 1 << 40, 1 << 50, 0).unwrap();
    a.stable64_write(&mut heap, 1 << 50, 1 << 40, 0).unwrap();
}

#[test]
fn stable32_zero_length_ordering_matches_the_ic() {
    let mut a = api(EntryPoint::Update);
    let mut heap = vec![0u8; 1024];
    assert_eq!(a.stable_grow(&mut heap, 1).unwrap(), 0);
    // 32-bit read: zero length returns first.
    a.stable_read(&mut heap, 5000, 70000, 0).unwrap();
    // 32-bit write: bounds are checked even for zero length.
    assert!(matches!(
        a.stable_write(&mut heap, 70000, 0, 0),
        Err(HostTrap::StableOutOfBounds { .. })
    ));
    a.stable_write(&mut heap, 65536, 0, 0).unwrap(); // at the end is fine
    assert_eq!(a.stable_size(&mut heap).unwrap(), 1);
}

#[test]
fn grow_past_the_limits_returns_minus_one() {
    let mut a = api(EntryPoint::Update);
    let mut heap = vec![];
    a.stable_limit_pages = 10;
    assert_eq!(a.stable64_grow(&mut heap, 11).unwrap(), -1);
    assert_eq!(a.stable64_grow(&mut heap, i64::MAX).unwrap(), -1);
    assert_eq!(a.stable64_grow(&mut heap, 10).unwrap(), 0);
    assert_eq!(a.stable64_grow(&mut heap, 1).unwrap(), -1);
    assert_eq!(a.stable64_size(&mut heap).unwrap(), 10);
    // 32-bit: new size above 65536 pages is -1 even with a larger limit.
    let mut b = api(EntryPoint::Update);
    assert_eq!(b.stable_grow(&mut heap, 65537).unwrap(), -1);
    assert_eq!(b.stable_grow(&mut heap, -1).unwrap(), -1); // u32::MAX pages
}

#[test]
fn reply_rules() {
    let mut heap = b"hello".to_vec();
    let mut q = api(EntryPoint::Update);
    q.msg_reply_data_append(&mut heap, 0, 5).unwrap();
    q.msg_reply(&mut heap).unwrap();
    assert!(matches!(
        q.msg_reply(&mut heap),
        Err(HostTrap::AlreadyResponded { .. })
    ));
    assert!(matches!(
        q.msg_reject(&mut heap, 0, 1),
        Err(HostTrap::AlreadyResponded { .. })
    ));
    assert_eq!(q.take_response(), Some(Response::Reply(b"hello".to_vec())));

    let mut init = api(EntryPoint::Init);
    assert!(matches!(
        init.msg_reply(&mut heap),
        Err(HostTrap::NotAvailable { .. })
    ));
    let mut pre = api(EntryPoint::PreUpgrade);
    assert!(matches!(
        pre.msg_arg_data_size(&mut heap),
        Err(HostTrap::NotAvailable { .. })
    ));
}

#[test]
fn copies_check_both_ranges() {
    let mut a = api(EntryPoint::Update);
    let mut heap = vec![0u8; 16];
    a.msg_arg_data_copy(&mut heap, 2, 0, 6).unwrap();
    assert_eq!(&heap[2..8], b"DIDL\0\0");
    assert!(matches!(
        a.msg_arg_data_copy(&mut heap, 0, 1, 6),
        Err(HostTrap::BlobOutOfBounds { .. })
    ));
    assert!(matches!(
        a.msg_arg_data_copy(&mut heap, 12, 0, 6),
        Err(HostTrap::HeapOutOfBounds { .. })
    ));
    assert!(matches!(
        a.msg_arg_data_copy(&mut heap, u64::MAX, 0, 6),
        Err(HostTrap::HeapOutOfBounds { .. })
    ));
}

#[test]
fn system_functions() {
    let mut heap = vec![0u8; 64];
    let mut a = api(EntryPoint::Update);
    assert_eq!(a.time(&mut heap).unwrap(), 42);
    heap[0] = 4;
    assert_eq!(a.is_controller(&mut heap, 0, 1).unwrap(), 1);
    assert_eq!(a.is_controller(&mut heap, 1, 1).unwrap(), 0);
    assert!(a.is_controller(&mut heap, 0, 30).is_err());
    a.certified_data_set(&mut heap, 0, 32).unwrap();
    assert!(a.certified_data_set(&mut heap, 0, 33).is_err());
    assert_eq!(a.global_timer_set(&mut heap, 7).unwrap(), 0);
    assert_eq!(a.global_timer_set(&mut heap, 9).unwrap(), 7);
    a.canister_cycle_balance128(&mut heap, 8).unwrap();
    assert_eq!(
        u128::from_le_bytes(heap[8..24].try_into().unwrap()),
        crate::state::DEFAULT_CYCLE_BALANCE
    );
    assert_eq!(a.in_replicated_execution(&mut heap).unwrap(), 1);
    let mut q = api(EntryPoint::Query);
    assert_eq!(q.in_replicated_execution(&mut heap).unwrap(), 0);
    assert!(q.certified_data_set(&mut heap, 0, 1).is_err());
    assert!(matches!(
        a.call_perform(&mut heap),
        Err(HostTrap::Unsupported { .. })
    ));
    assert!(matches!(
        a.trap(&mut heap, 0, 1),
        Err(HostTrap::Explicit(m)) if m == "\u{4}"
    ));
}
