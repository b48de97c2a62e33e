//! Integration tests of the QUIC transport on 127.0.0.1 with OS-chosen ports.

mod security;
mod streams;
mod support;
mod traffic;
