;; Benchmark kernel: `canister_update run` grows stable memory to 1 page (64 KiB, cache
;; resident) once, then performs N pseudo-random 8-byte reads `stable64_read(dst, off, 8)` into
;; the heap, N = 100_000, and replies with a checksum.
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "stable64_size" (func $size (result i64)))
  (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
  (import "ic0" "stable64_read" (func $read (param i64 i64 i64)))
  (import "ic0" "stable64_write" (func $write (param i64 i64 i64)))
  (memory 1)
  (func (export "canister_update read") (local $i i64) (local $x i64) (local $sum i64)
    (if (i64.eqz (call $size)) (then (drop (call $grow (i64.const 1)))))
    (local.set $x (i64.const 12345))
    (loop $l
      ;; x = x * 6364136223846793005 + 1442695040888963407 (LCG); offset = (x >> 40) & 0xfff8
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                             (i64.const 1442695040888963407)))
      (call $read (i64.const 64) (i64.and (i64.shr_u (local.get $x) (i64.const 40)) (i64.const 0xfff8)) (i64.const 8))
      (local.set $sum (i64.add (local.get $sum) (i64.load (i32.const 64))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const 100000))))
    (i64.store (i32.const 0) (local.get $sum))
    (call $append (i32.const 0) (i32.const 8))
    (call $reply))
  (func (export "canister_update write") (local $i i64) (local $x i64)
    (if (i64.eqz (call $size)) (then (drop (call $grow (i64.const 1)))))
    (local.set $x (i64.const 12345))
    (loop $l
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                             (i64.const 1442695040888963407)))
      (i64.store (i32.const 64) (local.get $x))
      (call $write (i64.and (i64.shr_u (local.get $x) (i64.const 40)) (i64.const 0xfff8)) (i64.const 64) (i64.const 8))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const 100000))))
    (call $reply))
  ;; The same loop without any stable access: the floor.
  (func (export "canister_update empty") (local $i i64) (local $x i64) (local $sum i64)
    (local.set $x (i64.const 12345))
    (loop $l
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                             (i64.const 1442695040888963407)))
      (local.set $sum (i64.add (local.get $sum) (i64.and (i64.shr_u (local.get $x) (i64.const 40)) (i64.const 0xfff8))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const 100000))))
    (i64.store (i32.const 0) (local.get $sum))
    (call $append (i32.const 0) (i32.const 8))
    (call $reply))
)
