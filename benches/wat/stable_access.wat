;; Benchmark kernels (benches/stable_access.rs), one update method each:
;; - `read`, `write`, `read_dyn`, `empty`: 100_000 pseudo-random 8-byte accesses over 1 stable page
;;   (64 KiB, cache resident), grown on first use; `empty` is the loop without the access;
;; - `read4k`, `write4k`: 4096 copies of 4 KiB between a fixed heap buffer and a pseudo-random
;;   4 KiB-aligned offset in the first MiB of stable memory (32 pages, grown on first use);
;; - `read1m`, `write1m`: 64 copies of 1 MiB between the heap buffer and the first MiB of stable
;;   memory.
(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "stable64_size" (func $size (result i64)))
  (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
  (import "ic0" "stable64_read" (func $read (param i64 i64 i64)))
  (import "ic0" "stable64_write" (func $write (param i64 i64 i64)))
  (memory 40) ;; 2.5 MiB: the bulk kernels' 1 MiB buffer sits at 64 KiB
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
  ;; The same reads with the length in a local (no constant at the call site): the general path.
  (func (export "canister_update read_dyn") (local $i i64) (local $x i64) (local $sum i64) (local $len i64)
    (if (i64.eqz (call $size)) (then (drop (call $grow (i64.const 1)))))
    (local.set $x (i64.const 12345))
    (local.set $len (i64.const 8))
    (loop $l
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                             (i64.const 1442695040888963407)))
      (call $read (i64.const 64) (i64.and (i64.shr_u (local.get $x) (i64.const 40)) (i64.const 0xfff8)) (local.get $len))
      (local.set $sum (i64.add (local.get $sum) (i64.load (i32.const 64))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const 100000))))
    (i64.store (i32.const 0) (local.get $sum))
    (call $append (i32.const 0) (i32.const 8))
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
;; Grows stable memory to at least `pages` pages.
  (func $ensure (param $pages i64)
    (if (i64.lt_u (call $size) (local.get $pages))
      (then (drop (call $grow (i64.sub (local.get $pages) (call $size)))))))
  (func (export "canister_update read4k") (local $i i64) (local $x i64)
    (call $ensure (i64.const 32))
    (local.set $x (i64.const 12345))
    (loop $l
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                             (i64.const 1442695040888963407)))
      (call $read (i64.const 65536) (i64.shl (i64.and (i64.shr_u (local.get $x) (i64.const 40)) (i64.const 0xff)) (i64.const 12)) (i64.const 4096))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const 4096))))
    (call $reply))
  (func (export "canister_update write4k") (local $i i64) (local $x i64)
    (call $ensure (i64.const 32))
    (local.set $x (i64.const 12345))
    (loop $l
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                             (i64.const 1442695040888963407)))
      (call $write (i64.shl (i64.and (i64.shr_u (local.get $x) (i64.const 40)) (i64.const 0xff)) (i64.const 12)) (i64.const 65536) (i64.const 4096))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const 4096))))
    (call $reply))
  (func (export "canister_update read1m") (local $i i64)
    (call $ensure (i64.const 32))
    (loop $l
      (call $read (i64.const 65536) (i64.const 0) (i64.const 1048576))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const 64))))
    (call $reply))
  (func (export "canister_update write1m") (local $i i64)
    (call $ensure (i64.const 32))
    (loop $l
      (call $write (i64.const 0) (i64.const 65536) (i64.const 1048576))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const 64))))
    (call $reply))
)
