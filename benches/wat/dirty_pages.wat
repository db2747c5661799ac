;; Benchmark kernel (benches/barrier_signals.rs): `run(pages, stores, stride)` writes `stores`
;; 8-byte values into each of `pages` 4 KiB pages (page p * stride of the imported 16 MiB memory),
;; one `i64.store` per loop iteration at successive 8-byte slots of the page (wrapping after
;; 512), so every store is a separate write the barrier must mark (no elision possible).
(module
  (import "env" "mem" (memory 256 256))
  (func (export "run") (param $pages i32) (param $stores i32) (param $stride i32)
    (local $p i32) (local $base i32) (local $j i32)
    (loop $outer
      (local.set $base (i32.shl (i32.mul (local.get $p) (local.get $stride)) (i32.const 12)))
      (local.set $j (i32.const 0))
      (loop $inner
        (i64.store
          (i32.add (local.get $base) (i32.and (i32.shl (local.get $j) (i32.const 3)) (i32.const 4095)))
          (i64.extend_i32_u (local.get $j)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $inner (i32.lt_u (local.get $j) (local.get $stores))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br_if $outer (i32.lt_u (local.get $p) (local.get $pages))))))
