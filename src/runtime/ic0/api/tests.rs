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
        method: "m".into(),
        arg: b"DIDL\0\0".to_vec(),
        ..MessageContext::new(entry, 42)
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
    // No call under construction.
    assert!(matches!(
        a.call_perform(&mut heap),
        Err(HostTrap::ContractViolation(_))
    ));
    assert!(matches!(
        a.trap(&mut heap, 0, 1),
        Err(HostTrap::Explicit(m)) if m == "\u{4}"
    ));
}

fn on_subnet(entry: EntryPoint) -> Ic0 {
    let mut a = api(entry);
    a.calls_enabled = true;
    a
}

#[test]
fn calls_are_assembled_performed_and_discarded_with_their_cycles() {
    let mut a = on_subnet(EntryPoint::Update);
    let mut heap = vec![0u8; 64];
    heap[..2].copy_from_slice(&[1, 2]);
    heap[10..14].copy_from_slice(b"ping");
    let balance = a.system.cycle_balance;
    a.call_new(&mut heap, 0, 2, 10, 4, 1, 2, 3, 4).unwrap();
    a.call_data_append(&mut heap, 10, 4).unwrap();
    a.call_cycles_add128(&mut heap, 0, 100).unwrap();
    a.call_on_cleanup(&mut heap, 5, 6).unwrap();
    assert!(a.call_on_cleanup(&mut heap, 5, 6).is_err(), "at most once");
    assert_eq!(a.system.cycle_balance, balance - 100);
    assert_eq!(a.call_perform(&mut heap).unwrap(), 0);
    assert!(
        a.call_data_append(&mut heap, 10, 4).is_err(),
        "no call after perform"
    );
    // A second call, never performed: its cycles come back.
    a.call_new(&mut heap, 0, 2, 10, 4, 1, 2, 3, 4).unwrap();
    a.call_cycles_add128(&mut heap, 0, 50).unwrap();
    assert_eq!(a.system.cycle_balance, balance - 150);
    let calls = a.take_calls();
    assert_eq!(a.system.cycle_balance, balance - 100);
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(
        (c.callee.as_slice(), c.method.as_str(), c.arg.as_slice()),
        (&[1u8, 2][..], "ping", &b"ping"[..])
    );
    assert_eq!(
        (c.cycles, c.reply, c.reject),
        (
            100,
            Callback { fun: 1, env: 2 },
            Callback { fun: 3, env: 4 }
        )
    );
    assert_eq!(c.cleanup, Some(Callback { fun: 5, env: 6 }));
    // More cycles than the balance traps.
    a.call_new(&mut heap, 0, 2, 10, 4, 1, 2, 3, 4).unwrap();
    assert!(matches!(
        a.call_cycles_add128(&mut heap, 1, 0),
        Err(HostTrap::ContractViolation(_))
    ));
}

#[test]
fn calls_need_an_entry_point_that_may_call_and_a_subnet() {
    let mut heap = vec![0u8; 64];
    for entry in [
        EntryPoint::Query,
        EntryPoint::Init,
        EntryPoint::PreUpgrade,
        EntryPoint::Cleanup,
    ] {
        let mut a = on_subnet(entry);
        assert!(
            matches!(
                a.call_new(&mut heap, 0, 1, 0, 1, 0, 0, 0, 0),
                Err(HostTrap::NotAvailable { .. })
            ),
            "{entry}"
        );
    }
    let mut alone = api(EntryPoint::Update);
    assert!(matches!(
        alone.call_new(&mut heap, 0, 1, 0, 1, 0, 0, 0, 0),
        Err(HostTrap::Unsupported { .. })
    ));
    let mut a = on_subnet(EntryPoint::Heartbeat);
    a.call_new(&mut heap, 0, 1, 0, 1, 0, 0, 0, 0).unwrap();
    assert!(a.call_perform(&mut heap).is_ok());
}

#[test]
fn callbacks_see_reject_codes_refunds_and_whether_they_may_reply() {
    let mut heap = vec![0u8; 64];
    let mut a = api(EntryPoint::RejectCallback);
    a.begin(MessageContext {
        reject: Some((4, "nope".into())),
        cycles_refunded: 7,
        ..MessageContext::new(EntryPoint::RejectCallback, 1)
    });
    assert_eq!(a.msg_reject_code(&mut heap).unwrap(), 4);
    assert_eq!(a.msg_reject_msg_size(&mut heap).unwrap(), 4);
    a.msg_reject_msg_copy(&mut heap, 0, 0, 4).unwrap();
    assert_eq!(&heap[..4], b"nope");
    a.msg_cycles_refunded128(&mut heap, 16).unwrap();
    assert_eq!(heap[16], 7);
    assert!(
        a.msg_arg_data_size(&mut heap).is_err(),
        "no argument in a reject callback"
    );
    a.msg_reply(&mut heap).unwrap();

    let mut r = api(EntryPoint::ReplyCallback);
    r.begin(MessageContext {
        replied: true,
        ..MessageContext::new(EntryPoint::ReplyCallback, 1)
    });
    assert_eq!(r.msg_reject_code(&mut heap).unwrap(), 0);
    assert!(r.msg_reject_msg_size(&mut heap).is_err());
    assert!(
        matches!(
            r.msg_reply(&mut heap),
            Err(HostTrap::AlreadyResponded { .. })
        ),
        "the context was answered"
    );
}

#[test]
fn cycles_accept_burn_and_64_bit_forms() {
    let mut heap = vec![0u8; 64];
    let mut a = api(EntryPoint::Update);
    a.begin(MessageContext {
        cycles_available: 1000,
        ..MessageContext::new(EntryPoint::Update, 1)
    });
    let balance = a.system.cycle_balance;
    a.msg_cycles_accept128(&mut heap, 0, 300, 0).unwrap();
    assert_eq!(u128::from_le_bytes(heap[..16].try_into().unwrap()), 300);
    assert_eq!(a.msg_cycles_available(&mut heap).unwrap(), 700);
    assert_eq!(a.msg_cycles_accept(&mut heap, 10_000).unwrap(), 700);
    assert_eq!(a.system.cycle_balance, balance + 1000);
    a.cycles_burn128(&mut heap, 0, 400, 0).unwrap();
    assert_eq!(a.system.cycle_balance, balance + 600);
    a.system.cycle_balance = u128::MAX;
    assert!(
        a.canister_cycle_balance(&mut heap).is_err(),
        "does not fit in 64 bits"
    );
}

#[test]
fn costs_environment_variables_and_caller_info() {
    let mut heap = vec![0u8; 64];
    let mut a = api(EntryPoint::Update);
    a.cost_create_canister(&mut heap, 0).unwrap();
    assert_eq!(
        u128::from_le_bytes(heap[..16].try_into().unwrap()),
        500_000_000_000
    );
    a.cost_call(&mut heap, 4, 6, 0).unwrap();
    assert_eq!(
        u128::from_le_bytes(heap[..16].try_into().unwrap()),
        260_000 + 10_000
    );
    assert_eq!(a.cost_sign_with_ecdsa(&mut heap, 0, 4, 0, 16).unwrap(), 2);
    assert_eq!(a.cost_sign_with_ecdsa(&mut heap, 0, 4, 7, 16).unwrap(), 1);
    assert_eq!(a.env_var_count(&mut heap).unwrap(), 0);
    assert_eq!(a.env_var_name_exists(&mut heap, 0, 3).unwrap(), 0);
    assert!(a.env_var_value_size(&mut heap, 0, 3).is_err());
    assert_eq!(a.msg_caller_info_data_size(&mut heap).unwrap(), 0);
    assert!(a.msg_caller_info_signer_copy(&mut heap, 0, 0, 1).is_err());
    assert_eq!(a.subnet_self_node_count(&mut heap).unwrap(), 1);
}
