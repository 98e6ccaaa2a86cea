;; Hostile test plugin, written directly against the component model:
;; imports `icmp-host:probe/control@0.2.0` with a function that interface
;; does not have. The host must refuse it at load, naming the import and
;; the function.
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

  (import "icmp-host:probe/control@0.2.0" (instance $control
    (export "escape-sandbox" (func (result u32)))))
  (core func $escape (canon lower (func $control "escape-sandbox")))
  (core module $m
    (import "host" "call" (func $call (result i32)))
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 4096))
    ;; The canonical ABI's allocator, our own: a bump pointer that never frees.
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
        (then (if (i32.lt_s (memory.grow (i32.add (i32.shr_u
                (i32.sub (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
                (i32.const 16)) (i32.const 1)))
              (i32.const 0))
          (then unreachable))))
      (local.get $p))
    (func (export "run") (param i32 i32) (result i32)
      (drop (call $call))
      (i32.store8 (i32.const 0) (i32.const 1))
      (i32.store8 (i32.const 4) (i32.const 1))
      (i32.store (i32.const 8) (i32.const 64))
      (i32.store (i32.const 12) (i32.const 42))
      (i32.const 0))
    (data (i32.const 64) "the host served an import it does not have")
  )
  (core instance $i (instantiate $m (with "host" (instance (export "call" (func $escape))))))
  (type $args (list string))
  (type $ret (result $run-output (error $run-error)))
  (func $run (param "args" $args) (result $ret)
    (canon lift (core func $i "run") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (export "run" (func $run))
)
