//! End-to-end tests: the real `icmp-host` binary, real sockets, loopback
//! and network namespaces the tests build themselves. Nothing here sends to
//! any other address.

mod binary;
mod bootstrap;
mod compat;
mod elf;
mod engine_lab;
mod examples_lab;
mod hostile;
mod hostile_batch;
mod http_client;
mod lab;
mod netns;
mod policy;
mod privilege;
mod python;
mod python_lab;
mod sdk;
mod serve;
mod serve_deploy;
mod serve_lab;
mod serve_util;
mod skeleton;
mod surface_lab;
mod tenants;
mod unprivileged_lab;
mod util;
