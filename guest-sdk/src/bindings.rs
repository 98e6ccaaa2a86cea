//! Generated bindings for the `icmp-host:probe` world. Private: the rest of
//! the crate wraps them in idiomatic types.

wit_bindgen::generate!({
    path: "wit",
    world: "probe",
    pub_export_macro: true,
    export_macro_name: "__export_probe_world",
    default_bindings_module: "icmp_host_sdk::__private::bindings",
    runtime_path: "icmp_host_sdk::__private::wit_bindgen::rt",
});
