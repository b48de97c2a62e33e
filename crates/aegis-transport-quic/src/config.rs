use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::{NodeId, SetupError as Error};

/// Everything a [`QuicTransport`](crate::QuicTransport) is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuicConfig {
    /// This node's id; its certificate must be issued for it.
    pub node_id: NodeId,
    /// The UDP address to listen on (port 0 lets the OS choose).
    pub listen: SocketAddr,
    /// Known peers and their addresses.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Largest frame accepted or sent, in bytes (length prefix excluded).
    pub frame_size_max: u32,
    /// Incoming messages and requests buffered before stream readers wait (`recv` may
    /// hold up to 64 more, taken out of the buffer together).
    pub inbox_max: usize,
    /// One-way messages queued per peer before `send` waits.
    pub peer_queue_max: usize,
    /// Most one-way messages written to the stream in one batch.
    pub oneway_batch_max: usize,
    /// Requests a peer may have delivered to this node and not yet answered, per request
    /// stream: no more of its requests are read until one is answered. It also bounds
    /// the answers waiting to be written back.
    pub requests_in_flight_max: usize,
    /// Concurrent bidirectional streams a peer may open. A node's requests to a peer
    /// share one stream per connection, so this only bounds what a misbehaving peer can
    /// make this node track.
    pub concurrent_streams_max: u32,
    /// Largest UDP payload (one QUIC packet) this node accepts, and the upper bound of
    /// the path MTU discovery it runs towards each peer.
    ///
    /// Connections start at 1200 bytes, which every IP path carries, and discovery probes
    /// larger sizes, keeping the largest that gets through; the size used towards a peer
    /// is also capped by the peer's own `udp_payload_max`. A larger bound lets one packet
    /// carry more messages, so fewer packets are encrypted, sent, received and
    /// acknowledged; a bound the path cannot carry only costs a few lost probes. Each
    /// endpoint's receive buffer grows in proportion to it (2 KiB of address space per
    /// byte of bound: 32 packets of up to 64 segments each per receive call). Above 6550
    /// bytes, segmentation offload (several packets per system call) is turned off,
    /// because a batch of ten such packets would exceed what one UDP send may carry.
    ///
    /// [`new`](Self::new) uses [`UDP_PAYLOAD_MAX_LOOPBACK`](Self::UDP_PAYLOAD_MAX_LOOPBACK)
    /// when `listen` is a loopback address (every peer is then on the same host, where the
    /// interface MTU is typically 64 KiB) and
    /// [`UDP_PAYLOAD_MAX_NETWORK`](Self::UDP_PAYLOAD_MAX_NETWORK) otherwise. On a network
    /// with jumbo frames, raise it to the interface MTU less 48 bytes (IPv6 and UDP
    /// headers), e.g. 8952 for an MTU of 9000.
    pub udp_payload_max: u16,
    /// How long a request waits for its response.
    pub request_timeout: Duration,
    /// How long dialing a peer may take.
    pub connect_timeout: Duration,
    /// How long a new connection has to identify itself with its hello.
    pub hello_timeout: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Keep-alive packets are sent this often; must be below `idle_timeout`.
    pub keep_alive_interval: Duration,
    /// First wait after a failed dial.
    pub reconnect_backoff_min: Duration,
    /// Longest wait between dials; the wait doubles up to it.
    pub reconnect_backoff_max: Duration,
    /// How long shutdown waits for connections to close gracefully.
    pub shutdown_timeout: Duration,
}

impl QuicConfig {
    /// The smallest `udp_payload_max`: QUIC requires every path to carry 1200 bytes.
    pub const UDP_PAYLOAD_MIN: u16 = 1200;
    /// The largest `udp_payload_max`: the largest UDP payload IPv6 allows.
    pub const UDP_PAYLOAD_LIMIT: u16 = 65527;
    /// `udp_payload_max` for an endpoint on a network: a 1500-byte Ethernet MTU less the
    /// IPv6 and UDP headers.
    pub const UDP_PAYLOAD_MAX_NETWORK: u16 = 1452;
    /// `udp_payload_max` for an endpoint listening on a loopback address: the largest size
    /// at which segmentation offload stays on (ten packets of it fit the 65,507 bytes of
    /// one UDP send). On loopback, larger bounds (16 KiB, 64 KiB, with offload off)
    /// measured the same within noise while costing more receive buffer.
    pub const UDP_PAYLOAD_MAX_LOOPBACK: u16 = 6550;

    /// A configuration with sensible limits and no peers.
    ///
    /// `udp_payload_max` depends on whether `listen` is a loopback address (see there).
    #[must_use]
    pub fn new(node_id: NodeId, listen: SocketAddr) -> Self {
        let udp_payload_max = if listen.ip().is_loopback() {
            Self::UDP_PAYLOAD_MAX_LOOPBACK
        } else {
            Self::UDP_PAYLOAD_MAX_NETWORK
        };
        Self {
            node_id,
            listen,
            peers: BTreeMap::new(),
            frame_size_max: 16 << 20,
            inbox_max: 4096,
            peer_queue_max: 1024,
            oneway_batch_max: 64,
            concurrent_streams_max: 1024,
            requests_in_flight_max: 4096,
            udp_payload_max,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            hello_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(3),
            reconnect_backoff_min: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(2),
        }
    }

    /// Checks every limit and the relations between them.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        if self.frame_size_max < 64 {
            return bad("frame_size_max", "must be at least 64 bytes");
        }
        let positive = [
            ("inbox_max", self.inbox_max),
            ("peer_queue_max", self.peer_queue_max),
            ("oneway_batch_max", self.oneway_batch_max),
            ("requests_in_flight_max", self.requests_in_flight_max),
            (
                "concurrent_streams_max",
                self.concurrent_streams_max as usize,
            ),
        ];
        for (field, value) in positive {
            if value == 0 {
                return bad(field, "must be positive");
            }
        }
        if !(Self::UDP_PAYLOAD_MIN..=Self::UDP_PAYLOAD_LIMIT).contains(&self.udp_payload_max) {
            return bad("udp_payload_max", "must be from 1200 to 65527 bytes");
        }
        let durations = [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("hello_timeout", self.hello_timeout),
            ("idle_timeout", self.idle_timeout),
            ("keep_alive_interval", self.keep_alive_interval),
            ("reconnect_backoff_min", self.reconnect_backoff_min),
        ];
        for (field, value) in durations {
            if value.is_zero() {
                return bad(field, "must be positive");
            }
        }
        if self.keep_alive_interval >= self.idle_timeout {
            return bad("keep_alive_interval", "must be below idle_timeout");
        }
        if self.reconnect_backoff_max < self.reconnect_backoff_min {
            return bad(
                "reconnect_backoff_max",
                "must not be below reconnect_backoff_min",
            );
        }
        if self.peers.contains_key(&self.node_id) {
            return bad("peers", "must not contain this node's own id");
        }
        Ok(())
    }

    /// The wait before the next dial after `failures` consecutive failed dials.
    #[must_use]
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.reconnect_backoff_min
            .saturating_mul(1 << doublings)
            .min(self.reconnect_backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> QuicConfig {
        QuicConfig::new(1, "127.0.0.1:0".parse().unwrap())
    }

    #[test]
    fn defaults_validate() {
        config().validate().unwrap();
    }

    #[test]
    fn keep_alive_must_stay_below_idle_timeout() {
        let mut c = config();
        c.keep_alive_interval = c.idle_timeout;
        assert!(matches!(
            c.validate(),
            Err(Error::InvalidConfig {
                field: "keep_alive_interval",
                ..
            })
        ));
    }

    #[test]
    fn zero_limits_and_self_peers_are_refused() {
        let mut c = config();
        c.inbox_max = 0;
        assert!(matches!(
            c.validate(),
            Err(Error::InvalidConfig {
                field: "inbox_max",
                ..
            })
        ));
        let mut c = config();
        c.peers.insert(1, "127.0.0.1:1".parse().unwrap());
        assert!(matches!(
            c.validate(),
            Err(Error::InvalidConfig { field: "peers", .. })
        ));
    }

    #[test]
    fn udp_payload_max_follows_the_listen_address_and_is_bounded() {
        assert_eq!(
            config().udp_payload_max,
            QuicConfig::UDP_PAYLOAD_MAX_LOOPBACK
        );
        let v6 = QuicConfig::new(1, "[::1]:0".parse().unwrap());
        assert_eq!(v6.udp_payload_max, QuicConfig::UDP_PAYLOAD_MAX_LOOPBACK);
        let wide = QuicConfig::new(1, "0.0.0.0:0".parse().unwrap());
        assert_eq!(wide.udp_payload_max, QuicConfig::UDP_PAYLOAD_MAX_NETWORK);
        wide.validate().unwrap();
        for (value, ok) in [(1199, false), (1200, true), (65527, true), (65528, false)] {
            let mut c = config();
            c.udp_payload_max = value;
            let result = c.validate();
            assert_eq!(result.is_ok(), ok, "udp_payload_max {value}: {result:?}");
            if !ok {
                assert!(matches!(
                    result,
                    Err(Error::InvalidConfig {
                        field: "udp_payload_max",
                        ..
                    })
                ));
            }
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = config();
        assert_eq!(c.backoff(1), Duration::from_millis(50));
        assert_eq!(c.backoff(2), Duration::from_millis(100));
        assert_eq!(c.backoff(4), Duration::from_millis(400));
        assert_eq!(c.backoff(30), c.reconnect_backoff_max);
    }
}
