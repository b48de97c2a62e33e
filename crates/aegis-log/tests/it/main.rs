//! Integration tests of the write-ahead log.

mod api;
mod crash;
mod decode;
mod disk_storage;
mod faults;
mod support;
mod vfs;
