;; Benchmark kernels (benches/barrier.rs), store-heavy code for measuring the write barrier:
;; - `stores`: 100_000 loop iterations, each writing 8 consecutive i64 values from one base
;;   (`i64.store offset=0..56`) at a pseudo-random 64-byte-aligned address in a 1 MiB heap
;;   region — the barrier's worst case (DESIGN.md §4): one mark per group with elision, eight
;;   without;
;; - `sort`: fills 1000 i32 values from an LCG and bubble-sorts them (~500 000 compare-and-swap
;;   steps, a store-heavy loop with two stores per swap).
(module
  (import "ic0" "msg_reply" (func $reply))
  (memory 32)
  (func (export "canister_update stores") (local $i i32) (local $x i64) (local $a i32)
    (local.set $x (i64.const 12345))
    (loop $l
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005))
                             (i64.const 1442695040888963407)))
      ;; a = 1 MiB + ((x >> 40) & 0xfffc0): a 64-byte slot in [1 MiB, 2 MiB)
      (local.set $a (i32.add (i32.const 0x100000)
                             (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x) (i64.const 40))
                                                    (i64.const 0xfffc0)))))
      (i64.store offset=0 (local.get $a) (local.get $x))
      (i64.store offset=8 (local.get $a) (local.get $x))
      (i64.store offset=16 (local.get $a) (local.get $x))
      (i64.store offset=24 (local.get $a) (local.get $x))
      (i64.store offset=32 (local.get $a) (local.get $x))
      (i64.store offset=40 (local.get $a) (local.get $x))
      (i64.store offset=48 (local.get $a) (local.get $x))
      (i64.store offset=56 (local.get $a) (local.get $x))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
    (call $reply))
  (func (export "canister_update sort") (local $i i32) (local $j i32) (local $x i32)
    (local $a i32) (local $b i32) (local $p i32)
    ;; fill 1000 values at 64 KiB
    (local.set $x (i32.const 12345))
    (loop $fill
      (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1103515245)) (i32.const 12345)))
      (i32.store offset=65536 (i32.shl (local.get $i) (i32.const 2)) (local.get $x))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 1000))))
    ;; bubble sort
    (local.set $i (i32.const 0))
    (loop $outer
      (local.set $j (i32.const 0))
      (loop $inner
        (local.set $p (i32.add (i32.const 65536) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $a (i32.load (local.get $p)))
        (local.set $b (i32.load offset=4 (local.get $p)))
        (if (i32.gt_s (local.get $a) (local.get $b))
          (then
            (i32.store (local.get $p) (local.get $b))
            (i32.store offset=4 (local.get $p) (local.get $a))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $inner (i32.lt_u (local.get $j) (i32.sub (i32.const 999) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $outer (i32.lt_u (local.get $i) (i32.const 999))))
    (call $reply))
)
