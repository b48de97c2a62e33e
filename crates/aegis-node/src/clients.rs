//! The connections a server holds, as `CLIENT LIST`, `CLIENT INFO` and `CLIENT KILL`
//! see them.
//!
//! Each connection keeps its own [`Client`]; the [`Clients`] registry holds every open
//! one, so that a connection can list or close the others. What changes with each
//! request (the last command, when it came) is kept in atomics, so that serving a request
//! takes no lock.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// One connection.
#[derive(Debug)]
pub(crate) struct Client {
    /// `CLIENT ID`: unique among this server's connections.
    pub(crate) id: u64,
    addr: Option<SocketAddr>,
    laddr: Option<SocketAddr>,
    opened: Instant,
    /// Milliseconds from `opened` to the last bytes received.
    active_ms: AtomicU64,
    /// The last command, as one more than its place in the server's command table (0:
    /// none yet).
    command: AtomicUsize,
    resp3: AtomicBool,
    names: Mutex<Names>,
    /// Told by `CLIENT KILL`; the connection closes when it next waits for a request.
    kill: Notify,
}

/// What a client called itself: `CLIENT SETNAME` and `CLIENT SETINFO`.
#[derive(Debug, Default)]
struct Names {
    name: Option<Vec<u8>>,
    lib_name: Option<Vec<u8>>,
    lib_ver: Option<Vec<u8>>,
}

/// Which name `CLIENT SETINFO` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lib {
    Name,
    Version,
}

impl Client {
    pub(crate) fn new(id: u64, addr: Option<SocketAddr>, laddr: Option<SocketAddr>) -> Self {
        Self {
            id,
            addr,
            laddr,
            opened: Instant::now(),
            active_ms: AtomicU64::new(0),
            command: AtomicUsize::new(0),
            resp3: AtomicBool::new(false),
            names: Mutex::default(),
            kill: Notify::new(),
        }
    }

    /// Notes a request for the command at `place` in the server's command table.
    pub(crate) fn touch(&self, place: usize) {
        self.command.store(place + 1, Ordering::Relaxed);
    }

    /// Notes that bytes arrived: the client is not idle. Once per read from the socket,
    /// however many requests the bytes hold, as Redis counts it.
    pub(crate) fn heard(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.active_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn name(&self) -> Option<Vec<u8>> {
        self.names().name.clone()
    }

    /// Names the connection; an empty name clears it.
    pub(crate) fn set_name(&self, name: &[u8]) {
        self.names().name = (!name.is_empty()).then(|| name.to_vec());
    }

    pub(crate) fn set_lib(&self, which: Lib, value: &[u8]) {
        let value = (!value.is_empty()).then(|| value.to_vec());
        let mut names = self.names();
        match which {
            Lib::Name => names.lib_name = value,
            Lib::Version => names.lib_ver = value,
        }
    }

    pub(crate) fn set_resp3(&self, resp3: bool) {
        self.resp3.store(resp3, Ordering::Relaxed);
    }

    /// Has the connection close, as `CLIENT KILL` would (a subscriber too far behind).
    pub(crate) fn kill_now(&self) {
        self.kill.notify_one();
    }

    /// Resolves once `CLIENT KILL` chose this connection (at once, if it already did).
    pub(crate) async fn killed(&self) {
        self.kill.notified().await;
    }

    fn names(&self) -> MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.opened)
    }

    /// Its `CLIENT LIST` line, without the newline; `command_name` names a place in the
    /// server's command table.
    fn line(&self, now: Instant, command_name: impl Fn(usize) -> &'static str) -> String {
        let age = self.age(now);
        let active = Duration::from_millis(self.active_ms.load(Ordering::Relaxed));
        let idle = age.saturating_sub(active);
        let command = match self.command.load(Ordering::Relaxed) {
            0 => "NULL",
            place => command_name(place - 1),
        };
        let shown = |addr: Option<SocketAddr>| addr.map_or_else(String::new, |a| a.to_string());
        let text = |bytes: &Option<Vec<u8>>| {
            bytes
                .as_deref()
                .map_or_else(String::new, |b| String::from_utf8_lossy(b).into_owned())
        };
        let names = self.names();
        format!(
            "id={} addr={} laddr={} name={} age={} idle={} flags=N db=0 cmd={command} user=default resp={} lib-name={} lib-ver={}",
            self.id,
            shown(self.addr),
            shown(self.laddr),
            text(&names.name),
            age.as_secs(),
            idle.as_secs(),
            if self.resp3.load(Ordering::Relaxed) {
                3
            } else {
                2
            },
            text(&names.lib_name),
            text(&names.lib_ver),
        )
    }
}

/// Every open connection of a server, by id.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    open: Mutex<BTreeMap<u64, Arc<Client>>>,
}

/// Keeps a connection in the registry until dropped.
pub(crate) struct Registered<'a> {
    clients: &'a Clients,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.clients.open().remove(&self.id);
    }
}

/// Which connections `CLIENT KILL` closes: those that match every filter given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KillFilter {
    pub(crate) ids: Vec<u64>,
    pub(crate) addr: Option<String>,
    pub(crate) laddr: Option<String>,
    /// Open at least this long.
    pub(crate) max_age: Option<Duration>,
    /// `TYPE` or `USER` named something no connection here is (a replica, a Pub/Sub
    /// client, another user): nothing matches.
    pub(crate) none: bool,
    /// Spare the connection that asks (`SKIPME yes`, the default).
    pub(crate) skip_me: bool,
}

impl Clients {
    /// Adds `client` until the returned guard is dropped.
    pub(crate) fn register(&self, client: Arc<Client>) -> Registered<'_> {
        let id = client.id;
        let previous = self.open().insert(id, client);
        assert!(previous.is_none(), "connection ids are unique");
        Registered { clients: self, id }
    }

    /// `CLIENT LIST` of the connections `ids` names (every one, if empty): a line each,
    /// by id.
    pub(crate) fn list(&self, ids: &[u64], command_name: impl Fn(usize) -> &'static str) -> String {
        let now = Instant::now();
        let mut out = String::new();
        for client in self.open().values() {
            if ids.is_empty() || ids.contains(&client.id) {
                out.push_str(&client.line(now, &command_name));
                out.push('\n');
            }
        }
        out
    }

    /// `CLIENT INFO`: the line of connection `id` (empty if it is not open).
    pub(crate) fn info(&self, id: u64, command_name: impl Fn(usize) -> &'static str) -> String {
        let open = self.open();
        debug_assert!(open.contains_key(&id), "the asking connection is open");
        open.get(&id)
            .map(|client| client.line(Instant::now(), command_name))
            .unwrap_or_default()
    }

    /// Tells every connection `filter` matches to close, as seen from connection
    /// `caller`; how many it told.
    pub(crate) fn kill(&self, filter: &KillFilter, caller: u64) -> u64 {
        if filter.none {
            return 0;
        }
        let now = Instant::now();
        let mut killed = 0;
        for client in self.open().values() {
            let matches = (filter.ids.is_empty() || filter.ids.contains(&client.id))
                && filter
                    .addr
                    .as_ref()
                    .is_none_or(|addr| client.addr.is_some_and(|a| a.to_string() == *addr))
                && filter
                    .laddr
                    .as_ref()
                    .is_none_or(|addr| client.laddr.is_some_and(|a| a.to_string() == *addr))
                && filter.max_age.is_none_or(|age| client.age(now) >= age)
                && !(filter.skip_me && client.id == caller);
            if matches {
                client.kill.notify_one();
                killed += 1;
            }
        }
        killed
    }

    fn open(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Client>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
