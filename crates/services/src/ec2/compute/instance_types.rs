//! Instance types: DescribeInstanceTypes and DescribeInstanceTypeOfferings, over the catalogue
//! kept as data in `kumori-catalog` (real specifications, one `InstanceTypeInfo` object per
//! type, answered unchanged). Every type kumori knows is offered in every zone of every region
//! it serves.

use super::common::{
    Filter, Filterable, check_filters, dry_run, filter_names, json_values, matches, paginate,
};
use super::regions::zones;
use crate::{Ctx, Error, Result, input};
use kumori_protocol::{AwsError, Output};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A catalogue entry as the filters see it.
struct TypeRow(&'static Value);

/// Each documented filter and where in `InstanceTypeInfo` its values live (a list on the way
/// gives one value per element).
const FILTER_PATHS: &[(&str, &[&str])] = &[
    ("auto-recovery-supported", &["AutoRecoverySupported"]),
    ("bare-metal", &["BareMetal"]),
    (
        "burstable-performance-supported",
        &["BurstablePerformanceSupported"],
    ),
    ("current-generation", &["CurrentGeneration"]),
    ("dedicated-hosts-supported", &["DedicatedHostsSupported"]),
    (
        "ebs-info.ebs-optimized-info.baseline-bandwidth-in-mbps",
        &["EbsInfo", "EbsOptimizedInfo", "BaselineBandwidthInMbps"],
    ),
    (
        "ebs-info.ebs-optimized-info.baseline-iops",
        &["EbsInfo", "EbsOptimizedInfo", "BaselineIops"],
    ),
    (
        "ebs-info.ebs-optimized-info.baseline-throughput-in-mbps",
        &["EbsInfo", "EbsOptimizedInfo", "BaselineThroughputInMBps"],
    ),
    (
        "ebs-info.ebs-optimized-info.maximum-bandwidth-in-mbps",
        &["EbsInfo", "EbsOptimizedInfo", "MaximumBandwidthInMbps"],
    ),
    (
        "ebs-info.ebs-optimized-info.maximum-iops",
        &["EbsInfo", "EbsOptimizedInfo", "MaximumIops"],
    ),
    (
        "ebs-info.ebs-optimized-info.maximum-throughput-in-mbps",
        &["EbsInfo", "EbsOptimizedInfo", "MaximumThroughputInMBps"],
    ),
    (
        "ebs-info.ebs-optimized-support",
        &["EbsInfo", "EbsOptimizedSupport"],
    ),
    (
        "ebs-info.encryption-support",
        &["EbsInfo", "EncryptionSupport"],
    ),
    ("ebs-info.nvme-support", &["EbsInfo", "NvmeSupport"]),
    ("free-tier-eligible", &["FreeTierEligible"]),
    ("hibernation-supported", &["HibernationSupported"]),
    ("hypervisor", &["Hypervisor"]),
    (
        "instance-storage-info.disk.count",
        &["InstanceStorageInfo", "Disks", "Count"],
    ),
    (
        "instance-storage-info.disk.size-in-gb",
        &["InstanceStorageInfo", "Disks", "SizeInGB"],
    ),
    (
        "instance-storage-info.disk.type",
        &["InstanceStorageInfo", "Disks", "Type"],
    ),
    (
        "instance-storage-info.encryption-support",
        &["InstanceStorageInfo", "EncryptionSupport"],
    ),
    (
        "instance-storage-info.nvme-support",
        &["InstanceStorageInfo", "NvmeSupport"],
    ),
    (
        "instance-storage-info.total-size-in-gb",
        &["InstanceStorageInfo", "TotalSizeInGB"],
    ),
    ("instance-storage-supported", &["InstanceStorageSupported"]),
    ("instance-type", &["InstanceType"]),
    ("memory-info.size-in-mib", &["MemoryInfo", "SizeInMiB"]),
    (
        "network-info.bandwidth-weightings",
        &["NetworkInfo", "BandwidthWeightings"],
    ),
    (
        "network-info.efa-info.maximum-efa-interfaces",
        &["NetworkInfo", "EfaInfo", "MaximumEfaInterfaces"],
    ),
    (
        "network-info.efa-supported",
        &["NetworkInfo", "EfaSupported"],
    ),
    ("network-info.ena-support", &["NetworkInfo", "EnaSupport"]),
    (
        "network-info.encryption-in-transit-supported",
        &["NetworkInfo", "EncryptionInTransitSupported"],
    ),
    (
        "network-info.ipv4-addresses-per-interface",
        &["NetworkInfo", "Ipv4AddressesPerInterface"],
    ),
    (
        "network-info.ipv6-addresses-per-interface",
        &["NetworkInfo", "Ipv6AddressesPerInterface"],
    ),
    (
        "network-info.ipv6-supported",
        &["NetworkInfo", "Ipv6Supported"],
    ),
    (
        "network-info.maximum-network-cards",
        &["NetworkInfo", "MaximumNetworkCards"],
    ),
    (
        "network-info.maximum-network-interfaces",
        &["NetworkInfo", "MaximumNetworkInterfaces"],
    ),
    (
        "network-info.network-performance",
        &["NetworkInfo", "NetworkPerformance"],
    ),
    ("nitro-enclaves-support", &["NitroEnclavesSupport"]),
    (
        "nitro-tpm-info.supported-versions",
        &["NitroTpmInfo", "SupportedVersions"],
    ),
    ("nitro-tpm-support", &["NitroTpmSupport"]),
    (
        "processor-info.supported-architecture",
        &["ProcessorInfo", "SupportedArchitectures"],
    ),
    (
        "processor-info.sustained-clock-speed-in-ghz",
        &["ProcessorInfo", "SustainedClockSpeedInGhz"],
    ),
    (
        "processor-info.manufacturer",
        &["ProcessorInfo", "Manufacturer"],
    ),
    ("supported-boot-mode", &["SupportedBootModes"]),
    ("supported-root-device-type", &["SupportedRootDeviceTypes"]),
    ("supported-usage-class", &["SupportedUsageClasses"]),
    (
        "supported-virtualization-type",
        &["SupportedVirtualizationTypes"],
    ),
    ("vcpu-info.default-cores", &["VCpuInfo", "DefaultCores"]),
    (
        "vcpu-info.default-threads-per-core",
        &["VCpuInfo", "DefaultThreadsPerCore"],
    ),
    ("vcpu-info.default-vcpus", &["VCpuInfo", "DefaultVCpus"]),
    ("vcpu-info.valid-cores", &["VCpuInfo", "ValidCores"]),
    (
        "vcpu-info.valid-threads-per-core",
        &["VCpuInfo", "ValidThreadsPerCore"],
    ),
];

const FILTER_NAMES: &[&str] = filter_names!(FILTER_PATHS);

impl Filterable for TypeRow {
    const FILTERS: &'static [&'static str] = FILTER_NAMES;
    fn field(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, path)) = FILTER_PATHS.iter().find(|(n, _)| *n == name) {
            json_values(self.0, path, &mut out);
        }
        out
    }
}

fn name_of(v: &Value) -> &str {
    v["InstanceType"].as_str().unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    #[serde(default)]
    instance_types: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// A page of catalogue entries, written out as they are.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TypesPage {
    instance_types: Vec<&'static Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// EC2 answers at most 100 types a page.
const PAGE: i64 = 100;

/// Not `generic::describe`: instance types are AWS's catalogue, not stored resources: asked for by
/// name (one `InvalidInstanceType` listing every unknown one), 100 a page unless MaxResults says,
/// written straight from the catalogue.
pub async fn describe_instance_types(_ctx: &Ctx<'_>, raw: &Value) -> Result<Output> {
    let req: DescribeRequest = input(raw)?;
    check_filters::<TypeRow>(&req.filters)?;
    let missing: Vec<&str> = req
        .instance_types
        .iter()
        .map(String::as_str)
        .filter(|t| kumori_catalog::instance_type(t).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(Error::new(
            "InvalidInstanceType",
            format!(
                "The following supplied instance types do not exist: [{}]",
                missing.join(", ")
            ),
        ));
    }
    dry_run(req.dry_run)?;
    let selected: Vec<&'static Value> = kumori_catalog::instance_types()
        .iter()
        .filter(|v| {
            req.instance_types.is_empty() || req.instance_types.iter().any(|t| t == name_of(v))
        })
        .filter(|v| matches(&TypeRow(v), &[], &req.filters))
        .collect();
    let (instance_types, next_token) = paginate(
        selected,
        |v| name_of(v).to_string(),
        Some(req.max_results.unwrap_or(PAGE)),
        req.next_token.as_deref(),
    )?;
    Ok(Output::Typed(Box::new(TypesPage {
        instance_types,
        next_token,
    })))
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
struct Offering {
    instance_type: &'static str,
    location_type: &'static str,
    location: String,
}

impl Filterable for Offering {
    const FILTERS: &'static [&'static str] = &["instance-type", "location"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "instance-type" => vec![self.instance_type.to_string()],
            "location" => vec![self.location.clone()],
            _ => vec![],
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OfferingsRequest {
    location_type: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OfferingsPage {
    instance_type_offerings: Vec<Offering>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// Not `generic::describe`: offerings are the catalogue crossed with the region or its zones
/// (LocationType), not stored resources; no ids and no tags.
pub async fn describe_instance_type_offerings(ctx: &Ctx<'_>, raw: &Value) -> Result<Output> {
    let req: OfferingsRequest = input(raw)?;
    check_filters::<Offering>(&req.filters)?;
    dry_run(req.dry_run)?;
    let location_type: &'static str = match req.location_type.as_deref() {
        None | Some("region") => "region",
        Some("availability-zone") => "availability-zone",
        Some("availability-zone-id") => "availability-zone-id",
        Some(other) => {
            return Err(Error(AwsError::not_implemented(
                "ec2",
                &format!("DescribeInstanceTypeOfferings with LocationType {other}"),
            )));
        }
    };
    // Each location with the zone id whose offerings it has (none for the region).
    let locations: Vec<(String, Option<String>)> = match location_type {
        "region" => vec![(ctx.region.to_string(), None)],
        "availability-zone" => zones(ctx.region)
            .into_iter()
            .map(|z| (z.name, Some(z.id)))
            .collect(),
        _ => zones(ctx.region)
            .into_iter()
            .map(|z| (z.id.clone(), Some(z.id)))
            .collect(),
    };
    let mut all: Vec<Offering> = Vec::new();
    for (location, zone_id) in &locations {
        for v in kumori_catalog::instance_types() {
            let instance_type = name_of(v);
            if zone_id
                .as_deref()
                .is_some_and(|z| !super::regions::zone_offers(z, instance_type))
            {
                continue;
            }
            all.push(Offering {
                instance_type,
                location_type,
                location: location.clone(),
            });
        }
    }
    let selected: Vec<Offering> = all
        .into_iter()
        .filter(|o| matches(o, &[], &req.filters))
        .collect();
    let (instance_type_offerings, next_token) = paginate(
        selected,
        |o| format!("{}/{}", o.location, o.instance_type),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    Ok(Output::Typed(Box::new(OfferingsPage {
        instance_type_offerings,
        next_token,
    })))
}
