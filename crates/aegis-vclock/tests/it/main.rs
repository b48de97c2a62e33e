//! Integration tests for aegis-vclock.

mod causal;
mod dvv;
mod encoding;
mod hlc;
mod itc;
mod laws;
mod vector;
