//! The addresses of a subnet that network interfaces hold, as sorted runs: what launching an
//! instance reads and writes instead of every interface of the subnet, so that a launch costs
//! the same in a subnet of ten thousand instances as in an empty one. Addresses handed out in
//! order (the common case) stay one run however many there are.

use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// Held addresses as disjoint, non-adjacent inclusive runs `[first, last]`, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    runs: Vec<[u32; 2]>,
}

impl Held {
    /// From runs as stored; they are put back in order and merged, so any list is taken.
    pub fn from_runs(runs: Vec<[u32; 2]>) -> Held {
        let mut runs: Vec<[u32; 2]> = runs
            .into_iter()
            .map(|[a, b]| [a.min(b), a.max(b)])
            .collect();
        runs.sort_unstable();
        let mut merged: Vec<[u32; 2]> = Vec::with_capacity(runs.len());
        for [a, b] in runs {
            match merged.last_mut() {
                Some(last) if u64::from(a) <= u64::from(last[1]) + 1 => last[1] = last[1].max(b),
                _ => merged.push([a, b]),
            }
        }
        Held { runs: merged }
    }

    /// The runs, for storing.
    pub fn runs(&self) -> &[[u32; 2]] {
        &self.runs
    }

    /// How many addresses are held.
    pub fn len(&self) -> u64 {
        self.runs.iter().map(|[a, b]| u64::from(b - a) + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The index of the first run that ends at or after `ip`.
    fn at(&self, ip: u32) -> usize {
        self.runs.partition_point(|[_, b]| *b < ip)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        self.runs.get(self.at(ip)).is_some_and(|[a, _]| *a <= ip)
    }

    /// Marks `ip` held; `false` if it already was.
    pub fn take(&mut self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        let i = self.at(ip);
        if self.runs.get(i).is_some_and(|[a, _]| *a <= ip) {
            return false;
        }
        let joins_prev = i > 0 && self.runs[i - 1][1].checked_add(1) == Some(ip);
        let joins_next = self
            .runs
            .get(i)
            .is_some_and(|[a, _]| ip.checked_add(1) == Some(*a));
        match (joins_prev, joins_next) {
            (true, true) => {
                self.runs[i - 1][1] = self.runs[i][1];
                self.runs.remove(i);
            }
            (true, false) => self.runs[i - 1][1] = ip,
            (false, true) => self.runs[i][0] = ip,
            (false, false) => self.runs.insert(i, [ip, ip]),
        }
        true
    }

    /// Lets go of `ip`; `false` if it was not held.
    pub fn release(&mut self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        let i = self.at(ip);
        let Some(&[a, b]) = self.runs.get(i) else {
            return false;
        };
        if a > ip {
            return false;
        }
        match (a == ip, b == ip) {
            (true, true) => {
                self.runs.remove(i);
            }
            (true, false) => self.runs[i][0] = ip + 1,
            (false, true) => self.runs[i][1] = ip - 1,
            (false, false) => {
                self.runs[i][1] = ip - 1;
                self.runs.insert(i + 1, [ip + 1, b]);
            }
        }
        true
    }

    /// The lowest address of `net` an interface may take: not one of AWS's reserved five
    /// (network, router, DNS, future use, broadcast) and not held.
    pub fn first_free(&self, net: &Ipv4Net) -> Option<Ipv4Addr> {
        let mut candidate = u32::from(net.network()).checked_add(4)?;
        let last = u32::from(net.broadcast());
        for &[a, b] in &self.runs[self.at(candidate)..] {
            if a > candidate {
                break;
            }
            candidate = b.checked_add(1)?;
        }
        (candidate < last).then(|| Ipv4Addr::from(candidate))
    }
}

impl FromIterator<Ipv4Addr> for Held {
    fn from_iter<I: IntoIterator<Item = Ipv4Addr>>(iter: I) -> Held {
        let mut held = Held::default();
        for ip in iter {
            held.take(ip);
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cidr::first_free_host;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn ip(o: u32) -> Ipv4Addr {
        Ipv4Addr::from(0x0a00_0000 + o)
    }

    #[test]
    fn addresses_handed_out_in_order_stay_one_run() {
        let net: Ipv4Net = "10.0.0.0/16".parse().unwrap();
        let mut held = Held::default();
        for _ in 0..10_000 {
            let next = held.first_free(&net).unwrap();
            assert!(held.take(next));
        }
        assert_eq!(held.runs(), [[0x0a00_0004, 0x0a00_0004 + 9_999]]);
        assert_eq!(held.len(), 10_000);
        assert!(!held.take(ip(4)), "already held");
    }

    #[test]
    fn a_full_subnet_has_no_free_address() {
        let net: Ipv4Net = "10.0.0.0/28".parse().unwrap();
        let held: Held = (4..15).map(ip).collect();
        assert_eq!(held.first_free(&net), None);
        assert_eq!(held.len(), 11);
    }

    proptest! {
        /// Any sequence of takes and releases leaves what a plain set leaves, and the first
        /// free address is the one the interface-by-interface walk finds.
        #[test]
        fn runs_agree_with_a_set(
            prefix in 24u8..=28,
            steps in proptest::collection::vec((any::<bool>(), 0u32..300), 0..400),
        ) {
            let net = Ipv4Net::new(ip(0), prefix).unwrap();
            let mut held = Held::default();
            let mut set = BTreeSet::new();
            for (take, o) in steps {
                if take {
                    prop_assert_eq!(held.take(ip(o)), set.insert(o));
                } else {
                    prop_assert_eq!(held.release(ip(o)), set.remove(&o));
                }
                let used: Vec<Ipv4Addr> = set.iter().map(|o| ip(*o)).collect();
                prop_assert_eq!(held.first_free(&net), first_free_host(&net, &used));
                prop_assert_eq!(held.len(), set.len() as u64);
                for w in held.runs().windows(2) {
                    prop_assert!(w[0][1] + 1 < w[1][0], "runs are disjoint and not adjacent");
                }
            }
            prop_assert_eq!(Held::from_runs(held.runs().to_vec()), held.clone());
            for o in 0..300 {
                prop_assert_eq!(held.contains(ip(o)), set.contains(&o));
            }
        }
    }
}
