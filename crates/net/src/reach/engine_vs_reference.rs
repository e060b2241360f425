//! The engine and the reference evaluator never disagree: over random small networks (one
//! to three VPCs, peerings active or not, internet gateways attached or not, NAT gateways
//! public or private, appliances with their check on or off, random routes including
//! blackholes, random ACLs and security groups, group references), for random sources and
//! destinations, every port the reference is asked about gets the engine's verdict, with
//! the same explanation code and component when blocked.
//!
//! Proptest draws a seed; the network is built from it with a small deterministic
//! generator, so a failure prints a seed that rebuilds the same network.

use super::classes::port_spans;
use super::engine;
use super::index::Index;
use super::model::*;
use super::random::{Rng, network, question};
use super::trace::trace_in;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn the_engine_agrees_with_the_reference_on_every_port(seed in any::<u64>(), extra in any::<u16>()) {
        let n = network(seed);
        let ix = Index::new(&n);
        let mut r = Rng(seed ^ 0x5EED);
        // The reference is asked about the first port of every span (which stands for its
        // span, see `classes`), the ports either side of a span edge, and one at random.
        let mut asked: Vec<u16> = Vec::new();
        for s in port_spans(&n) {
            asked.push(s);
            asked.push(s.saturating_sub(1));
        }
        asked.push(extra);
        for _ in 0..6 {
            let (from, to) = question(&mut r, &n);
            if from == to {
                continue;
            }
            let protocol = *r.pick(&[Protocol::Tcp, Protocol::Udp, Protocol::Icmp]);
            let verdicts = engine::ports(&ix, &from, &to, protocol);
            for &port in &asked {
                let reference = trace_in(&ix, &from, &to, protocol, port);
                let engine = verdicts.at(port);
                prop_assert_eq!(
                    reference.reachable,
                    engine.is_ok(),
                    "seed {} {:?} -> {:?} {:?}/{}: reference {:?}, engine {:?}",
                    seed, from, to, protocol, port, reference.explanations, engine
                );
                if let (Some(x), Err(stop)) = (reference.explanations.first(), engine) {
                    prop_assert_eq!(
                        (x.code, x.component.as_str(), x.direction),
                        (stop.code, stop.component.as_str(), stop.direction),
                        "seed {} {:?} -> {:?} {:?}/{}", seed, from, to, protocol, port
                    );
                }
            }
        }
    }
}

/// The generator makes the layouts the property is about, not only dead ends: some
/// questions get through, some over a NAT gateway or a peering, and some packets are
/// forwarded by an appliance.
#[test]
fn random_networks_reach_through_every_kind_of_hop() {
    use super::rules::Direction;
    use super::trace::HopKind;
    let (mut reachable, mut nat, mut peering, mut forwarded, mut blocked) = (0, 0, 0, 0, 0);
    let mut endpoint = 0;
    let mut codes = std::collections::BTreeMap::new();
    let mut appliance_reached = 0;
    for seed in 0..400u64 {
        let n = network(seed);
        let ix = Index::new(&n);
        let mut r = Rng(seed);
        for _ in 0..6 {
            let (from, to) = question(&mut r, &n);
            let v = trace_in(&ix, &from, &to, Protocol::Tcp, 443);
            // An interface other than the source that sends the packet on.
            let by_appliance = v
                .forward
                .windows(2)
                .skip(1)
                .filter(|w| {
                    w[0].kind == HopKind::Interface
                        && matches!(
                            w[1].kind,
                            HopKind::SecurityGroup {
                                direction: Direction::Egress,
                                ..
                            }
                        )
                })
                .count();
            forwarded += by_appliance;
            if !v.reachable {
                blocked += 1;
                *codes.entry(v.explanations[0].code).or_insert(0) += 1;
                continue;
            }
            reachable += 1;
            appliance_reached += usize::from(by_appliance > 0);
            for h in &v.forward {
                match h.kind {
                    HopKind::NatGateway => nat += 1,
                    HopKind::Peering => peering += 1,
                    HopKind::GatewayEndpoint => endpoint += 1,
                    _ => {}
                }
            }
        }
    }
    eprintln!(
        "{reachable} reachable ({nat} over NAT, {peering} over peering), {forwarded} forwarded by appliances ({appliance_reached} of them there and back), {blocked} blocked: {codes:?}"
    );
    assert!(reachable > 200, "{reachable} reachable");
    assert!(blocked > 200, "{blocked} blocked");
    assert!(nat > 0, "no path through a NAT gateway");
    assert!(peering > 0, "no path over a peering");
    assert!(
        endpoint > 0,
        "no path to a service through a gateway endpoint"
    );
    assert!(forwarded > 0, "no packet forwarded by an appliance");
    assert!(
        appliance_reached > 0,
        "no path through an appliance gets there"
    );
    assert!(codes.len() >= 10, "too few ways to fail: {codes:?}");
}
