//! DescribeInstances: every documented filter over shared snapshots, and the page written
//! straight to XML from typed data.

use super::*;

/// An instance with what the filters look at: its own record for the common filters, and
/// for the rest its shown form, made only when such a filter is used.
pub(super) struct Row<'a> {
    pub(super) i: &'a Instance,
    pub(super) eni: Option<&'a NetworkInterface>,
    pub(super) public_ip: Option<String>,
    pub(super) shown: Option<Value>,
}

/// Every filter EC2 documents for DescribeInstances, and where in the shown instance its
/// values live (lists flattened). Filters on things kumori's instances never have (Dedicated
/// Hosts, Spot, Outposts, Capacity Reservations, IPv6) are accepted and match nothing.
pub(super) const FILTER_PATHS: &[(&str, &[&str])] = &[
    ("affinity", &["Placement", "Affinity"]),
    ("architecture", &["Architecture"]),
    ("availability-zone", &["Placement", "AvailabilityZone"]),
    ("availability-zone-id", &[]),
    (
        "block-device-mapping.attach-time",
        &["BlockDeviceMappings", "Ebs", "AttachTime"],
    ),
    (
        "block-device-mapping.delete-on-termination",
        &["BlockDeviceMappings", "Ebs", "DeleteOnTermination"],
    ),
    (
        "block-device-mapping.device-name",
        &["BlockDeviceMappings", "DeviceName"],
    ),
    (
        "block-device-mapping.status",
        &["BlockDeviceMappings", "Ebs", "Status"],
    ),
    (
        "block-device-mapping.volume-id",
        &["BlockDeviceMappings", "Ebs", "VolumeId"],
    ),
    ("boot-mode", &["BootMode"]),
    ("capacity-reservation-id", &["CapacityReservationId"]),
    (
        "capacity-reservation-specification.capacity-reservation-preference",
        &[
            "CapacityReservationSpecification",
            "CapacityReservationPreference",
        ],
    ),
    (
        "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-id",
        &[
            "CapacityReservationSpecification",
            "CapacityReservationTarget",
            "CapacityReservationId",
        ],
    ),
    (
        "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-resource-group-arn",
        &[
            "CapacityReservationSpecification",
            "CapacityReservationTarget",
            "CapacityReservationResourceGroupArn",
        ],
    ),
    ("client-token", &["ClientToken"]),
    ("current-instance-boot-mode", &["CurrentInstanceBootMode"]),
    ("dns-name", &["PublicDnsName"]),
    ("ebs-optimized", &["EbsOptimized"]),
    ("ena-support", &["EnaSupport"]),
    ("enclave-options.enabled", &["EnclaveOptions", "Enabled"]),
    (
        "hibernation-options.configured",
        &["HibernationOptions", "Configured"],
    ),
    ("host-id", &["Placement", "HostId"]),
    ("hypervisor", &["Hypervisor"]),
    ("iam-instance-profile.arn", &["IamInstanceProfile", "Arn"]),
    ("iam-instance-profile.id", &["IamInstanceProfile", "Id"]),
    ("image-id", &["ImageId"]),
    ("instance-id", &["InstanceId"]),
    ("instance-initiated-shutdown-behavior", &[]),
    ("instance-lifecycle", &["InstanceLifecycle"]),
    ("instance-state-code", &["State", "Code"]),
    ("instance-state-name", &["State", "Name"]),
    ("instance-type", &["InstanceType"]),
    ("instance.group-id", &["SecurityGroups", "GroupId"]),
    ("instance.group-name", &["SecurityGroups", "GroupName"]),
    ("group-id", &["SecurityGroups", "GroupId"]),
    ("group-name", &["SecurityGroups", "GroupName"]),
    ("ip-address", &["PublicIpAddress"]),
    (
        "ipv6-address",
        &["NetworkInterfaces", "Ipv6Addresses", "Ipv6Address"],
    ),
    ("kernel-id", &["KernelId"]),
    ("key-name", &["KeyName"]),
    ("launch-index", &["AmiLaunchIndex"]),
    ("launch-time", &["LaunchTime"]),
    (
        "maintenance-options.auto-recovery",
        &["MaintenanceOptions", "AutoRecovery"],
    ),
    (
        "metadata-options.http-endpoint",
        &["MetadataOptions", "HttpEndpoint"],
    ),
    ("metadata-options.http-protocol-ipv4", &[]),
    (
        "metadata-options.http-protocol-ipv6",
        &["MetadataOptions", "HttpProtocolIpv6"],
    ),
    (
        "metadata-options.http-put-response-hop-limit",
        &["MetadataOptions", "HttpPutResponseHopLimit"],
    ),
    (
        "metadata-options.http-tokens",
        &["MetadataOptions", "HttpTokens"],
    ),
    (
        "metadata-options.instance-metadata-tags",
        &["MetadataOptions", "InstanceMetadataTags"],
    ),
    ("metadata-options.state", &["MetadataOptions", "State"]),
    ("monitoring-state", &["Monitoring", "State"]),
    (
        "network-interface.addresses.association.ip-owner-id",
        &[
            "NetworkInterfaces",
            "PrivateIpAddresses",
            "Association",
            "IpOwnerId",
        ],
    ),
    (
        "network-interface.addresses.association.public-dns-name",
        &[
            "NetworkInterfaces",
            "PrivateIpAddresses",
            "Association",
            "PublicDnsName",
        ],
    ),
    (
        "network-interface.addresses.association.public-ip",
        &[
            "NetworkInterfaces",
            "PrivateIpAddresses",
            "Association",
            "PublicIp",
        ],
    ),
    (
        "network-interface.addresses.primary",
        &["NetworkInterfaces", "PrivateIpAddresses", "Primary"],
    ),
    (
        "network-interface.addresses.private-dns-name",
        &["NetworkInterfaces", "PrivateIpAddresses", "PrivateDnsName"],
    ),
    (
        "network-interface.addresses.private-ip-address",
        &[
            "NetworkInterfaces",
            "PrivateIpAddresses",
            "PrivateIpAddress",
        ],
    ),
    (
        "network-interface.association.ip-owner-id",
        &["NetworkInterfaces", "Association", "IpOwnerId"],
    ),
    (
        "network-interface.association.public-dns-name",
        &["NetworkInterfaces", "Association", "PublicDnsName"],
    ),
    (
        "network-interface.association.public-ip",
        &["NetworkInterfaces", "Association", "PublicIp"],
    ),
    (
        "network-interface.attachment.attach-time",
        &["NetworkInterfaces", "Attachment", "AttachTime"],
    ),
    (
        "network-interface.attachment.attachment-id",
        &["NetworkInterfaces", "Attachment", "AttachmentId"],
    ),
    (
        "network-interface.attachment.delete-on-termination",
        &["NetworkInterfaces", "Attachment", "DeleteOnTermination"],
    ),
    (
        "network-interface.attachment.device-index",
        &["NetworkInterfaces", "Attachment", "DeviceIndex"],
    ),
    ("network-interface.attachment.instance-id", &["InstanceId"]),
    (
        "network-interface.attachment.instance-owner-id",
        &["NetworkInterfaces", "OwnerId"],
    ),
    (
        "network-interface.attachment.network-card-index",
        &["NetworkInterfaces", "Attachment", "NetworkCardIndex"],
    ),
    (
        "network-interface.attachment.status",
        &["NetworkInterfaces", "Attachment", "Status"],
    ),
    (
        "network-interface.availability-zone",
        &["Placement", "AvailabilityZone"],
    ),
    (
        "network-interface.description",
        &["NetworkInterfaces", "Description"],
    ),
    (
        "network-interface.group-id",
        &["NetworkInterfaces", "Groups", "GroupId"],
    ),
    (
        "network-interface.group-name",
        &["NetworkInterfaces", "Groups", "GroupName"],
    ),
    (
        "network-interface.ipv6-addresses.ipv6-address",
        &["NetworkInterfaces", "Ipv6Addresses", "Ipv6Address"],
    ),
    (
        "network-interface.mac-address",
        &["NetworkInterfaces", "MacAddress"],
    ),
    (
        "network-interface.network-interface-id",
        &["NetworkInterfaces", "NetworkInterfaceId"],
    ),
    (
        "network-interface.owner-id",
        &["NetworkInterfaces", "OwnerId"],
    ),
    (
        "network-interface.private-dns-name",
        &["NetworkInterfaces", "PrivateDnsName"],
    ),
    (
        "network-interface.private-ip-address",
        &["NetworkInterfaces", "PrivateIpAddress"],
    ),
    (
        "network-interface.public-dns-name",
        &["NetworkInterfaces", "Association", "PublicDnsName"],
    ),
    ("network-interface.requester-managed", &[]),
    (
        "network-interface.source-dest-check",
        &["NetworkInterfaces", "SourceDestCheck"],
    ),
    ("network-interface.status", &["NetworkInterfaces", "Status"]),
    (
        "network-interface.subnet-id",
        &["NetworkInterfaces", "SubnetId"],
    ),
    ("network-interface.vpc-id", &["NetworkInterfaces", "VpcId"]),
    ("outpost-arn", &["OutpostArn"]),
    ("owner-id", &[]),
    ("placement-group-name", &["Placement", "GroupName"]),
    (
        "placement-partition-number",
        &["Placement", "PartitionNumber"],
    ),
    ("platform", &["Platform"]),
    ("platform-details", &["PlatformDetails"]),
    ("private-dns-name", &["PrivateDnsName"]),
    (
        "private-dns-name-options.enable-resource-name-dns-a-record",
        &["PrivateDnsNameOptions", "EnableResourceNameDnsARecord"],
    ),
    (
        "private-dns-name-options.enable-resource-name-dns-aaaa-record",
        &["PrivateDnsNameOptions", "EnableResourceNameDnsAAAARecord"],
    ),
    (
        "private-dns-name-options.hostname-type",
        &["PrivateDnsNameOptions", "HostnameType"],
    ),
    ("private-ip-address", &["PrivateIpAddress"]),
    ("product-code", &["ProductCodes", "ProductCodeId"]),
    ("product-code.type", &["ProductCodes", "ProductCodeType"]),
    ("ramdisk-id", &["RamdiskId"]),
    ("reason", &["StateTransitionReason"]),
    ("requester-id", &[]),
    ("reservation-id", &[]),
    ("root-device-name", &["RootDeviceName"]),
    ("root-device-type", &["RootDeviceType"]),
    ("source-dest-check", &["SourceDestCheck"]),
    ("spot-instance-request-id", &["SpotInstanceRequestId"]),
    ("state-reason-code", &["StateReason", "Code"]),
    ("state-reason-message", &["StateReason", "Message"]),
    ("subnet-id", &["SubnetId"]),
    ("tenancy", &["Placement", "Tenancy"]),
    ("tpm-support", &["TpmSupport"]),
    ("usage-operation", &["UsageOperation"]),
    ("usage-operation-update-time", &["UsageOperationUpdateTime"]),
    ("virtualization-type", &["VirtualizationType"]),
    ("vpc-id", &["VpcId"]),
];

pub(super) const FILTER_NAMES: &[&str] = filter_names!(FILTER_PATHS);

/// The filters answered from the instance's own record, without showing it.
pub(super) const FAST_FILTERS: &[&str] = &[
    "architecture",
    "availability-zone",
    "image-id",
    "instance-id",
    "instance-state-code",
    "instance-state-name",
    "instance-type",
    "instance.group-id",
    "instance.group-name",
    "group-id",
    "group-name",
    "ip-address",
    "key-name",
    "launch-index",
    "launch-time",
    "metadata-options.http-tokens",
    "metadata-options.http-endpoint",
    "metadata-options.http-put-response-hop-limit",
    "owner-id",
    "platform",
    "private-ip-address",
    "reservation-id",
    "requester-id",
    "subnet-id",
    "tenancy",
    "vpc-id",
    "availability-zone-id",
    "instance-initiated-shutdown-behavior",
    "metadata-options.http-protocol-ipv4",
    "network-interface.requester-managed",
];

impl Filterable for Row<'_> {
    const FILTERS: &'static [&'static str] = FILTER_NAMES;
    fn field(&self, name: &str) -> Vec<String> {
        let i = self.i;
        let groups = || self.eni.map(|e| e.groups.clone()).unwrap_or_default();
        match name {
            "architecture" => vec![i.architecture.clone()],
            "availability-zone" => vec![i.availability_zone.clone()],
            "availability-zone-id" => zones_id(&i.availability_zone).into_iter().collect(),
            "image-id" => vec![i.image_id.clone()],
            "instance-id" => vec![i.instance_id.clone()],
            "instance-initiated-shutdown-behavior" => vec![i.shutdown_behavior.clone()],
            "instance-state-code" => vec![state_code(&i.state).to_string()],
            "instance-state-name" => vec![i.state.clone()],
            "instance-type" => vec![i.instance_type.clone()],
            "instance.group-id" | "group-id" => groups().into_iter().map(|g| g.group_id).collect(),
            "instance.group-name" | "group-name" => {
                groups().into_iter().map(|g| g.group_name).collect()
            }
            "ip-address" => self.public_ip.clone().into_iter().collect(),
            "key-name" => i.key_name.clone().into_iter().collect(),
            "launch-index" => vec![i.ami_launch_index.to_string()],
            "launch-time" => vec![i.launch_time.clone()],
            "metadata-options.http-tokens" => vec![i.metadata.http_tokens.clone()],
            "metadata-options.http-endpoint" => vec![i.metadata.http_endpoint.clone()],
            "metadata-options.http-protocol-ipv4" => vec!["enabled".into()],
            "metadata-options.http-put-response-hop-limit" => {
                vec![i.metadata.http_put_response_hop_limit.to_string()]
            }
            "network-interface.requester-managed" => self
                .eni
                .map(|e| e.requester_managed.to_string())
                .into_iter()
                .collect(),
            "owner-id" => vec![i.owner_id.clone()],
            "platform" => i.platform.clone().into_iter().collect(),
            "private-ip-address" => vec![i.private_ip_address.clone()],
            "requester-id" => vec![],
            "reservation-id" => vec![i.reservation_id.clone()],
            "subnet-id" => vec![i.subnet_id.clone()],
            "tenancy" => vec![i.tenancy.clone()],
            "vpc-id" => vec![i.vpc_id.clone()],
            other => {
                let mut out = Vec::new();
                if let (Some(shown), Some((_, path))) =
                    (&self.shown, FILTER_PATHS.iter().find(|(n, _)| *n == other))
                {
                    json_values(shown, path, &mut out);
                }
                out
            }
        }
    }
}

/// The zone id of a zone name (`use1-az6` for `us-east-1a`).
pub(super) fn zones_id(zone: &str) -> Option<String> {
    let region = zone.trim_end_matches(|c: char| c.is_ascii_lowercase());
    zones(region)
        .into_iter()
        .find(|z| z.name == zone)
        .map(|z| z.id)
}

/// One page of DescribeInstances, written straight to the wire from the snapshots it was
/// selected from.
pub struct InstancesPage {
    instances: Arc<resource::Docs<Instance>>,
    enis: Arc<resource::Docs<NetworkInterface>>,
    addresses: Arc<resource::Docs<Address>>,
    volumes: Arc<resource::Docs<Volume>>,
    tags: HashMap<String, Vec<Tag>>,
    /// Each reservation on the page with its instances' ids, in page order.
    reservations: Vec<(String, Vec<String>)>,
    /// Interface id to the allocation id of the Elastic IP on it.
    eip_by_eni: HashMap<String, String>,
    volumes_by_instance: HashMap<String, Vec<String>>,
    /// Interfaces other than the primary, by instance, in device order.
    others_by_instance: HashMap<String, Vec<String>>,
    region: String,
    account: String,
    next_token: Option<String>,
}

impl Serialize for InstancesPage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("DescribeInstancesResult", 2)?;
        if let Some(t) = &self.next_token {
            out.serialize_field("NextToken", t)?;
        }
        out.serialize_field("Reservations", &ReservationsOut(self))?;
        out.end()
    }
}

pub(super) struct ReservationsOut<'p>(&'p InstancesPage);

impl Serialize for ReservationsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeStruct};
        struct Reservation<'p>(&'p InstancesPage, &'p str, &'p [String]);
        impl Serialize for Reservation<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut r = s.serialize_struct("Reservation", 4)?;
                r.serialize_field("ReservationId", self.1)?;
                r.serialize_field("OwnerId", &self.0.account)?;
                r.serialize_field("Groups", &[] as &[()])?;
                r.serialize_field("Instances", &InstancesOut(self.0, self.2))?;
                r.end()
            }
        }
        let mut seq = s.serialize_seq(Some(self.0.reservations.len()))?;
        for (id, instances) in &self.0.reservations {
            seq.serialize_element(&Reservation(self.0, id, instances))?;
        }
        seq.end()
    }
}

pub(super) struct InstancesOut<'p>(&'p InstancesPage, &'p [String]);

impl Serialize for InstancesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let page = self.0;
        let mut seq = s.serialize_seq(Some(self.1.len()))?;
        for id in self.1 {
            let Some(i) = page.instances.0.get(id) else {
                continue;
            };
            let volumes: Vec<&Volume> = page
                .volumes_by_instance
                .get(id)
                .into_iter()
                .flatten()
                .filter_map(|v| page.volumes.0.get(v))
                .collect();
            let parts = Parts {
                region: &page.region,
                account: &page.account,
                eni: page.enis.0.get(&i.network_interface_id),
                others: page
                    .others_by_instance
                    .get(id)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| page.enis.0.get(e))
                    .collect(),
                eip: page
                    .eip_by_eni
                    .get(&i.network_interface_id)
                    .and_then(|a| page.addresses.0.get(a)),
                volumes: &volumes,
                tags: page.tags.get(id).map_or(&[][..], Vec::as_slice),
                state: &i.state,
            };
            let out: InstanceOut = instance_out(i, &parts);
            seq.serialize_element(&out)?;
        }
        seq.end()
    }
}

/// The reservations holding the instances that match.
pub(super) async fn describe(
    ctx: &Ctx<'_>,
    ids: &[String],
    filters: &[Filter],
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> Result<InstancesPage> {
    check_filters::<Row>(filters)?;
    for id in ids {
        check_instance_id(id)?;
    }
    let mut tx = ctx.store.read().await?;
    let instances: Arc<resource::Docs<Instance>> = resource::snapshot(ctx, &mut tx).await?;
    let enis: Arc<resource::Docs<NetworkInterface>> = resource::snapshot(ctx, &mut tx).await?;
    let addresses: Arc<resource::Docs<Address>> = resource::snapshot(ctx, &mut tx).await?;
    let volumes: Arc<resource::Docs<Volume>> = resource::snapshot(ctx, &mut tx).await?;
    let tags = tags_by_resource(ctx, &mut tx, Instance::KIND).await?;
    drop(tx);
    let now = kumori_protocol::time::now_unix();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| instances.0.get(*id).is_none_or(|i| i.gone(now)))
        .collect();
    match missing.as_slice() {
        [] => {}
        [one] => return Err(not_found(one)),
        many => {
            // EC2 names them all, in one plural message.
            let list: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
            return Err(Error::new(
                "InvalidInstanceID.NotFound",
                format!("The instance IDs '{}' do not exist", list.join(", ")),
            ));
        }
    }
    let none = Vec::new();
    let eip_by_eni: HashMap<String, String> = addresses
        .0
        .values()
        .filter_map(|a| {
            Some((
                a.association.as_ref()?.network_interface_id.clone(),
                a.allocation_id.clone(),
            ))
        })
        .collect();
    let mut volumes_by_instance: HashMap<String, Vec<String>> = HashMap::new();
    for v in volumes.0.values() {
        for a in &v.attachments {
            volumes_by_instance
                .entry(a.instance_id.clone())
                .or_default()
                .push(v.volume_id.clone());
        }
    }
    let mut others: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for e in enis.0.values() {
        if let Some(a) = &e.attachment
            && a.device_index != 0
            && let Some(id) = a.instance_id.as_deref()
        {
            others
                .entry(id.to_string())
                .or_default()
                .push((a.device_index, e.network_interface_id.clone()));
        }
    }
    let others_by_instance: HashMap<String, Vec<String>> = others
        .into_iter()
        .map(|(k, mut v)| {
            v.sort();
            (k, v.into_iter().map(|(_, e)| e).collect())
        })
        .collect();
    // Filters other than the common ones look at the instance as shown.
    let slow = filters
        .iter()
        .any(|f| !FAST_FILTERS.contains(&f.name.as_str()) && !f.name.starts_with("tag"));
    let heavy = !filters.is_empty() && instances.0.len() > 256;
    let rows: Vec<Row> = crate::cpu_bound(heavy, || {
        instances
            .0
            .values()
            .filter(|i| !i.gone(now) && (ids.is_empty() || ids.contains(&i.instance_id)))
            .map(|i| {
                let eni = enis.0.get(&i.network_interface_id);
                let eip = eip_by_eni
                    .get(&i.network_interface_id)
                    .and_then(|a| addresses.0.get(a));
                let public_ip = eip
                    .map(|a| a.public_ip.clone())
                    .or(i.public_ip_address.clone());
                let shown = slow.then(|| {
                    let attached: Vec<&Volume> = volumes_by_instance
                        .get(&i.instance_id)
                        .into_iter()
                        .flatten()
                        .filter_map(|v| volumes.0.get(v))
                        .collect();
                    let parts = Parts {
                        region: ctx.region,
                        account: ctx.account,
                        eni,
                        others: others_by_instance
                            .get(&i.instance_id)
                            .into_iter()
                            .flatten()
                            .filter_map(|e| enis.0.get(e))
                            .collect(),
                        eip,
                        volumes: &attached,
                        tags: tags.get(&i.instance_id).map_or(&[][..], Vec::as_slice),
                        state: &i.state,
                    };
                    serde_json::to_value(instance_out(i, &parts)).unwrap_or(Value::Null)
                });
                Row {
                    i,
                    eni,
                    public_ip,
                    shown,
                }
            })
            .filter(|r| matches(r, tags.get(&r.i.instance_id).unwrap_or(&none), filters))
            .collect()
    });
    let (page, next) = paginate(rows, |r| r.i.instance_id.clone(), max_results, next_token)?;
    // Reservations in the order their first instance appears.
    let mut reservations: Vec<(String, Vec<String>)> = Vec::new();
    let mut reservation_at: HashMap<&str, usize> = HashMap::new();
    for r in &page {
        let id = r.i.instance_id.clone();
        match reservation_at.get(r.i.reservation_id.as_str()) {
            Some(&at) => reservations[at].1.push(id),
            None => {
                reservation_at.insert(r.i.reservation_id.as_str(), reservations.len());
                reservations.push((r.i.reservation_id.clone(), vec![id]));
            }
        }
    }
    drop(page);
    Ok(InstancesPage {
        reservations,
        eip_by_eni,
        volumes_by_instance,
        others_by_instance,
        tags,
        instances,
        enis,
        addresses,
        volumes,
        region: ctx.region.to_string(),
        account: ctx.account.to_string(),
        next_token: next,
    })
}

/// Instances as DescribeInstances shows them, as JSON (for answers other than the describe).
pub async fn describe_value(ctx: &Ctx<'_>, ids: &[String], filters: &[Filter]) -> Result<Value> {
    let page = describe(ctx, ids, filters, None, None).await?;
    crate::output(&page)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DescribeInstancesRequest {
    #[serde(default)]
    pub(super) instance_ids: Vec<String>,
    #[serde(default)]
    pub(super) filters: Vec<Filter>,
    pub(super) max_results: Option<i64>,
    pub(super) next_token: Option<String>,
    pub(super) dry_run: Option<bool>,
}

/// Not `generic::describe`: DryRun is answered before the ids are looked up, MaxResults is 5–1000
/// and refused beside InstanceIds, and the typed output (with interfaces, addresses and volumes
/// from shared snapshots) is written straight to XML (see bench/instances.py).
pub async fn describe_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Output> {
    let req: DescribeInstancesRequest = input(raw)?;
    // EC2 pages instances 5 to 1000 at a time (the model leaves the range unsaid), and a
    // page size makes no sense beside explicit ids.
    if let Some(max) = req.max_results {
        if !req.instance_ids.is_empty() {
            return Err(Error::new(
                "InvalidParameterCombination",
                "The parameter instancesSet cannot be used with the parameter maxResults",
            ));
        }
        if !(5..=1000).contains(&max) {
            let bound = if max < 5 {
                "Expecting a value greater than or equal to 5."
            } else {
                "Expecting a value less than or equal to 1000."
            };
            return Err(invalid_value(format!(
                "Value ( {max} ) for parameter maxResults is invalid. {bound}"
            )));
        }
    }
    dry_run(req.dry_run)?;
    let page = describe(
        ctx,
        &req.instance_ids,
        &req.filters,
        req.max_results,
        req.next_token.as_deref(),
    )
    .await?;
    Ok(Output::Typed(Box::new(page)))
}
