//! The server's integration tests, one module per file, in one test binary: linking one
//! binary per file cost about 6 s of CPU each in every clean build. Run one file's tests
//! with its module name as the filter, e.g. `cargo test -p tandem-signaling --test
//! integration websocket::`.

mod common;

mod abuse;
mod acme;
mod agent_download;
mod audit_chain;
mod documented_flow;
mod fuzz_http;
mod http;
mod openapi;
mod ops;
mod packaged_config;
mod pages_login;
mod restart;
mod shared_counts;
mod store;
mod tls;
mod websocket;
