;; Hostile test plugin, written directly against the component model (no
;; SDK, no wit-bindgen, its own allocator): eight linear memories of 240 MiB,
;; every page touched. Each memory alone is under a 256 MiB limit; together
;; they are 1.9 GiB. The run's memory limit must count all of them.
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
    (memory $m0 (export "memory") 3840)
    (memory $m1 3840) (memory $m2 3840) (memory $m3 3840)
    (memory $m4 3840) (memory $m5 3840) (memory $m6 3840) (memory $m7 3840)
    (global $bump (mut i32) (i32.const 4096))
    ;; The canonical ABI's allocator, our own: a bump pointer that never frees.
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $bump) (i32.mul (memory.size $m0) (i32.const 65536)))
        (then (if (i32.lt_s (memory.grow $m0 (i32.add (i32.shr_u
                (i32.sub (global.get $bump) (i32.mul (memory.size $m0) (i32.const 65536)))
                (i32.const 16)) (i32.const 1)))
              (i32.const 0))
          (then unreachable))))
      (local.get $p))
    (func (export "run") (param i32 i32) (result i32)
      (local $at i32)
      (loop $touch
        (i32.store8 $m0 (local.get $at) (i32.const 1))
        (i32.store8 $m1 (local.get $at) (i32.const 1))
        (i32.store8 $m2 (local.get $at) (i32.const 1))
        (i32.store8 $m3 (local.get $at) (i32.const 1))
        (i32.store8 $m4 (local.get $at) (i32.const 1))
        (i32.store8 $m5 (local.get $at) (i32.const 1))
        (i32.store8 $m6 (local.get $at) (i32.const 1))
        (i32.store8 $m7 (local.get $at) (i32.const 1))
        (local.set $at (i32.add (local.get $at) (i32.const 4096)))
        (br_if $touch (i32.lt_u (local.get $at) (i32.const 251658240))))
      ;; Err(failed(message)): result and variant discriminants, then the string.
      (i32.store8 (i32.const 0) (i32.const 1))
      (i32.store8 (i32.const 4) (i32.const 1))
      (i32.store (i32.const 8) (i32.const 64))
      (i32.store (i32.const 12) (i32.const 29))
      (i32.const 0))
    (data (i32.const 64) "touched 8 memories of 240 MiB")
  )
  (core instance $i (instantiate $m))
  (type $args (list string))
  (type $ret (result $run-output (error $run-error)))
  (func $run (param "args" $args) (result $ret)
    (canon lift (core func $i "run") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (export "run" (func $run))
)
