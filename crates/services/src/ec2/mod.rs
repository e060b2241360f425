//! Amazon EC2: the operations kumori implements so far, one folder per family — `network/`
//! (VPCs and what is in them), `compute/` (instances and what they launch from), `analysis/`
//! (reachability and the analyzers) — with the metadata service, the operation table and
//! the typed API other services use. Every other EC2 operation is still recognised by the
//! protocol layer and answered `NotImplemented`.

pub mod analysis;
pub mod api;
pub mod authz;
pub mod common;
pub mod compute;
pub mod generic;
pub mod imds;
pub mod network;
pub mod operations;
pub mod regions;
pub mod tags;

// The families' files are reachable as `ec2::vpc`, `ec2::instances`, … wherever they live.
pub use analysis::*;
pub use compute::*;
pub use network::*;

use crate::Error;

/// The error EC2 gives for an id that names no resource, by the id's prefix.
pub fn not_found_for(id: &str) -> Error {
    match id.split_once('-').map(|(p, _)| p) {
        Some("vpc") => vpc::not_found(id),
        Some("subnet") => subnet::not_found(id),
        Some("eigw") => <eigw::EgressOnlyInternetGateway as generic::Ec2Resource>::not_found(id),
        Some("pl") => <prefix_list::ManagedPrefixList as generic::Ec2Resource>::not_found(id),
        Some("igw") => <igw::InternetGateway as generic::Ec2Resource>::not_found(id),
        Some("rtb") => <routes::RouteTable as generic::Ec2Resource>::not_found(id),
        Some("eipalloc") => <addresses::Address as generic::Ec2Resource>::not_found(id),
        Some("sg") => <sg::SecurityGroup as generic::Ec2Resource>::not_found(id),
        Some("sgr") => <sg::SgRule as generic::Ec2Resource>::not_found(id),
        Some("acl") => <nacl::NetworkAcl as generic::Ec2Resource>::not_found(id),
        Some("eni") => <eni::NetworkInterface as generic::Ec2Resource>::not_found(id),
        Some("nat") => <natgw::NatGateway as generic::Ec2Resource>::not_found(id),
        Some("pcx") => <peering::VpcPeeringConnection as generic::Ec2Resource>::not_found(id),
        Some("scr") => <reservations::SubnetCidrReservation as generic::Ec2Resource>::not_found(id),
        Some("vpce") => <endpoints::VpcEndpoint as generic::Ec2Resource>::not_found(id),
        Some("dopt") => <dhcp::DhcpOptions as generic::Ec2Resource>::not_found(id),
        Some("ami") => Error::new(
            "InvalidAMIID.NotFound",
            format!("The image id '[{id}]' does not exist"),
        ),
        Some("i") => Error::new(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{id}' does not exist"),
        ),
        Some("lt") => launch_templates::id_not_found(id),
        Some("pg") => Error::new(
            "InvalidPlacementGroup.Unknown",
            format!("The Placement Group '{id}' is unknown."),
        ),
        Some("snap") => <snapshots::Snapshot as generic::Ec2Resource>::not_found(id),
        Some("vol") => <volumes::Volume as generic::Ec2Resource>::not_found(id),
        Some("key") => <keypairs::KeyPair as generic::Ec2Resource>::not_found(id),
        _ => Error::new("InvalidID", format!("The ID '{id}' is not valid")),
    }
}

#[cfg(test)]
mod tests {
    /// Every resource kind declares its id prefix (`const ID_PREFIX`) in its own file; the
    /// table above must know each one, or CreateTags on such an id would answer `InvalidID`.
    /// Read from the sources, so a new kind that is not added here fails this test.
    #[test]
    fn every_resource_prefix_has_its_not_found_error() {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for line in text.lines() {
                        if let Some(rest) = line
                            .trim()
                            .strip_prefix("const ID_PREFIX: &'static str = \"")
                        {
                            out.push(rest.trim_end_matches("\";").to_string());
                        }
                    }
                }
            }
        }
        let mut prefixes = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ec2"),
            &mut prefixes,
        );
        assert!(prefixes.len() >= 15, "found only {prefixes:?}");
        for p in prefixes {
            let e = super::not_found_for(&format!("{p}-0123456789abcdef0"));
            assert_ne!(
                e.0.code, "InvalidID",
                "not_found_for does not know '{p}-' ids"
            );
            assert!(
                e.0.code.ends_with("NotFound")
                    || e.0.code.contains("NotFound")
                    || e.0.code.ends_with("Unknown"),
                "{p}: {}",
                e.0.code
            );
        }
    }
}
