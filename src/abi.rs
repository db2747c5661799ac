//! The `ic0` ABI: the one table of the system API's functions and their signatures, a leaf
//! every room may use (instrumentation validates imports against it, the state records the heap
//! type, the runtime generates each engine's glue from it).
//!
//! [`for_each_ic0!`](crate::for_each_ic0) lists every `ic0` function canister-vm provides, with
//! its parameters in terms of `I` (the heap's address type: `i32` for a wasm32 heap, `i64` for a
//! wasm64 heap), `i32` and `i64`. Validation ([`signature`]) and every engine backend's linker
//! glue are generated from this one list, so a function is declared once (here) and implemented
//! once (in `runtime::ic0::api`).

/// A Wasm value type as it appears in an `ic0` signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
}

/// The address type of the canister's heap (memory 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum HeapType {
    /// A 32-bit heap (`I` = `i32`): the usual case.
    #[default]
    Wasm32,
    /// A 64-bit (memory64) heap (`I` = `i64`).
    Wasm64,
}

/// The signature of an `ic0` function for a given heap type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Parameter types.
    pub params: Vec<ValType>,
    /// Result types (zero or one).
    pub results: Vec<ValType>,
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[ValType]| {
            v.iter()
                .map(|t| match t {
                    ValType::I32 => "i32",
                    ValType::I64 => "i64",
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "({}) -> ({})", list(&self.params), list(&self.results))
    }
}

/// Calls `$m!` with the list of every `ic0` function: `name(param: kind, ...) -> kind;` where a kind
/// is `I` (heap address type), `i32` or `i64`. Functions without a result are written `-> ()`.
#[macro_export]
#[doc(hidden)]
macro_rules! for_each_ic0 {
    ($m:ident) => {
        $m! {
            msg_arg_data_size() -> I;
            msg_arg_data_copy(dst: I, offset: I, size: I) -> ();
            msg_caller_size() -> I;
            msg_caller_copy(dst: I, offset: I, size: I) -> ();
            msg_caller_info_data_size() -> I;
            msg_caller_info_data_copy(dst: I, offset: I, size: I) -> ();
            msg_caller_info_signer_size() -> I;
            msg_caller_info_signer_copy(dst: I, offset: I, size: I) -> ();
            msg_reject_code() -> i32;
            msg_reject_msg_size() -> I;
            msg_reject_msg_copy(dst: I, offset: I, size: I) -> ();
            msg_deadline() -> i64;
            msg_method_name_size() -> I;
            msg_method_name_copy(dst: I, offset: I, size: I) -> ();
            msg_reply_data_append(src: I, size: I) -> ();
            msg_reply() -> ();
            msg_reject(src: I, size: I) -> ();
            msg_cycles_available128(dst: I) -> ();
            msg_cycles_refunded128(dst: I) -> ();
            msg_cycles_accept128(max_high: i64, max_low: i64, dst: I) -> ();
            msg_cycles_available() -> i64;
            msg_cycles_refunded() -> i64;
            msg_cycles_accept(max_amount: i64) -> i64;
            cycles_burn128(amount_high: i64, amount_low: i64, dst: I) -> ();
            canister_self_size() -> I;
            canister_self_copy(dst: I, offset: I, size: I) -> ();
            canister_cycle_balance128(dst: I) -> ();
            canister_liquid_cycle_balance128(dst: I) -> ();
            canister_cycle_balance() -> i64;
            canister_status() -> i32;
            canister_version() -> i64;
            subnet_self_size() -> I;
            subnet_self_copy(dst: I, offset: I, size: I) -> ();
            subnet_self_node_count() -> i32;
            accept_message() -> ();
            stable_size() -> i32;
            stable_grow(new_pages: i32) -> i32;
            stable_write(offset: i32, src: i32, size: i32) -> ();
            stable_read(dst: i32, offset: i32, size: i32) -> ();
            stable64_size() -> i64;
            stable64_grow(new_pages: i64) -> i64;
            stable64_write(offset: i64, src: i64, size: i64) -> ();
            stable64_read(dst: i64, offset: i64, size: i64) -> ();
            root_key_size() -> I;
            root_key_copy(dst: I, offset: I, size: I) -> ();
            certified_data_set(src: I, size: I) -> ();
            data_certificate_present() -> i32;
            data_certificate_size() -> I;
            data_certificate_copy(dst: I, offset: I, size: I) -> ();
            time() -> i64;
            global_timer_set(timestamp: i64) -> i64;
            performance_counter(counter_type: i32) -> i64;
            is_controller(src: I, size: I) -> i32;
            in_replicated_execution() -> i32;
            cost_call(method_name_size: i64, payload_size: i64, dst: I) -> ();
            cost_create_canister(dst: I) -> ();
            cost_http_request(request_size: i64, max_res_bytes: i64, dst: I) -> ();
            cost_http_request_v2(params_src: I, params_size: I, dst: I) -> ();
            cost_sign_with_ecdsa(src: I, size: I, ecdsa_curve: i32, dst: I) -> i32;
            cost_sign_with_schnorr(src: I, size: I, algorithm: i32, dst: I) -> i32;
            cost_vetkd_derive_key(src: I, size: I, vetkd_curve: i32, dst: I) -> i32;
            env_var_count() -> I;
            env_var_name_size(index: I) -> I;
            env_var_name_copy(index: I, dst: I, offset: I, size: I) -> ();
            env_var_name_exists(name_src: I, name_size: I) -> i32;
            env_var_value_size(name_src: I, name_size: I) -> I;
            env_var_value_copy(name_src: I, name_size: I, dst: I, offset: I, size: I) -> ();
            debug_print(src: I, size: I) -> ();
            trap(src: I, size: I) -> ();
            call_new(callee_src: I, callee_size: I, name_src: I, name_size: I, reply_fun: I, reply_env: I, reject_fun: I, reject_env: I) -> ();
            call_on_cleanup(fun: I, env: I) -> ();
            call_data_append(src: I, size: I) -> ();
            call_with_best_effort_response(timeout_seconds: i32) -> ();
            call_cycles_add128(high: i64, low: i64) -> ();
            call_cycles_add(amount: i64) -> ();
            call_perform() -> i32;
        }
    };
}

macro_rules! kind_to_valtype {
    (I, $heap:expr) => {
        match $heap {
            HeapType::Wasm32 => ValType::I32,
            HeapType::Wasm64 => ValType::I64,
        }
    };
    (i32, $heap:expr) => {
        ValType::I32
    };
    (i64, $heap:expr) => {
        ValType::I64
    };
}

macro_rules! signature_table {
    ($( $name:ident ( $($p:ident : $pk:tt),* ) -> $rk:tt ;)*) => {
        /// The names of every `ic0` function canister-vm provides.
        pub const NAMES: &[&str] = &[$(stringify!($name)),*];

        /// The signature of `ic0.<name>` for a canister whose heap has type `heap`, or `None` if
        /// canister-vm does not provide that function.
        pub fn signature(name: &str, heap: HeapType) -> Option<Signature> {
            match name {
                $(stringify!($name) => Some(Signature {
                    params: vec![$(kind_to_valtype!($pk, heap)),*],
                    results: signature_table!(@result $rk, heap),
                }),)*
                _ => None,
            }
        }
    };
    (@result (), $heap:expr) => { vec![] };
    (@result $k:tt, $heap:expr) => { vec![kind_to_valtype!($k, $heap)] };
}

for_each_ic0!(signature_table);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_heap_type() {
        let s32 = signature("msg_arg_data_copy", HeapType::Wasm32).unwrap();
        assert_eq!(s32.params, vec![ValType::I32; 3]);
        let s64 = signature("msg_arg_data_copy", HeapType::Wasm64).unwrap();
        assert_eq!(s64.params, vec![ValType::I64; 3]);
        // Stable functions have fixed types whatever the heap.
        let grow = signature("stable_grow", HeapType::Wasm64).unwrap();
        assert_eq!(grow.params, vec![ValType::I32]);
        assert_eq!(grow.results, vec![ValType::I32]);
        assert!(
            signature("msg_reply", HeapType::Wasm32)
                .unwrap()
                .results
                .is_empty()
        );
        assert_eq!(signature("nope", HeapType::Wasm32), None);
        assert!(NAMES.contains(&"stable64_read"));
    }
}
