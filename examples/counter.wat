;; A minimal canister, hand-written in WAT so the demo needs no wasm32 build.
;;
;; update inc() -> (nat64)   increments the counter (kept on the heap) and replies with it
;; query  read() -> (nat64)  replies with the counter
;; canister_pre_upgrade      saves the counter to stable memory (growing it on first use)
;; canister_post_upgrade     restores the counter from stable memory
(module
  (import "ic0" "msg_reply_data_append" (func $reply_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "debug_print" (func $debug_print (param i32 i32)))
  (import "ic0" "stable64_size" (func $stable64_size (result i64)))
  (import "ic0" "stable64_grow" (func $stable64_grow (param i64) (result i64)))
  (import "ic0" "stable64_read" (func $stable64_read (param i64 i64 i64)))
  (import "ic0" "stable64_write" (func $stable64_write (param i64 i64 i64)))

  (memory (export "memory") 1)
  ;; 0..8: the counter. 16..23: the Candid header of a reply holding one nat64.
  (data (i32.const 16) "DIDL\00\01\78")
  (data (i32.const 32) "counter initialised")
  (data (i32.const 64) "counter restored from stable memory")

  ;; Replies with the counter as Candid `(nat64)`.
  (func $reply_counter
    (i64.store (i32.const 23) (i64.load (i32.const 0)))
    (call $reply_append (i32.const 16) (i32.const 15))
    (call $reply))

  (func (export "canister_init")
    (call $debug_print (i32.const 32) (i32.const 19)))

  (func (export "canister_update inc")
    (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1)))
    (call $reply_counter))

  (func (export "canister_query read")
    (call $reply_counter))

  (func (export "canister_pre_upgrade")
    (if (i64.eqz (call $stable64_size))
      (then (drop (call $stable64_grow (i64.const 1)))))
    (call $stable64_write (i64.const 0) (i64.const 0) (i64.const 8)))

  (func (export "canister_post_upgrade")
    (if (i64.ne (call $stable64_size) (i64.const 0))
      (then
        (call $stable64_read (i64.const 0) (i64.const 0) (i64.const 8))
        (call $debug_print (i32.const 64) (i32.const 35)))))
)
