//! IPv4 CIDR blocks as AWS accepts them for VPCs and subnets.

use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// Why a CIDR block string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrError {
    /// Not of the form `a.b.c.d/n` with n ≤ 32.
    Malformed,
    /// Bits set past the prefix (`10.0.0.1/16`): AWS wants the network address.
    HostBitsSet,
}

/// Parses `a.b.c.d/n`, insisting on the network address.
pub fn parse_v4(s: &str) -> Result<Ipv4Net, CidrError> {
    let (addr, len) = s.split_once('/').ok_or(CidrError::Malformed)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| CidrError::Malformed)?;
    // Reject `/08`, `/+8` and the like that a lenient integer parse would take.
    if len.is_empty()
        || len.len() > 2
        || (len.len() > 1 && len.starts_with('0'))
        || !len.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(CidrError::Malformed);
    }
    let len: u8 = len.parse().map_err(|_| CidrError::Malformed)?;
    let net = Ipv4Net::new(addr, len).map_err(|_| CidrError::Malformed)?;
    if net.network() != addr {
        return Err(CidrError::HostBitsSet);
    }
    Ok(net)
}

/// Parses `a.b.c.d/n` and clears any bits past the prefix, as EC2 does for VPC, subnet,
/// route and network ACL blocks: "if you specify 100.68.0.18/18, we modify it to
/// 100.68.0.0/18" (the API reference of CreateVpc, CreateSubnet, CreateRoute and
/// CreateNetworkAclEntry).
pub fn parse_v4_canonical(s: &str) -> Result<Ipv4Net, CidrError> {
    match parse_v4(s) {
        Err(CidrError::HostBitsSet) => {
            let (addr, len) = s.split_once('/').ok_or(CidrError::Malformed)?;
            let addr: Ipv4Addr = addr.parse().map_err(|_| CidrError::Malformed)?;
            let len: u8 = len.parse().map_err(|_| CidrError::Malformed)?;
            Ok(Ipv4Net::new(addr, len)
                .map_err(|_| CidrError::Malformed)?
                .trunc())
        }
        other => other,
    }
}

/// AWS allows VPC and subnet IPv4 blocks from /16 to /28.
pub fn vpc_prefix_ok(net: &Ipv4Net) -> bool {
    (16..=28).contains(&net.prefix_len())
}

/// Whether two blocks share any address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Addresses in the block that instances can use: AWS reserves the first four (network, VPC
/// router, DNS, future use) and the last (broadcast).
pub fn usable_addresses(net: &Ipv4Net) -> u64 {
    (1u64 << (32 - net.prefix_len())).saturating_sub(5)
}

/// The lowest address of `net` that a network interface may take: not one of AWS's reserved
/// five (network, router, DNS, future use, broadcast) and not in `used`.
pub fn first_free_host(net: &Ipv4Net, used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    let base = u32::from(net.network());
    let last = u32::from(net.broadcast());
    // One pass to sort the taken addresses, then a walk beside them: a subnet with
    // thousands of interfaces made this scan quadratic when each candidate searched `used`.
    let mut taken: Vec<u32> = used.iter().map(|a| u32::from(*a)).collect();
    taken.sort_unstable();
    taken.dedup();
    let mut candidate = base.checked_add(4)?;
    for t in taken {
        if t < candidate {
            continue;
        }
        if t != candidate {
            break;
        }
        candidate += 1;
    }
    (candidate < last).then(|| Ipv4Addr::from(candidate))
}

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("a valid literal block")
}

/// Why AWS refuses `new` as a further IPv4 block of a VPC whose blocks are `existing` (the
/// primary first); `None` when it may be added. The RFC 1918 rule: a VPC whose primary block
/// is in one private range cannot add a block from another (nor 198.19.0.0/16, nor
/// 172.31.0.0/16 beside a 172.16.0.0/12 primary); 169.254.0.0/16 never.
pub fn secondary_refusal(existing: &[Ipv4Net], new: &Ipv4Net) -> Option<String> {
    let primary = existing.first()?;
    if !vpc_prefix_ok(new) {
        return Some("the block must be between /16 and /28".into());
    }
    if let Some(b) = existing.iter().find(|b| overlaps(b, new)) {
        return Some(format!("it overlaps the VPC's block {b}"));
    }
    if net("169.254.0.0/16").contains(new) {
        return Some("169.254.0.0/16 is link-local and never allowed".into());
    }
    let ranges = [
        net("10.0.0.0/8"),
        net("172.16.0.0/12"),
        net("192.168.0.0/16"),
    ];
    let home = ranges.iter().find(|r| r.contains(primary));
    if let Some(home) = home {
        if ranges
            .iter()
            .any(|r| r != home && (r.contains(new) || new.contains(r)))
        {
            return Some(format!(
                "the primary block {primary} is in {home}: blocks from another private range are not allowed"
            ));
        }
        if net("198.19.0.0/16").contains(new) {
            return Some(format!(
                "198.19.0.0/16 is not allowed beside a private primary block ({primary})"
            ));
        }
        if *home == net("172.16.0.0/12")
            && !net("172.31.0.0/16").contains(primary)
            && net("172.31.0.0/16").contains(new)
        {
            return Some(
                "172.31.0.0/16 is not allowed beside a 172.16.0.0/12 primary block".into(),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_rules() {
        assert_eq!(parse_v4("10.0.0.0/16").unwrap().prefix_len(), 16);
        assert_eq!(parse_v4("10.0.0.1/16"), Err(CidrError::HostBitsSet));
        let canonical = |t| parse_v4_canonical(t).map(|n| n.to_string());
        assert_eq!(canonical("100.68.0.18/18"), Ok("100.68.0.0/18".into()));
        assert_eq!(canonical("10.0.0.0/16"), Ok("10.0.0.0/16".into()));
        assert_eq!(canonical("10.0.0.1/32"), Ok("10.0.0.1/32".into()));
        assert_eq!(canonical("10.0.0.1/08"), Err(CidrError::Malformed));
        assert_eq!(canonical("10.0.0.1/33"), Err(CidrError::Malformed));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "banana",
            "10.0.0/16",
            "10.0.0.0/",
            "10.0.0.0/1x",
            "10.0.0.0/016",
        ] {
            assert_eq!(parse_v4(bad), Err(CidrError::Malformed), "{bad}");
        }
        assert!(vpc_prefix_ok(&parse_v4("10.0.0.0/28").unwrap()));
        assert!(!vpc_prefix_ok(&parse_v4("10.0.0.0/15").unwrap()));
        assert!(!vpc_prefix_ok(&parse_v4("10.0.0.0/29").unwrap()));
        assert_eq!(usable_addresses(&parse_v4("10.0.0.0/24").unwrap()), 251);
        assert_eq!(usable_addresses(&parse_v4("10.0.0.0/28").unwrap()), 11);
        let net = parse_v4("10.0.0.0/28").unwrap();
        assert_eq!(
            first_free_host(&net, &[]),
            Some("10.0.0.4".parse().unwrap())
        );
        let taken: Vec<Ipv4Addr> = (4..15).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        assert_eq!(
            first_free_host(&net, &taken[1..]),
            Some("10.0.0.4".parse().unwrap())
        );
        // All 11 usable addresses taken: .15 is the broadcast address, never handed out.
        assert_eq!(first_free_host(&net, &taken), None);
        let vpc = [parse_v4("10.0.0.0/16").unwrap()];
        let ok = |s: &str| secondary_refusal(&vpc, &parse_v4(s).unwrap()).is_none();
        assert!(ok("10.1.0.0/16") && ok("100.64.0.0/16") && ok("203.0.113.0/24"));
        assert!(!ok("10.0.128.0/17")); // overlaps
        assert!(!ok("172.16.0.0/16") && !ok("192.168.0.0/20") && !ok("198.19.0.0/16"));
        assert!(!ok("169.254.0.0/16") && !ok("10.2.0.0/15"));
        let vpc172 = [parse_v4("172.20.0.0/16").unwrap()];
        assert!(secondary_refusal(&vpc172, &parse_v4("172.31.0.0/16").unwrap()).is_some());
        assert!(secondary_refusal(&vpc172, &parse_v4("172.21.0.0/16").unwrap()).is_none());
    }

    fn net() -> impl Strategy<Value = Ipv4Net> {
        (any::<u32>(), 8u8..=32)
            .prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
    }

    /// How the second block of a pair is made from the first. Two independent random blocks
    /// almost never overlap (a /8 covers 1/256 of the space), so a broken `overlaps` that
    /// answered `false` would pass; most pairs are made related instead.
    #[derive(Debug, Clone, Copy)]
    enum Relation {
        /// A block inside the first (or the first itself).
        Inside,
        /// A block containing the first.
        Around,
        /// The next or previous block of the same size: disjoint, touching.
        Adjacent,
        /// Unrelated.
        Random,
    }

    /// A pair of blocks, overlapping and disjoint in fair proportions.
    fn pair() -> impl Strategy<Value = (Ipv4Net, Ipv4Net)> {
        let relation = prop_oneof![
            Just(Relation::Inside),
            Just(Relation::Around),
            Just(Relation::Adjacent),
            Just(Relation::Random),
        ];
        (
            net(),
            relation,
            any::<u32>(),
            0u8..=32,
            any::<bool>(),
            net(),
        )
            .prop_map(|(a, relation, bits, len, next, random)| {
                let b = match relation {
                    Relation::Inside => {
                        let len = len.max(a.prefix_len());
                        let host = bits & !u32::from(a.netmask());
                        let addr = Ipv4Addr::from(u32::from(a.network()) | host);
                        Ipv4Net::new(addr, len).unwrap().trunc()
                    }
                    Relation::Around => Ipv4Net::new(a.network(), len.min(a.prefix_len()))
                        .unwrap()
                        .trunc(),
                    Relation::Adjacent => {
                        let size = 1u64 << (32 - a.prefix_len());
                        let base = u64::from(u32::from(a.network()));
                        // Wrap at the ends of the space: still disjoint, unless a is /0.
                        let start = if next {
                            base + size
                        } else {
                            base.wrapping_sub(size)
                        };
                        let addr = Ipv4Addr::from((start & 0xffff_ffff) as u32);
                        Ipv4Net::new(addr, a.prefix_len()).unwrap()
                    }
                    Relation::Random => random,
                };
                (a, b)
            })
    }

    /// `overlaps` agrees with the definition (some address lies in both blocks) and is
    /// symmetric, over 1,000 pairs of which at least a fifth overlap, a fifth are disjoint
    /// and a tenth are disjoint but touching (where an off-by-one would show).
    #[test]
    fn overlap_is_shared_address() {
        const CASES: u32 = 1000;
        let counts = std::sync::Mutex::new([0u32; 3]);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: CASES,
            source_file: Some(file!()),
            ..ProptestConfig::default()
        });
        let outcome = runner.run(&pair(), |(a, b)| {
            let (a0, a1) = (u32::from(a.network()), u32::from(a.broadcast()));
            let (b0, b1) = (u32::from(b.network()), u32::from(b.broadcast()));
            let shared = a0 <= b1 && b0 <= a1;
            prop_assert_eq!(overlaps(&a, &b), shared, "{} {}", a, b);
            prop_assert_eq!(overlaps(&b, &a), shared, "{} {}", b, a);
            let touching = u64::from(a1) + 1 == u64::from(b0) || u64::from(b1) + 1 == u64::from(a0);
            let mut counts = counts.lock().unwrap();
            counts[0] += u32::from(shared);
            counts[1] += u32::from(!shared);
            counts[2] += u32::from(touching);
            Ok(())
        });
        if let Err(e) = outcome {
            panic!("{e}");
        }
        let [overlapping, disjoint, touching] = counts.into_inner().unwrap();
        assert!(
            overlapping >= CASES / 5 && disjoint >= CASES / 5 && touching >= CASES / 10,
            "{overlapping} overlapping, {disjoint} disjoint, {touching} touching of {CASES}"
        );
    }

    proptest! {
        /// Every block printed by ipnet parses back to itself.
        #[test]
        fn parse_roundtrip(a in net()) {
            prop_assert_eq!(parse_v4(&a.to_string()), Ok(a));
        }

        /// The sorted walk finds what checking every candidate against `used` finds, with
        /// taken addresses in any order, repeated, or outside the block.
        #[test]
        fn first_free_host_is_the_lowest_untaken(
            prefix in 24u8..=28,
            taken in proptest::collection::vec(0u32..300, 0..300),
        ) {
            let net = Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), prefix).unwrap();
            let used: Vec<Ipv4Addr> = taken.iter().map(|o| Ipv4Addr::from(0x0a00_0000 + o)).collect();
            let naive = (u32::from(net.network()) + 4..u32::from(net.broadcast()))
                .map(Ipv4Addr::from)
                .find(|a| !used.contains(a));
            prop_assert_eq!(first_free_host(&net, &used), naive);
        }
    }
}
