//! Integration tests of aegis-hash: test vectors, placement laws, balance.

mod balance;
mod bounded;
mod jump;
mod maglev;
mod memento;
mod rendezvous;
mod ring;
mod support;
mod vectors;
