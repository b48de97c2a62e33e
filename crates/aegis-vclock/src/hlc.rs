//! Hybrid logical clocks (Kulkarni, Demirbas et al. 2014) packed into 64 bits.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, NodeId};

/// Bits of the logical counter (the low bits of a timestamp).
pub const LOGICAL_BITS: u32 = 16;
/// Largest logical counter before the clock moves on to the next millisecond.
pub const LOGICAL_MAX: u64 = (1 << LOGICAL_BITS) - 1;
/// Largest physical time in milliseconds a timestamp can carry (48 bits: year 10889).
pub const PHYSICAL_MS_MAX: u64 = (1 << (64 - LOGICAL_BITS)) - 1;

const _: () = assert!(LOGICAL_MAX == 0xFFFF && PHYSICAL_MS_MAX == 0xFFFF_FFFF_FFFF);

/// A hybrid logical clock timestamp.
///
/// Layout: physical milliseconds since the Unix epoch in the high 48 bits, a logical
/// counter in the low 16 bits. The packed `u64` orders exactly like the pair
/// `(physical_ms, logical)`, so timestamps compare as plain integers.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HlcTimestamp(u64);

impl HlcTimestamp {
    /// The smallest timestamp.
    pub const ZERO: Self = Self(0);

    /// Packs a physical time and a logical counter.
    ///
    /// # Errors
    ///
    /// [`Error::PhysicalTimeOutOfRange`] if `physical_ms` needs more than 48 bits,
    /// [`Error::LogicalOutOfRange`] if `logical` needs more than 16.
    pub const fn new(physical_ms: u64, logical: u64) -> Result<Self, Error> {
        if physical_ms > PHYSICAL_MS_MAX {
            return Err(Error::PhysicalTimeOutOfRange { physical_ms });
        }
        if logical > LOGICAL_MAX {
            return Err(Error::LogicalOutOfRange { logical });
        }
        Ok(Self((physical_ms << LOGICAL_BITS) | logical))
    }

    /// Reinterprets a packed value (every `u64` is a valid timestamp).
    #[must_use]
    pub const fn from_u64(packed: u64) -> Self {
        Self(packed)
    }

    /// The packed representation.
    #[must_use]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Physical component, milliseconds since the Unix epoch.
    #[must_use]
    pub const fn physical_ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// Logical component.
    #[must_use]
    pub const fn logical(self) -> u64 {
        self.0 & LOGICAL_MAX
    }
}

impl fmt::Debug for HlcTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.physical_ms(), self.logical())
    }
}

impl fmt::Display for HlcTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A timestamp tagged with the node that issued it: a total order for last-writer-wins.
///
/// Ordered by timestamp first and node id second, so two writes with equal timestamps
/// from different nodes still have a deterministic winner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LwwStamp {
    /// When the write happened.
    pub hlc: HlcTimestamp,
    /// Who wrote it.
    pub node: NodeId,
}

impl LwwStamp {
    /// Tags `hlc` with `node`.
    #[must_use]
    pub const fn new(hlc: HlcTimestamp, node: NodeId) -> Self {
        Self { hlc, node }
    }
}

/// Configuration of an [`Hlc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HlcConfig {
    /// How far, in milliseconds, a remote timestamp may be ahead of the local physical
    /// clock before [`Hlc::update`] rejects it.
    pub offset_ms_max: u64,
}

impl Default for HlcConfig {
    fn default() -> Self {
        Self { offset_ms_max: 500 }
    }
}

impl HlcConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `offset_ms_max` is 0 or does not fit in 48 bits.
    pub fn validate(&self) -> Result<(), Error> {
        if self.offset_ms_max == 0 || self.offset_ms_max > PHYSICAL_MS_MAX {
            return Err(Error::InvalidConfig {
                field: "offset_ms_max",
                reason: "must be between 1 and 2^48 - 1 milliseconds",
            });
        }
        Ok(())
    }
}

/// A hybrid logical clock.
///
/// Sans-IO: the caller reads the physical clock and passes it in. Timestamps issued by
/// one `Hlc` are strictly increasing, and a timestamp issued after [`Hlc::update`] with
/// a remote timestamp is strictly greater than that remote timestamp.
///
/// When the 16-bit logical counter would overflow within one millisecond, the clock
/// instead moves to the next millisecond with a logical counter of 0. The physical
/// component can then run ahead of the wall clock by one millisecond per 65 536 events
/// issued within a millisecond; it catches up as soon as the wall clock passes it.
///
/// Serialised as its configuration and last timestamp; deserialising validates the
/// configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HlcRepr", into = "HlcRepr")]
pub struct Hlc {
    config: HlcConfig,
    last: HlcTimestamp,
}

#[derive(Serialize, Deserialize)]
struct HlcRepr {
    config: HlcConfig,
    last: HlcTimestamp,
}

impl From<Hlc> for HlcRepr {
    fn from(h: Hlc) -> Self {
        Self {
            config: h.config,
            last: h.last,
        }
    }
}

impl TryFrom<HlcRepr> for Hlc {
    type Error = Error;

    fn try_from(r: HlcRepr) -> Result<Self, Error> {
        Hlc::with_last(r.config, r.last)
    }
}

impl Hlc {
    /// A clock that has issued nothing yet.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the configuration does not validate.
    pub fn new(config: HlcConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            config,
            last: HlcTimestamp::ZERO,
        })
    }

    /// A clock restarted from the last timestamp it persisted, so it never goes back.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the configuration does not validate.
    pub fn with_last(config: HlcConfig, last: HlcTimestamp) -> Result<Self, Error> {
        let mut clock = Self::new(config)?;
        clock.last = last;
        Ok(clock)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &HlcConfig {
        &self.config
    }

    /// The last timestamp issued or observed.
    #[must_use]
    pub fn last(&self) -> HlcTimestamp {
        self.last
    }

    /// Issues a timestamp for a local or send event at wall time `physical_ms`.
    ///
    /// # Errors
    ///
    /// [`Error::PhysicalTimeOutOfRange`] if `physical_ms` needs more than 48 bits, or
    /// [`Error::ClockExhausted`] if the clock has reached the largest timestamp.
    pub fn now(&mut self, physical_ms: u64) -> Result<HlcTimestamp, Error> {
        let wall = HlcTimestamp::new(physical_ms, 0)?;
        let next = if wall > self.last {
            wall
        } else {
            Self::successor(self.last)?
        };
        self.advance(next);
        Ok(next)
    }

    /// Observes `remote` (a receive event) at wall time `physical_ms` and issues a
    /// timestamp greater than both the remote one and everything issued before.
    ///
    /// # Errors
    ///
    /// [`Error::RemoteTooFarAhead`] if `remote` is more than `offset_ms_max` ahead of
    /// `physical_ms` (the clock is left untouched), plus the errors of [`Hlc::now`].
    pub fn update(
        &mut self,
        remote: HlcTimestamp,
        physical_ms: u64,
    ) -> Result<HlcTimestamp, Error> {
        let wall = HlcTimestamp::new(physical_ms, 0)?;
        if remote.physical_ms() > physical_ms.saturating_add(self.config.offset_ms_max) {
            return Err(Error::RemoteTooFarAhead {
                remote_ms: remote.physical_ms(),
                local_ms: physical_ms,
                offset_ms_max: self.config.offset_ms_max,
            });
        }
        let highest = self.last.max(remote);
        let next = if wall > highest {
            wall
        } else {
            Self::successor(highest)?
        };
        self.advance(next);
        debug_assert!(next > remote);
        Ok(next)
    }

    /// The smallest timestamp after `t`: the next logical value, or the next
    /// millisecond when the logical counter is full.
    fn successor(t: HlcTimestamp) -> Result<HlcTimestamp, Error> {
        // Packed layout makes "next logical, or next ms at logical 0" a plain +1.
        let packed = t.0.checked_add(1).ok_or(Error::ClockExhausted)?;
        let next = HlcTimestamp(packed);
        debug_assert!(
            next.physical_ms() == t.physical_ms() && next.logical() == t.logical() + 1
                || next.physical_ms() == t.physical_ms() + 1 && next.logical() == 0
        );
        Ok(next)
    }

    fn advance(&mut self, next: HlcTimestamp) {
        assert!(next > self.last, "hybrid logical clock must move forward");
        self.last = next;
    }
}
