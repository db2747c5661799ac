;; Plain code that wasmi 2.0 computes correctly, but whose metered form has the miscompiled shape
;; of wasmi-select-miscompile.wat: the metering charge (global.get; i64.const; i64.sub;
;; global.set) lands between the two local copies, at the start of the segment after the block.
;; f(0) must return 5 (select picks 1); the metered module traps with a division by zero.
(module
  (func (export "f") (param $p i32) (result i32)
    (local $a i32) (local $x i32)
    local.get $p
    local.set $a
    (block $b (br_if $b (local.get $p)))
    local.get $a
    local.set $x
    i32.const 5
    i32.const 1
    local.get $x
    local.get $x
    i32.eqz
    select
    i32.div_u)
)
