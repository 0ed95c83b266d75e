//! Clusters known by their position in name order, so that what [`compute`](super::compute) asks of every
//! ordered pair — is there a link, is one expected — is a table lookup instead of names compared in a tree
//! (a full mesh of 100 clusters has 9,900 pairs, each asked several times on every change).

use std::collections::{BTreeMap, HashMap};

use crate::ids::ClusterName;

use super::model::{ClusterSnapshot, Expectation};

/// The snapshots in name order, a name's first snapshot only.
pub(super) struct Clusters<'a> {
    pub(super) snaps: Vec<&'a ClusterSnapshot>,
    by_name: HashMap<&'a str, usize>,
}

impl<'a> Clusters<'a> {
    pub(super) fn new(snapshots: &'a [ClusterSnapshot]) -> Self {
        let mut snaps: Vec<&ClusterSnapshot> = snapshots.iter().collect();
        snaps.sort_by(|a, b| a.name.cmp(&b.name));
        snaps.dedup_by(|b, a| a.name == b.name);
        let by_name = snaps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        Clusters { snaps, by_name }
    }

    pub(super) fn len(&self) -> usize {
        self.snaps.len()
    }

    /// The position of the cluster of that name.
    pub(super) fn find(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub(super) fn names(&self) -> Vec<&'a ClusterName> {
        self.snaps.iter().map(|s| &s.name).collect()
    }
}

/// A set of ordered pairs of positions, one bit each.
pub(super) struct PairSet {
    n: usize,
    bits: Vec<u64>,
}

impl PairSet {
    pub(super) fn new(n: usize) -> Self {
        PairSet {
            n,
            bits: vec![0; (n * n).div_ceil(64)],
        }
    }

    pub(super) fn insert(&mut self, from: usize, to: usize) {
        let i = from * self.n + to;
        self.bits[i / 64] |= 1 << (i % 64);
    }

    pub(super) fn contains(&self, from: usize, to: usize) -> bool {
        let i = from * self.n + to;
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }
}

/// [`Expectation`] asked by position: the same answers as [`Expectation::expects`] and its choices.
pub(super) struct Expected<'a> {
    names: Vec<&'a ClusterName>,
    in_full_mesh: Vec<bool>,
    /// Each cluster's decided pairs, when it has any.
    chosen: Vec<Option<&'a BTreeMap<ClusterName, bool>>>,
}

impl<'a> Expected<'a> {
    pub(super) fn new(clusters: &Clusters<'a>, expect: &'a Expectation) -> Self {
        let names = clusters.names();
        Expected {
            in_full_mesh: names
                .iter()
                .map(|n| expect.full_mesh.contains(*n))
                .collect(),
            chosen: names.iter().map(|n| expect.chosen.get(*n)).collect(),
            names,
        }
    }

    fn decided(&self, from: usize, to: usize) -> Option<bool> {
        self.chosen[from]?.get(self.names[to]).copied()
    }

    /// Whether `from` is meant to hold a peer gateway for `to`.
    pub(super) fn expects(&self, from: usize, to: usize) -> bool {
        match self.decided(from, to) {
            Some(meant) => meant,
            None => from != to && self.in_full_mesh[from] && self.in_full_mesh[to],
        }
    }

    /// Whether the pair's expectation comes from a choice rather than the full-mesh rule.
    pub(super) fn chose(&self, a: usize, b: usize) -> bool {
        self.decided(a, b).is_some() || self.decided(b, a).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(n: &str) -> ClusterSnapshot {
        ClusterSnapshot::new(ClusterName::new(n).expect("name"))
    }

    #[test]
    fn clusters_are_in_name_order_once_each() {
        let snaps = [snap("c3"), snap("c1"), snap("c2"), snap("c1")];
        let c = Clusters::new(&snaps);
        assert_eq!(c.len(), 3);
        let names: Vec<&str> = c.names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["c1", "c2", "c3"]);
        assert_eq!(c.find("c3"), Some(2));
        assert_eq!(c.find("c4"), None);
    }

    #[test]
    fn pair_set_holds_ordered_pairs() {
        let mut p = PairSet::new(9);
        p.insert(8, 7);
        p.insert(0, 1);
        assert!(p.contains(8, 7) && p.contains(0, 1));
        assert!(!p.contains(7, 8) && !p.contains(1, 0) && !p.contains(8, 8));
    }

    #[test]
    fn expected_answers_as_the_expectation_does() {
        let snaps = [snap("a"), snap("b"), snap("c"), snap("d")];
        let names: Vec<ClusterName> = snaps.iter().map(|s| s.name.clone()).collect();
        let mut expect = Expectation {
            full_mesh: names[..3].iter().cloned().collect(),
            ..Default::default()
        };
        // a → b chosen, b → a left out on purpose; d decided with c only.
        expect.choose(&names[..2], |x, _| x.as_str() == "a");
        expect.choose_where(&names[2..], |x, _| x.as_str() == "d", |_, _| true);
        let clusters = Clusters::new(&snaps);
        let e = Expected::new(&clusters, &expect);
        for i in 0..4 {
            for j in 0..4 {
                assert_eq!(
                    e.expects(i, j),
                    expect.expects(&names[i], &names[j]),
                    "{i} → {j}"
                );
                let decided = |a: &ClusterName, b: &ClusterName| {
                    expect.chosen.get(a).is_some_and(|m| m.contains_key(b))
                };
                assert_eq!(
                    e.chose(i, j),
                    decided(&names[i], &names[j]) || decided(&names[j], &names[i]),
                    "{i} ⇄ {j}"
                );
            }
        }
    }
}
