//! Host bindings of the `icmp-host:probe` world. Only `bindgen!`; the WIT
//! documents every item.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "probe",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "icmp-host:probe/sockets.icmp-socket": crate::runtime::host::SocketHandle,
    },
    trappable_error_type: {
        "icmp-host:probe/types.error" => crate::runtime::host::HostError,
    },
});
