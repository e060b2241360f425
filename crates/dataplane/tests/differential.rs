//! The kernel agrees with the reachability engine. Random networks from `kumori-net`'s
//! generator (the one the engine is checked against the reference evaluator with) are built
//! as real namespaces; for sampled questions, a real TCP connection, UDP echo or ping is
//! made and its outcome compared with the engine's verdict for that port.
//!
//! Needs root, `ip` and `nft`. Without them the test says so and passes, unless
//! `KUMORI_REQUIRE_DATAPLANE=1` (set by `scripts/test` when it runs as root), where it fails.

use kumori_dataplane::kernel::namespaces_with;
use kumori_dataplane::plan::{Names, Options};
use kumori_dataplane::probe::{probe, probe_for};
use kumori_dataplane::{Reconciler, check_capable, plan};
use kumori_net::reach::engine;
use kumori_net::reach::index::Index;
use kumori_net::reach::model::{Network, Protocol, Target};
use kumori_net::reach::random::{Rng, network, question};
use kumori_net::reach::trace::Endpoint;
use std::net::Ipv4Addr;
use std::time::Duration;

const PREFIX: &str = "kdt";
/// Questions drawn per network, and probes sent per verdict (reachable or not) at most.
const DRAWS: usize = 200;
const PER_VERDICT: usize = 6;

fn capable() -> bool {
    match check_capable() {
        Ok(()) => true,
        Err(why) => {
            if std::env::var("KUMORI_REQUIRE_DATAPLANE").as_deref() == Ok("1") {
                panic!("KUMORI_REQUIRE_DATAPLANE=1 but: {why}");
            }
            eprintln!("SKIPPED: {why}");
            false
        }
    }
}

/// Removes the test's namespaces however the test ends.
struct Teardown(Reconciler);

impl Drop for Teardown {
    fn drop(&mut self) {
        self.0.down();
    }
}

/// Routes AWS would refuse at CreateRoute (a NAT gateway or interface of another VPC), and
/// gateway endpoint routes to blocks that are not a service's prefix list: the generator
/// makes them to exercise the engine's explanations, but no real VPC holds them.
fn as_aws_allows(mut n: Network) -> Network {
    let nat_vpc: std::collections::BTreeMap<String, String> = n
        .nat_gateways
        .values()
        .map(|g| (g.id.clone(), n.subnets[&g.subnet_id].vpc_id.clone()))
        .collect();
    let eni_vpc: std::collections::BTreeMap<String, String> = n
        .interfaces
        .values()
        .map(|e| (e.id.clone(), e.vpc_id.clone()))
        .collect();
    for t in n.route_tables.values_mut() {
        let vpc = t.vpc_id.clone();
        t.routes.retain(|r| match &r.target {
            Target::NatGateway(g) => nat_vpc.get(g).is_none_or(|v| *v == vpc),
            Target::Interface(e) => eni_vpc.get(e).is_none_or(|v| *v == vpc),
            Target::GatewayEndpoint(_) => false,
            _ => true,
        });
    }
    n
}

#[test]
fn the_kernel_agrees_with_the_engine_on_random_networks() {
    if !capable() {
        return;
    }
    let networks: u64 = std::env::var("KUMORI_DIFFERENTIAL_NETWORKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let hosts = vec![
        Ipv4Addr::new(203, 0, 113, 5),
        Ipv4Addr::new(203, 0, 113, 77),
        Ipv4Addr::new(8, 8, 8, 8),
        // A public address no interface holds: the engine lets packets to it leave for
        // the internet, so something there must answer.
        Ipv4Addr::new(198, 51, 100, 250),
    ];
    let opts = Options {
        prefix: PREFIX.into(),
        internet_hosts: hosts.clone(),
        host_link: false,
    };
    let names = Names(PREFIX);
    let mut t = Teardown(Reconciler::new(PREFIX));
    let (mut probes, mut reached) = (0, 0);
    let mut disagreements = Vec::new();
    let first: u64 = std::env::var("KUMORI_DIFFERENTIAL_FIRST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for seed in first..first + networks {
        let n = as_aws_allows(network(seed));
        let report = t.0.apply(&plan(&n, &opts));
        assert!(
            report.errors.is_empty(),
            "seed {seed}: {:#?}",
            report.errors
        );
        let ix = Index::new(&n);
        let mut r = Rng(seed ^ 0xD1FF);
        // Questions drawn at random, kept so that the engine's yeses and noes are both well
        // asked (most random questions are noes): up to PER_VERDICT of each.
        let (mut yes, mut no) = (0, 0);
        for _ in 0..DRAWS {
            if yes >= PER_VERDICT && no >= PER_VERDICT {
                break;
            }
            let (from, to) = question(&mut r, &n);
            // The engine answers for paths through AWS: not from the internet to itself.
            let outside = |e: &Endpoint| matches!(e, Endpoint::Address(ip) if hosts.contains(ip));
            if from == to || (outside(&from) && outside(&to)) {
                continue;
            }
            let protocol = *r.pick(&[Protocol::Tcp, Protocol::Tcp, Protocol::Udp, Protocol::Icmp]);
            let port = *r.pick(&[22u16, 80, 443, 3306, 25, 1023, 1024, 8080]);
            let Some(p) = probe_for(&n, &names, &hosts, &from, &to, protocol, port) else {
                continue;
            };
            // A packet to the sender's own address never leaves its namespace.
            if p.to_ns.as_deref() == Some(p.from_ns.as_str()) {
                continue;
            }
            let verdicts = engine::ports(&ix, &from, &to, protocol);
            let verdict = verdicts.at(port);
            let count = if verdict.is_ok() { &mut yes } else { &mut no };
            if *count >= PER_VERDICT {
                continue;
            }
            *count += 1;
            // A path through the fabric answers within milliseconds; a blocked one never
            // does. A busy machine gets longer to show a path the engine expects.
            let wait = Duration::from_millis(if verdict.is_ok() { 3000 } else { 300 });
            let got = probe(&p, wait).expect("probe");
            probes += 1;
            reached += usize::from(got.reached);
            if got.reached != verdict.is_ok() {
                disagreements.push(format!(
                    "seed {seed}: {from:?} -> {to:?} {protocol:?}/{port}: engine {:?}, kernel {} ({})",
                    verdict.err().map(|s| (s.code, s.component.clone())),
                    got.reached,
                    got.detail
                ));
            }
        }
    }
    drop(t);
    assert!(
        namespaces_with(PREFIX).is_empty(),
        "teardown left {:?}",
        namespaces_with(PREFIX)
    );
    eprintln!(
        "{networks} networks, {probes} probes ({reached} reached), {} disagreements",
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {probes} probes disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    assert!(
        reached > 0 && reached < probes,
        "{reached} of {probes} reached"
    );
}
