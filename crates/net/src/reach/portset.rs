//! Sets of ports as sorted, disjoint, inclusive ranges: what the engine carries along a
//! path instead of one port.

use super::model::Ports;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortSet {
    /// Sorted, disjoint and never adjacent (adjacent ranges are merged).
    ranges: Vec<(u16, u16)>,
}

impl PortSet {
    pub fn empty() -> PortSet {
        PortSet { ranges: vec![] }
    }
    pub fn all() -> PortSet {
        PortSet::range(Ports::ALL)
    }
    pub fn range(p: Ports) -> PortSet {
        if p.from > p.to {
            return PortSet::empty();
        }
        PortSet {
            ranges: vec![(p.from, p.to)],
        }
    }
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
    pub fn contains(&self, port: u16) -> bool {
        // The last range starting at or before `port` is the only one that can hold it.
        let i = self.ranges.partition_point(|r| r.0 <= port);
        i > 0 && self.ranges[i - 1].1 >= port
    }
    /// The ranges, in order.
    pub fn ranges(&self) -> impl Iterator<Item = Ports> + '_ {
        self.ranges.iter().map(|&(from, to)| Ports { from, to })
    }
    /// The lowest port in the set.
    pub fn first(&self) -> Option<u16> {
        self.ranges.first().map(|r| r.0)
    }

    pub fn union(&self, other: &PortSet) -> PortSet {
        let mut all: Vec<(u16, u16)> = self.ranges.iter().chain(&other.ranges).copied().collect();
        all.sort_unstable();
        let mut out: Vec<(u16, u16)> = Vec::with_capacity(all.len());
        for (from, to) in all {
            match out.last_mut() {
                // Overlapping or adjacent: one range.
                Some(last) if u32::from(from) <= u32::from(last.1) + 1 => last.1 = last.1.max(to),
                _ => out.push((from, to)),
            }
        }
        PortSet { ranges: out }
    }

    pub fn intersect(&self, other: &PortSet) -> PortSet {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            let from = a.0.max(b.0);
            let to = a.1.min(b.1);
            if from <= to {
                out.push((from, to));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        PortSet { ranges: out }
    }

    /// The ports of `self` not in `other`.
    pub fn minus(&self, other: &PortSet) -> PortSet {
        self.intersect(&other.complement())
    }

    pub fn complement(&self) -> PortSet {
        let mut out = Vec::new();
        let mut next: u32 = 0;
        for &(from, to) in &self.ranges {
            if u32::from(from) > next {
                out.push((next as u16, from - 1));
            }
            next = u32::from(to) + 1;
        }
        if next <= u32::from(u16::MAX) {
            out.push((next as u16, u16::MAX));
        }
        PortSet { ranges: out }
    }
}

impl std::fmt::Display for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ranges.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    // A small universe near both ends, where the edge cases live.
    fn set() -> impl Strategy<Value = PortSet> {
        proptest::collection::vec((0u16..40, 0u16..8), 0..5).prop_map(|v| {
            v.into_iter()
                .map(|(a, len)| {
                    let a = if a >= 20 { u16::MAX - (a - 20) } else { a };
                    PortSet::range(Ports {
                        from: a,
                        to: a.saturating_add(len),
                    })
                })
                .fold(PortSet::empty(), |s, r| s.union(&r))
        })
    }

    fn members(s: &PortSet) -> BTreeSet<u16> {
        s.ranges().flat_map(|r| r.from..=r.to).collect()
    }

    proptest! {
        #[test]
        fn set_operations_agree_with_sets_of_ports(a in set(), b in set(), p in any::<u16>()) {
            let (ma, mb) = (members(&a), members(&b));
            prop_assert_eq!(members(&a.union(&b)), &ma | &mb);
            prop_assert_eq!(members(&a.intersect(&b)), &ma & &mb);
            prop_assert_eq!(members(&a.minus(&b)), &ma - &mb);
            prop_assert_eq!(a.contains(p), ma.contains(&p));
            prop_assert_eq!(a.complement().contains(p), !ma.contains(&p));
            // Canonical: equal sets, equal ranges.
            prop_assert_eq!(a.union(&b), b.union(&a));
        }
    }
}
