//! Integration tests of the envelope codec and the in-memory transport.

mod envelope;
mod memory;
