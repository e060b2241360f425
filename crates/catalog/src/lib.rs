//! kumori's static AWS catalogues, kept as data in the repository.
//!
//! EC2's instance types: `data/instance-types.json` holds one object per type whose keys are
//! exactly the member names of botocore's EC2 `InstanceTypeInfo` shape (and its nested shapes),
//! so `DescribeInstanceTypes` returns an object unchanged and `DescribeInstanceTypeOfferings`
//! lists the names. The file is written by `scripts/gen_instance_types.py`, which records per
//! family and per size where each number comes from (the EC2 User Guide's instance-type and
//! network-interface tables, cross-checked against a `DescribeInstanceTypes` dump of the real
//! API). Edit the script and re-run it rather than editing the JSON by hand.
//!
//! The catalogue is embedded at compile time and parsed once, on first use.

use std::sync::LazyLock;

use serde_json::Value;

/// The embedded catalogue, sorted by `InstanceType` once parsed.
static INSTANCE_TYPES: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let mut types: Vec<Value> = serde_json::from_str(include_str!("../data/instance-types.json"))
        .expect("data/instance-types.json is a JSON array of objects");
    types.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    types
});

fn name_of(info: &Value) -> &str {
    info.get("InstanceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Every instance type kumori knows, as `InstanceTypeInfo` objects sorted by `InstanceType`.
pub fn instance_types() -> &'static [Value] {
    &INSTANCE_TYPES
}

/// One instance type's `InstanceTypeInfo`, or `None` for a type kumori does not know.
pub fn instance_type(name: &str) -> Option<&'static Value> {
    let types = instance_types();
    types
        .binary_search_by(|info| name_of(info).cmp(name))
        .ok()
        .map(|index| &types[index])
}

/// Limits RunInstances/CreateNetworkInterface enforce.
///
/// From the type's `NetworkInfo`: `MaximumNetworkInterfaces` (across all network cards, the
/// primary interface included), `Ipv4AddressesPerInterface` (private IPv4 addresses per
/// interface, the primary address included) and `Ipv6AddressesPerInterface`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkLimits {
    pub max_interfaces: u32,
    pub ipv4_per_interface: u32,
    pub ipv6_per_interface: u32,
}

/// The network-interface and address limits of an instance type, or `None` for an unknown type.
pub fn network_limits(name: &str) -> Option<NetworkLimits> {
    let network = instance_type(name)?.get("NetworkInfo")?;
    let number = |member: &str| {
        network
            .get(member)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    Some(NetworkLimits {
        max_interfaces: number("MaximumNetworkInterfaces")?,
        ipv4_per_interface: number("Ipv4AddressesPerInterface")?,
        ipv6_per_interface: number("Ipv6AddressesPerInterface").unwrap_or(0),
    })
}

/// The architectures an instance type runs (`ProcessorInfo.SupportedArchitectures`, e.g.
/// `["x86_64"]`, `["i386", "x86_64"]`, `["arm64"]`); empty for an unknown type.
pub fn architectures(name: &str) -> Vec<&'static str> {
    instance_type(name)
        .and_then(|info| {
            info.get("ProcessorInfo")?
                .get("SupportedArchitectures")?
                .as_array()
        })
        .map(|archs| archs.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The public images of every region, as templates: `data/images.json` holds each image's
/// name, owner and what differs between images; [`public_images`] makes them per region.
static IMAGE_TEMPLATES: LazyLock<Vec<Value>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../data/images.json"))
        .expect("data/images.json is a JSON array of objects")
});

/// A stable AWS-style id for a thing of `region` named `name`: the prefix and 17 lowercase hex
/// digits (two FNV-1a hashes). The same in every build and process, different per region, as
/// AWS's public AMI ids are.
pub fn stable_id(prefix: &str, region: &str, name: &str) -> String {
    let fnv = |seed: u64| {
        let mut h = seed;
        for b in region.bytes().chain([0]).chain(name.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let hi = fnv(0xcbf2_9ce4_8422_2325) & 0xf;
    let lo = fnv(0x8422_2325_cbf2_9ce4);
    format!("{prefix}-{hi:x}{lo:016x}")
}

/// The public images (AMIs) of `region` as EC2's `Image` shape, in name order: Amazon Linux
/// 2023 and 2, Ubuntu LTS, Debian, RHEL, Windows Server (`scripts/gen_images.py` writes them,
/// with its sources), x86_64 and arm64, EBS-backed with their
/// root snapshots, and one old paravirtual image.
pub fn public_images(region: &str) -> Vec<Value> {
    public_images_of(region).as_ref().clone()
}

/// The public images of `region`, made once per region and shared: a launch looks its image
/// up inside its write transaction, so the lookup must not rebuild the catalogue each time.
pub fn public_images_of(region: &str) -> std::sync::Arc<Vec<Value>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    static MADE: LazyLock<Mutex<HashMap<String, Arc<Vec<Value>>>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    made.entry(region.to_string())
        .or_insert_with(|| Arc::new(make_public_images(region)))
        .clone()
}

/// The public image `id` of `region`, if there is one.
pub fn public_image(region: &str, id: &str) -> Option<Value> {
    public_images_of(region)
        .iter()
        .find(|i| i["ImageId"] == id)
        .cloned()
}

fn make_public_images(region: &str) -> Vec<Value> {
    let mut images: Vec<Value> = IMAGE_TEMPLATES
        .iter()
        .map(|t| {
            let name = t["Name"].as_str().unwrap_or_default();
            let owner = t["OwnerId"].as_str().unwrap_or_default();
            let hvm = t["VirtualizationType"] == "hvm";
            let location_owner = t["ImageOwnerAlias"].as_str().unwrap_or(owner);
            let mut image = serde_json::json!({
                "ImageId": stable_id("ami", region, name),
                "ImageLocation": format!("{location_owner}/{name}"),
                "State": "available",
                "Public": true,
                "ImageType": "machine",
                "RootDeviceType": "ebs",
                "Hypervisor": "xen",
                "EnaSupport": hvm,
                "BlockDeviceMappings": [{
                    "DeviceName": t["RootDeviceName"],
                    "Ebs": {
                        "DeleteOnTermination": true,
                        "SnapshotId": stable_id("snap", region, name),
                        "VolumeSize": t["VolumeSize"],
                        "VolumeType": t["VolumeType"],
                        "Encrypted": false,
                    },
                }],
            });
            if hvm {
                image["SriovNetSupport"] = "simple".into();
            } else {
                image["KernelId"] = stable_id("aki", region, name).into();
            }
            for (k, v) in t.as_object().into_iter().flatten() {
                if !matches!(k.as_str(), "_comment" | "VolumeSize" | "VolumeType") && !v.is_null() {
                    image[k.as_str()] = v.clone();
                }
            }
            image
        })
        .collect();
    images.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    images
}

#[cfg(test)]
mod tests;
