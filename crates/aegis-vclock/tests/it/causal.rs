use aegis_vclock::{CausalContext, Dot};

#[test]
fn out_of_order_dots_go_to_the_cloud_and_fold_back() {
    let mut cc = CausalContext::new();
    assert!(cc.is_empty());
    assert_eq!(cc.next_dot(1), Dot::new(1, 1));
    cc.insert_dot(Dot::new(1, 3));
    cc.insert_dot(Dot::new(1, 4));
    assert_eq!(cc.max_counter(1), 4);
    assert_eq!(cc.next_dot(1), Dot::new(1, 5));
    assert!(!cc.contains(Dot::new(1, 1)));
    assert_eq!(cc.cloud().count(), 2);
    cc.insert_dot(Dot::new(1, 1));
    assert_eq!(cc.cloud().count(), 2);
    cc.insert_dot(Dot::new(1, 2));
    assert_eq!(cc.cloud().count(), 0);
    assert_eq!(cc.version_vector().get(1), 4);
    assert_eq!(
        cc.dots().collect::<Vec<_>>(),
        (1..=4).map(|c| Dot::new(1, c)).collect::<Vec<_>>()
    );
    assert_eq!(cc.len(), 4);
}

#[test]
fn next_dot_does_not_insert() {
    let cc = CausalContext::new();
    let d = cc.next_dot(9);
    assert!(!cc.contains(d));
    assert!(!cc.contains(Dot::new(9, 0)));
}

#[test]
fn join_is_set_union_and_equality_is_semantic() {
    let a: CausalContext = [Dot::new(1, 1), Dot::new(1, 3), Dot::new(2, 2)]
        .into_iter()
        .collect();
    let b: CausalContext = [Dot::new(1, 2), Dot::new(2, 1), Dot::new(3, 5)]
        .into_iter()
        .collect();
    let mut ab = a.clone();
    ab.join(&b);
    let mut ba = b.clone();
    ba.join(&a);
    assert_eq!(ab, ba);
    let want: Vec<Dot> = vec![
        Dot::new(1, 1),
        Dot::new(1, 2),
        Dot::new(1, 3),
        Dot::new(2, 1),
        Dot::new(2, 2),
        Dot::new(3, 5),
    ];
    let mut got: Vec<Dot> = ab.dots().collect();
    got.sort();
    assert_eq!(got, want);
    // Built in a different order, same set: equal.
    let c: CausalContext = want.iter().rev().copied().collect();
    assert_eq!(c, ab);
    assert_eq!(ab.cloud().collect::<Vec<_>>(), vec![Dot::new(3, 5)]);
}

#[test]
#[should_panic(expected = "counters start at 1")]
fn inserting_dot_zero_is_a_bug() {
    CausalContext::new().insert_dot(Dot::new(1, 0));
}
