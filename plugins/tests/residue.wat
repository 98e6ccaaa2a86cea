;; Hostile test plugin, written directly against the component model (no
;; SDK, no wit-bindgen, its own allocator): looks for what an earlier run in
;; the same instance slot left behind, then leaves some itself. It checks
;; that its data segment reads as built, that 64 KiB to 512 KiB of its
;; memory is zero and that its table holds no function, then overwrites
;; all three. Its run fails with "residue: none" or "residue: found" (a
;; failure is the one result a component can return without a report).
(component
  (type $types-t (instance
    (type $outcome (enum "reached" "not-reached" "partial"))
    (export "outcome" (type $outcome-e (eq $outcome)))
    (type $json (option string))
    (type $report (record (field "json" $json) (field "outcome" $outcome-e)))
    (export "report" (type $report-e (eq $report)))
    (type $run-output (variant (case "report" $report-e) (case "text" string)))
    (export "run-output" (type (eq $run-output)))
    (type $run-error (variant (case "usage" string) (case "failed" string)))
    (export "run-error" (type (eq $run-error)))
  ))
  (import "icmp-host:probe/types@0.2.0" (instance $types (type $types-t)))
  (alias export $types "run-output" (type $run-output))
  (alias export $types "run-error" (type $run-error))

  (core module $m
    (memory (export "memory") 8)
    ;; A table of 1,024 functions: two pages, both written.
    (table $t 1024 funcref)
    (elem declare func $left)
    (func $left)
    (global $bump (mut i32) (i32.const 4096))
    ;; The canonical ABI's allocator, our own: a bump pointer within the
    ;; first page that never frees (the arguments are a few bytes).
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $bump) (i32.const 65536)) (then unreachable))
      (local.get $p))
    (func (export "run") (param i32 i32) (result i32)
      (local $at i32)
      (local $found i32)
      ;; The data segment, as built ('K'), then overwritten ('X').
      (local.set $found (i32.ne (i32.load8_u (i32.const 128)) (i32.const 75)))
      (i32.store8 (i32.const 128) (i32.const 88))
      ;; Pages 1 to 7: all zero, then every byte 0xAA.
      (local.set $at (i32.const 65536))
      (loop $scan
        (if (i32.load8_u (local.get $at)) (then (local.set $found (i32.const 1))))
        (i32.store8 (local.get $at) (i32.const 0xAA))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br_if $scan (i32.lt_u (local.get $at) (i32.const 524288))))
      ;; The table: all null, then every slot a function of this instance.
      (local.set $at (i32.const 0))
      (loop $slots
        (if (i32.eqz (ref.is_null (table.get $t (local.get $at))))
          (then (local.set $found (i32.const 1))))
        (table.set $t (local.get $at) (ref.func $left))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br_if $slots (i32.lt_u (local.get $at) (i32.const 1024))))
      ;; Err(failed(message)): result and variant discriminants, then the string.
      (i32.store8 (i32.const 0) (i32.const 1))
      (i32.store8 (i32.const 4) (i32.const 1))
      (if (local.get $found)
        (then
          (i32.store (i32.const 8) (i32.const 96))
          (i32.store (i32.const 12) (i32.const 14)))
        (else
          (i32.store (i32.const 8) (i32.const 64))
          (i32.store (i32.const 12) (i32.const 13))))
      (i32.const 0))
    (data (i32.const 64) "residue: none")
    (data (i32.const 96) "residue: found")
    (data (i32.const 128) "K")
  )
  (core instance $i (instantiate $m))
  (type $args (list string))
  (type $ret (result $run-output (error $run-error)))
  (func $run (param "args" $args) (result $ret)
    (canon lift (core func $i "run") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (export "run" (func $run))
)
