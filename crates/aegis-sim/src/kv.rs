//! The replicated state machine of the simulation: a map from small integer keys to
//! `u64` registers, driven by commands in log entries.

use std::collections::BTreeMap;

use crate::checker::{RegisterInput, RegisterOutput};

/// A client command as it travels in a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Command {
    /// Unique per invocation, so a client recognises its own entry.
    pub request: u64,
    /// The register.
    pub key: u64,
    /// What to do to it.
    pub input: RegisterInput,
}

const TAG_GET: u8 = 1;
const TAG_PUT: u8 = 2;
const TAG_CAS: u8 = 3;
/// Encoded size: tag, request, key and two operands.
const COMMAND_LEN: usize = 1 + 8 * 4;

impl Command {
    /// A fixed-size little-endian encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let (tag, a, b) = match self.input {
            RegisterInput::Get => (TAG_GET, 0, 0),
            RegisterInput::Put(v) => (TAG_PUT, v, 0),
            RegisterInput::Cas { expect, new } => (TAG_CAS, expect, new),
        };
        let mut out = Vec::with_capacity(COMMAND_LEN);
        out.push(tag);
        for word in [self.request, self.key, a, b] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        debug_assert_eq!(out.len(), COMMAND_LEN);
        out
    }

    /// Decodes [`Command::encode`]'s output; `None` for anything else.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != COMMAND_LEN {
            return None;
        }
        let word = |i: usize| {
            let start = 1 + 8 * i;
            u64::from_le_bytes(bytes[start..start + 8].try_into().expect("8 bytes"))
        };
        let input = match bytes[0] {
            TAG_GET => RegisterInput::Get,
            TAG_PUT => RegisterInput::Put(word(2)),
            TAG_CAS => RegisterInput::Cas {
                expect: word(2),
                new: word(3),
            },
            _ => return None,
        };
        Some(Self {
            request: word(0),
            key: word(1),
            input,
        })
    }
}

/// One node's copy of the key-value state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KvStore {
    values: BTreeMap<u64, u64>,
}

impl KvStore {
    /// Applies `command` and returns what the client is told.
    pub fn apply(&mut self, command: &Command) -> RegisterOutput {
        match command.input {
            RegisterInput::Get => RegisterOutput::Value(self.get(command.key)),
            RegisterInput::Put(v) => {
                self.values.insert(command.key, v);
                RegisterOutput::Written
            }
            RegisterInput::Cas { expect, new } => {
                let swapped = self.get(command.key) == Some(expect);
                if swapped {
                    self.values.insert(command.key, new);
                }
                RegisterOutput::Swapped(swapped)
            }
        }
    }

    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: u64) -> Option<u64> {
        self.values.get(&key).copied()
    }

    /// Every register and its value, in key order (for snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.values.iter().map(|(&k, &v)| (k, v))
    }

    /// A store holding exactly `values` (restored from a snapshot).
    #[must_use]
    pub fn from_values(values: impl IntoIterator<Item = (u64, u64)>) -> Self {
        Self {
            values: values.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_garbage_is_refused() {
        for input in [
            RegisterInput::Get,
            RegisterInput::Put(7),
            RegisterInput::Cas { expect: 1, new: 2 },
        ] {
            let c = Command {
                request: 99,
                key: 3,
                input,
            };
            assert_eq!(Command::decode(&c.encode()), Some(c));
        }
        assert_eq!(Command::decode(&[]), None);
        assert_eq!(Command::decode(&[9; COMMAND_LEN]), None);
    }

    #[test]
    fn store_applies_register_semantics() {
        let mut kv = KvStore::default();
        let cmd = |input| Command {
            request: 0,
            key: 1,
            input,
        };
        assert_eq!(
            kv.apply(&cmd(RegisterInput::Get)),
            RegisterOutput::Value(None)
        );
        assert_eq!(
            kv.apply(&cmd(RegisterInput::Put(4))),
            RegisterOutput::Written
        );
        assert_eq!(
            kv.apply(&cmd(RegisterInput::Cas { expect: 3, new: 5 })),
            RegisterOutput::Swapped(false)
        );
        assert_eq!(
            kv.apply(&cmd(RegisterInput::Cas { expect: 4, new: 5 })),
            RegisterOutput::Swapped(true)
        );
        assert_eq!(kv.get(1), Some(5));
    }
}
