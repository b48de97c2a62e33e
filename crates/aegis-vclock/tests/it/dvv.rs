use std::collections::BTreeSet;

use aegis_vclock::{Dot, DvvSet, VectorClock, VersionVector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SERVER: u64 = 100;

#[test]
fn update_discards_exactly_what_the_context_covers() {
    let mut s: DvvSet<&str> = DvvSet::empty();
    assert_eq!(
        s.update(&VersionVector::new(), "v1", SERVER),
        Dot::new(SERVER, 1)
    );
    let ctx1 = s.join();
    // A second client that never read writes concurrently.
    assert_eq!(
        s.update(&VersionVector::new(), "v2", SERVER),
        Dot::new(SERVER, 2)
    );
    let mut got: Vec<_> = s.values().copied().collect();
    got.sort();
    assert_eq!(got, ["v1", "v2"]);
    // The first client writes having seen only v1: v1 goes, v2 stays.
    s.update(&ctx1, "v3", SERVER);
    let mut got: Vec<_> = s.values().copied().collect();
    got.sort();
    assert_eq!(got, ["v2", "v3"]);
    let dotted: Vec<_> = s.dotted_values().collect();
    assert_eq!(
        dotted,
        vec![
            (Some(Dot::new(SERVER, 2)), &"v2"),
            (Some(Dot::new(SERVER, 3)), &"v3")
        ]
    );
    // Reconciling and writing back leaves a single value.
    let merged = s.reconcile(|vs| if vs.contains(&&"v3") { "v2+v3" } else { "?" });
    s.update_from(merged, SERVER);
    assert_eq!(s.values().copied().collect::<Vec<_>>(), ["v2+v3"]);
    assert_eq!(s.join().get(SERVER), 4);
}

#[test]
fn sync_between_servers_keeps_concurrent_and_drops_overwritten() {
    let mut a: DvvSet<u32> = DvvSet::empty();
    let mut b: DvvSet<u32> = DvvSet::empty();
    a.update(&VersionVector::new(), 1, 1);
    b.update(&VersionVector::new(), 2, 2);
    let ab = a.sync(&b);
    assert_eq!(ab, b.sync(&a));
    assert_eq!(ab.len(), 2);
    assert_eq!(ab.sync(&ab), ab);
    let mut a2 = ab.clone();
    a2.update(&ab.join(), 3, 1);
    assert_eq!(a2.values().copied().collect::<Vec<_>>(), [3]);
    // The stale replica b learns that its value was overwritten.
    let synced = b.sync(&a2);
    assert_eq!(synced.values().copied().collect::<Vec<_>>(), [3]);
    assert_eq!(synced, a2.sync(&b));
    assert!(b.less(&a2));
}

#[test]
fn anonymous_client_values() {
    let c = DvvSet::with_context(&VectorClock::new(), 5u8);
    assert_eq!(c.values().copied().collect::<Vec<_>>(), [5]);
    assert_eq!(DvvSet::new(6u8).len(), 1);
    let mut s = DvvSet::empty();
    let dots = s.update_from(c, 9);
    assert_eq!(dots, vec![Dot::new(9, 1)]);
    assert!(!s.is_empty());
}

/// The classic server-side vector clock of a key: one clock for the object, a list of
/// siblings, and the coordinating server's entry incremented on every write.
#[derive(Default)]
struct PerServerClock {
    clock: VectorClock,
    values: Vec<(usize, u32)>,
}

impl PerServerClock {
    fn put(&mut self, ctx: &VectorClock, value: (usize, u32)) {
        if ctx.dominates(&self.clock) {
            self.values.clear();
        }
        self.values.push(value);
        self.clock.merge(ctx);
        self.clock.increment(SERVER);
    }
}

/// What a client last read: the DVV context, the per-server clock, and the values.
#[derive(Clone, Default)]
struct ClientView {
    dvv_context: VersionVector,
    vc_context: VectorClock,
    seen: BTreeSet<(usize, u32)>,
}

/// N clients read and write one key through one server, each often writing with a
/// context that misses other clients' latest writes. Ground truth: write w overwrites
/// every write the client had read before issuing w; the siblings that should remain
/// are the writes nobody has overwritten.
fn run_clients(seed: u64, clients: usize, steps: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut dvv: DvvSet<(usize, u32)> = DvvSet::empty();
    let mut vc = PerServerClock::default();
    let mut read: Vec<ClientView> = vec![ClientView::default(); clients];
    let mut live: BTreeSet<(usize, u32)> = BTreeSet::new();
    let mut false_siblings_seen = 0usize;
    for step in 0..steps as u32 {
        let c = rng.random_range(0..clients);
        let value = (c, step);
        let view = &read[c];
        dvv.update(&view.dvv_context, value, SERVER);
        vc.put(&view.vc_context, value);
        live.retain(|v| !view.seen.contains(v));
        live.insert(value);

        let got: BTreeSet<_> = dvv.values().copied().collect();
        assert_eq!(
            got, live,
            "dvv siblings are exactly the truly concurrent writes (seed {seed}, step {step})"
        );
        assert!(
            got.len() <= clients,
            "at most one live write per client (seed {seed})"
        );
        let vc_got: BTreeSet<_> = vc.values.iter().copied().collect();
        assert!(
            vc_got.is_superset(&live),
            "per-server clock loses nothing here (seed {seed})"
        );
        false_siblings_seen = false_siblings_seen.max(vc_got.len() - live.len());

        // Some clients read again, with all siblings; others keep their stale view.
        for (k, r) in read.iter_mut().enumerate() {
            if k == c || rng.random_bool(0.3) {
                *r = ClientView {
                    dvv_context: dvv.join(),
                    vc_context: vc.clock.clone(),
                    seen: got.clone(),
                };
            }
        }
    }
    assert!(
        false_siblings_seen > clients,
        "the per-server vector clock keeps overwritten values as siblings (seed {seed}): {false_siblings_seen}"
    );
}

#[test]
fn stale_clients_give_only_true_siblings_with_dvv_but_false_ones_with_per_server_clock() {
    for seed in 0..8 {
        run_clients(seed, 2 + seed as usize % 4, 300);
    }
}
