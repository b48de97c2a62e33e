//! Integration tests for aegis-node: state machine, encodings, configuration and the
//! RESP server end to end over loopback TCP.

mod cluster;
mod codec;
mod config;
mod journal;
mod process;
mod redis_cli;
mod redis_py;
mod redis_rs;
mod resp_framing;
mod server;
mod snapshot;
mod store;
mod store_buffer;
mod strategies;
mod support;
