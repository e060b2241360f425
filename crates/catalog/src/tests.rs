use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::*;

/// Every family in the catalogue with every size AWS sells, bare metal included.
const FAMILIES: &[(&str, &[&str])] = &[
    // EC2's default type when RunInstances names none, a previous generation.
    ("m1", &["small"]),
    (
        "t2",
        &[
            "nano", "micro", "small", "medium", "large", "xlarge", "2xlarge",
        ],
    ),
    (
        "t3",
        &[
            "nano", "micro", "small", "medium", "large", "xlarge", "2xlarge",
        ],
    ),
    (
        "t3a",
        &[
            "nano", "micro", "small", "medium", "large", "xlarge", "2xlarge",
        ],
    ),
    (
        "t4g",
        &[
            "nano", "micro", "small", "medium", "large", "xlarge", "2xlarge",
        ],
    ),
    (
        "m5",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
            "metal",
        ],
    ),
    (
        "m5a",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
        ],
    ),
    (
        "m5d",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
            "metal",
        ],
    ),
    (
        "m5n",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
            "metal",
        ],
    ),
    (
        "m6i",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
            "32xlarge", "metal",
        ],
    ),
    (
        "m7g",
        &[
            "medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge",
            "metal",
        ],
    ),
    (
        "c5",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "12xlarge", "18xlarge", "24xlarge",
            "metal",
        ],
    ),
    (
        "c5n",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "18xlarge", "metal",
        ],
    ),
    (
        "c6i",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
            "32xlarge", "metal",
        ],
    ),
    (
        "r5",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
            "metal",
        ],
    ),
    (
        "r6i",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
            "32xlarge", "metal",
        ],
    ),
];

fn get<'a>(info: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(info, |value, member| &value[member])
}

fn info(name: &str) -> &'static Value {
    instance_type(name).unwrap_or_else(|| panic!("{name} is in the catalogue"))
}

#[test]
fn every_family_has_exactly_its_sizes() {
    let mut expected = BTreeSet::new();
    for (family, sizes) in FAMILIES {
        for size in *sizes {
            let name = format!("{family}.{size}");
            assert!(instance_type(&name).is_some(), "{name} is missing");
            expected.insert(name);
        }
    }
    let actual: BTreeSet<String> = instance_types()
        .iter()
        .map(|t| name_of(t).to_string())
        .collect();
    assert_eq!(
        actual, expected,
        "the catalogue holds exactly the listed families and sizes"
    );
}

#[test]
fn names_are_unique_and_sorted() {
    let names: Vec<&str> = instance_types().iter().map(name_of).collect();
    assert!(names.iter().all(|n| !n.is_empty()));
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "sorted, no duplicates: {names:?}"
    );
    assert!(instance_type("m5.large").is_some());
    assert!(instance_type("m5.huge").is_none());
    assert!(instance_type("").is_none());
}

/// Checks `value` against botocore shape `shape`: every key a member, every scalar of the
/// member's type, every string of an enum one of its values. Returns the problems found.
fn check_shape(
    value: &Value,
    shape: &str,
    shapes: &Map<String, Value>,
    path: &str,
    problems: &mut Vec<String>,
) {
    let def = &shapes[shape];
    match def["type"].as_str().unwrap_or_default() {
        "structure" => {
            let Some(object) = value.as_object() else {
                problems.push(format!("{path}: expected an object for {shape}"));
                return;
            };
            for (key, member_value) in object {
                match def["members"].get(key) {
                    Some(member) => {
                        let member_shape = member["shape"].as_str().unwrap_or_default();
                        check_shape(
                            member_value,
                            member_shape,
                            shapes,
                            &format!("{path}.{key}"),
                            problems,
                        );
                    }
                    None => problems.push(format!("{path}: {key} is not a member of {shape}")),
                }
            }
        }
        "list" => {
            let Some(items) = value.as_array() else {
                problems.push(format!("{path}: expected a list for {shape}"));
                return;
            };
            let member_shape = def["member"]["shape"].as_str().unwrap_or_default();
            for (i, item) in items.iter().enumerate() {
                check_shape(
                    item,
                    member_shape,
                    shapes,
                    &format!("{path}[{i}]"),
                    problems,
                );
            }
        }
        "string" => match value.as_str() {
            None => problems.push(format!("{path}: expected a string for {shape}")),
            Some(s) => {
                if let Some(values) = def.get("enum").and_then(Value::as_array)
                    && !values.iter().any(|v| v == s)
                {
                    problems.push(format!("{path}: {s:?} is not a value of enum {shape}"));
                }
            }
        },
        "boolean" if !value.is_boolean() => problems.push(format!("{path}: expected a boolean")),
        "integer" | "long" if !(value.is_u64() || value.is_i64()) => {
            problems.push(format!("{path}: expected an integer"))
        }
        "double" | "float" if !value.is_number() => {
            problems.push(format!("{path}: expected a number"))
        }
        "boolean" | "integer" | "long" | "double" | "float" => {}
        other => problems.push(format!("{path}: unexpected shape type {other} ({shape})")),
    }
}

#[test]
fn every_key_is_a_member_of_instance_type_info() {
    let model_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/ec2.json");
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(model_path).expect("read models/ec2.json"))
            .expect("models/ec2.json is JSON");
    let shapes = model["shapes"].as_object().expect("the model has shapes");
    let mut problems = Vec::new();
    for info in instance_types() {
        check_shape(
            info,
            "InstanceTypeInfo",
            shapes,
            name_of(info),
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_type_fills_the_core_members() {
    const REQUIRED: &[&str] = &[
        "InstanceType",
        "CurrentGeneration",
        "FreeTierEligible",
        "SupportedUsageClasses",
        "SupportedRootDeviceTypes",
        "SupportedVirtualizationTypes",
        "BareMetal",
        "ProcessorInfo.SupportedArchitectures",
        "ProcessorInfo.Manufacturer",
        "VCpuInfo.DefaultVCpus",
        "VCpuInfo.DefaultCores",
        "VCpuInfo.DefaultThreadsPerCore",
        "MemoryInfo.SizeInMiB",
        "InstanceStorageSupported",
        "EbsInfo.EbsOptimizedSupport",
        "EbsInfo.EncryptionSupport",
        "EbsInfo.NvmeSupport",
        "NetworkInfo.NetworkPerformance",
        "NetworkInfo.MaximumNetworkInterfaces",
        "NetworkInfo.Ipv4AddressesPerInterface",
        "NetworkInfo.Ipv6AddressesPerInterface",
        "NetworkInfo.Ipv6Supported",
        "NetworkInfo.EnaSupport",
        "NetworkInfo.EfaSupported",
        "NetworkInfo.MaximumNetworkCards",
        "NetworkInfo.DefaultNetworkCardIndex",
        "NetworkInfo.NetworkCards",
        "NetworkInfo.EncryptionInTransitSupported",
        "PlacementGroupInfo.SupportedStrategies",
        "HibernationSupported",
        "BurstablePerformanceSupported",
        "DedicatedHostsSupported",
        "AutoRecoverySupported",
        "SupportedBootModes",
        "NitroEnclavesSupport",
        "NitroTpmSupport",
    ];
    for t in instance_types() {
        let name = name_of(t);
        for path in REQUIRED {
            assert!(!get(t, path).is_null(), "{name}: {path} is missing");
        }
        // EC2 gives no sustained clock speed for previous generations (m1.small).
        if t["CurrentGeneration"] == true {
            let path = "ProcessorInfo.SustainedClockSpeedInGhz";
            assert!(!get(t, path).is_null(), "{name}: {path} is missing");
        }
        let metal = t["BareMetal"].as_bool().unwrap();
        assert_eq!(
            t.get("Hypervisor").is_none(),
            metal,
            "{name}: Hypervisor iff not bare metal"
        );
        let storage = t["InstanceStorageSupported"].as_bool().unwrap();
        assert_eq!(t.get("InstanceStorageInfo").is_some(), storage, "{name}");
        let v = &t["VCpuInfo"];
        assert_eq!(
            v["DefaultCores"].as_u64().unwrap() * v["DefaultThreadsPerCore"].as_u64().unwrap(),
            v["DefaultVCpus"].as_u64().unwrap(),
            "{name}: cores x threads = vCPUs"
        );
        let burstable = ["t2.", "t3.", "t3a.", "t4g."]
            .iter()
            .any(|p| name.starts_with(p));
        assert_eq!(
            t["BurstablePerformanceSupported"].as_bool(),
            Some(burstable),
            "{name}"
        );
        let n = &t["NetworkInfo"];
        assert_eq!(
            n["NetworkCards"][0]["MaximumNetworkInterfaces"], n["MaximumNetworkInterfaces"],
            "{name}"
        );
        let arm = name.starts_with("m7g.") || name.starts_with("t4g.");
        assert_eq!(architectures(name) == ["arm64"], arm, "{name}");
        let expected_boot: &[&str] = if arm {
            &["uefi"]
        } else if name.starts_with("t2.") || name.starts_with("m1.") || metal {
            &["legacy-bios"]
        } else {
            &["legacy-bios", "uefi"]
        };
        assert_eq!(
            t["SupportedBootModes"],
            serde_json::json!(expected_boot),
            "{name}"
        );
    }
}

#[test]
fn network_limits_come_from_the_catalogue() {
    let limits = |max_interfaces, ipv4_per_interface, ipv6_per_interface| NetworkLimits {
        max_interfaces,
        ipv4_per_interface,
        ipv6_per_interface,
    };
    // EC2 User Guide, "IP addresses per network interface per instance type".
    assert_eq!(network_limits("t2.nano"), Some(limits(2, 2, 2)));
    assert_eq!(network_limits("t2.micro"), Some(limits(2, 2, 2)));
    assert_eq!(network_limits("t2.2xlarge"), Some(limits(3, 15, 15)));
    assert_eq!(network_limits("t3.small"), Some(limits(3, 4, 4)));
    assert_eq!(network_limits("t3a.small"), Some(limits(2, 4, 4)));
    assert_eq!(network_limits("m5.large"), Some(limits(3, 10, 10)));
    assert_eq!(network_limits("m5.4xlarge"), Some(limits(8, 30, 30)));
    assert_eq!(network_limits("m5.16xlarge"), Some(limits(15, 50, 50)));
    assert_eq!(network_limits("c5.metal"), Some(limits(15, 50, 50)));
    assert_eq!(network_limits("c5n.18xlarge"), Some(limits(15, 50, 50)));
    assert_eq!(network_limits("r6i.large"), Some(limits(3, 10, 10)));
    // aws/amazon-vpc-cni-k8s vpc_ip_resource_limit.go (generated from DescribeInstanceTypes).
    assert_eq!(network_limits("m7g.medium"), Some(limits(2, 4, 4)));
    assert_eq!(network_limits("m7g.16xlarge"), Some(limits(15, 50, 50)));
    assert_eq!(network_limits("x9.huge"), None);
}

#[test]
fn architectures_of_known_and_unknown_types() {
    assert_eq!(architectures("t2.nano"), ["i386", "x86_64"]);
    assert_eq!(architectures("t2.medium"), ["i386", "x86_64"]);
    assert_eq!(architectures("t2.large"), ["x86_64"]);
    assert_eq!(architectures("m5.large"), ["x86_64"]);
    assert_eq!(architectures("t4g.nano"), ["arm64"]);
    assert_eq!(architectures("m7g.metal"), ["arm64"]);
    assert!(architectures("nope.large").is_empty());
}

#[test]
fn well_known_values() {
    let check = |name: &str, vcpus: u64, mib: u64, perf: &str| {
        let t = info(name);
        assert_eq!(
            t["VCpuInfo"]["DefaultVCpus"].as_u64(),
            Some(vcpus),
            "{name} vCPUs"
        );
        assert_eq!(
            t["MemoryInfo"]["SizeInMiB"].as_u64(),
            Some(mib),
            "{name} memory"
        );
        assert_eq!(
            t["NetworkInfo"]["NetworkPerformance"].as_str(),
            Some(perf),
            "{name} network"
        );
    };
    // EC2 User Guide, general purpose instances: hardware and network performance tables.
    check("t2.micro", 1, 1024, "Low to Moderate");
    check("t2.xlarge", 4, 16384, "Moderate");
    check("t3.micro", 2, 1024, "Up to 5 Gigabit");
    check("t3a.2xlarge", 8, 32768, "Up to 5 Gigabit");
    check("m5.large", 2, 8192, "Up to 10 Gigabit");
    check("m5.24xlarge", 96, 393216, "25 Gigabit");
    check("m5a.24xlarge", 96, 393216, "20 Gigabit");
    check("m5d.metal", 96, 393216, "25 Gigabit");
    // DescribeInstanceTypes (cross-checked against the families' product pages).
    check("t4g.nano", 2, 512, "Up to 5 Gigabit");
    check("c5n.large", 2, 5376, "Up to 25 Gigabit");
    check("c5n.18xlarge", 72, 196608, "100 Gigabit");
    check("r5.24xlarge", 96, 786432, "25 Gigabit");
    check("m6i.32xlarge", 128, 524288, "50 Gigabit");
    check("r6i.metal", 128, 1048576, "50 Gigabit");
    check("m7g.16xlarge", 64, 262144, "30 Gigabit");
    check("m5n.24xlarge", 96, 393216, "100 Gigabit");

    let m5d = info("m5d.large");
    assert_eq!(m5d["InstanceStorageSupported"], true);
    assert_eq!(
        m5d["InstanceStorageInfo"],
        serde_json::json!({
            "TotalSizeInGB": 75,
            "Disks": [{"SizeInGB": 75, "Count": 1, "Type": "ssd"}],
            "NvmeSupport": "required",
            "EncryptionSupport": "required",
        })
    );
    assert_eq!(info("m5.large")["InstanceStorageSupported"], false);
    assert!(info("m5.large").get("InstanceStorageInfo").is_none());

    let t2 = info("t2.micro");
    assert_eq!(t2["Hypervisor"], "xen");
    assert_eq!(t2["BurstablePerformanceSupported"], true);
    assert_eq!(t2["FreeTierEligible"], true);
    assert_eq!(t2["NetworkInfo"]["EnaSupport"], "unsupported");
    assert_eq!(t2["EbsInfo"]["NvmeSupport"], "unsupported");
    assert_eq!(info("t3.micro")["FreeTierEligible"], true);
    assert_eq!(info("t3.small")["FreeTierEligible"], false);
    let free: Vec<&str> = instance_types()
        .iter()
        .filter(|t| t["FreeTierEligible"] == true)
        .map(name_of)
        .collect();
    assert_eq!(free, ["t2.micro", "t3.micro"]);

    let metal = info("c5.metal");
    assert_eq!(metal["BareMetal"], true);
    assert!(metal.get("Hypervisor").is_none());
    assert_eq!(info("c5.large")["Hypervisor"], "nitro");
    assert_eq!(info("m5.large")["BurstablePerformanceSupported"], false);
    assert_eq!(info("c5n.18xlarge")["NetworkInfo"]["EfaSupported"], true);
    assert_eq!(info("m7g.large")["ProcessorInfo"]["Manufacturer"], "AWS");
    assert_eq!(info("m5a.large")["ProcessorInfo"]["Manufacturer"], "AMD");

    let ebs = &info("m5.large")["EbsInfo"];
    assert_eq!(ebs["EbsOptimizedSupport"], "default");
    assert_eq!(ebs["EbsOptimizedInfo"]["BaselineBandwidthInMbps"], 650);
    assert_eq!(ebs["EbsOptimizedInfo"]["MaximumBandwidthInMbps"], 4750);
}

#[test]
fn the_catalogue_is_parsed_once() {
    assert!(std::ptr::eq(instance_types(), instance_types()));
    assert!(std::ptr::eq(info("m5.large"), info("m5.large")));
}

#[test]
fn public_images_fit_the_image_shape_and_have_stable_regional_ids() {
    let model_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/ec2.json");
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(model_path).expect("read models/ec2.json"))
            .expect("models/ec2.json is JSON");
    let shapes = model["shapes"].as_object().expect("the model has shapes");
    let east = public_images("us-east-1");
    let mut problems = Vec::new();
    for image in &east {
        let name = image["Name"].as_str().unwrap().to_string();
        check_shape(image, "Image", shapes, &name, &mut problems);
    }
    // The model's enum says `Windows`; the API answers `windows`, as AWS's documentation of
    // `Image.Platform` says ("windows for Windows AMIs; otherwise blank").
    problems
        .retain(|p| !p.ends_with(r#"Platform: "windows" is not a value of enum PlatformValues"#));
    assert!(problems.is_empty(), "{problems:#?}");

    // Ids are AWS-shaped, the same on every call, and differ between regions.
    let again = public_images("us-east-1");
    let tokyo = public_images("ap-northeast-1");
    for ((a, b), c) in east.iter().zip(&again).zip(&tokyo) {
        let id = a["ImageId"].as_str().unwrap();
        assert!(id.starts_with("ami-") && id.len() == 21, "{id}");
        assert_eq!(a["ImageId"], b["ImageId"]);
        assert_ne!(a["ImageId"], c["ImageId"]);
        assert_eq!(a["Name"], c["Name"]);
    }
    let ids: std::collections::BTreeSet<&str> = east
        .iter()
        .map(|i| i["ImageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), east.len());

    // What the journeys pick from: both architectures, a Windows image, a paravirtual one.
    let find = |prefix: &str| {
        east.iter()
            .find(|i| i["Name"].as_str().unwrap().starts_with(prefix))
            .unwrap()
    };
    let al = find("al2023-ami-2023.9.20261110.0-kernel-6.1-arm64");
    assert_eq!(al["Architecture"], "arm64");
    assert_eq!(al["ImageOwnerAlias"], "amazon");
    assert_eq!(
        al["ImageLocation"],
        "amazon/al2023-ami-2023.9.20261110.0-kernel-6.1-arm64"
    );
    assert!(
        al["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
            .as_str()
            .unwrap()
            .starts_with("snap-")
    );
    let win = find("Windows_Server-2022");
    assert_eq!(
        (win["Platform"].as_str(), win["PlatformDetails"].as_str()),
        (Some("windows"), Some("Windows"))
    );
    let pv = find("amzn-ami-pv");
    assert_eq!(pv["VirtualizationType"], "paravirtual");
    assert!(pv["KernelId"].as_str().unwrap().starts_with("aki-"));
    let ubuntu = find("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64");
    assert_eq!(ubuntu["OwnerId"], "099720109477");
    assert!(ubuntu.get("ImageOwnerAlias").is_none());
}
