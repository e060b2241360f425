//! What EC2 authorizes each call against under `--auth enforce`: the resource ARNs of AWS's
//! service authorization reference, read from the call's members.

use crate::authz::{arn, strings};
use crate::{Caller, Ctx};
use kumori_protocol::Call;

/// The resource ARNs EC2 authorizes `call` against (`*` for actions on no particular one).
pub(crate) fn resources(ctx: &Ctx<'_>, _caller: &Caller, call: &Call) -> Vec<String> {
    let op = call.operation.name.as_str();
    let input = &call.input;
    let s = |k: &str| input[k].as_str().map(str::to_string);

    let region = call.region.as_str();
    let ec2 = |r: String| arn(ctx, "ec2", region, &r);
    if op.starts_with("Describe") || op.starts_with("Get") && op != "GetPasswordData" {
        return vec!["*".into()];
    }
    if op == "RunInstances" {
        // Each resource the launch touches is authorized on its own (AWS's
        // service authorization reference): the new instance, its image, subnet,
        // groups, interfaces, volumes and key pair.
        let mut out = vec![ec2("instance/*".into())];
        if let Some(image) = s("ImageId") {
            out.push(format!(
                "arn:{}:ec2:{region}::image/{image}",
                crate::resource::partition(ctx.region)
            ));
        }
        let nics = input["NetworkInterfaces"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let subnets: Vec<String> = s("SubnetId")
            .into_iter()
            .chain(
                nics.iter()
                    .filter_map(|n| n["SubnetId"].as_str().map(str::to_string)),
            )
            .collect();
        let groups: Vec<String> = strings(&input["SecurityGroupIds"])
            .into_iter()
            .chain(nics.iter().flat_map(|n| strings(&n["Groups"])))
            .collect();
        out.extend(subnets.iter().map(|x| ec2(format!("subnet/{x}"))));
        out.extend(groups.iter().map(|x| ec2(format!("security-group/{x}"))));
        out.push(ec2("network-interface/*".into()));
        out.push(ec2("volume/*".into()));
        if let Some(k) = s("KeyName") {
            out.push(ec2(format!("key-pair/{k}")));
        }
        return out;
    }
    let instances = strings(&input["InstanceIds"]);
    if !instances.is_empty() {
        return instances
            .iter()
            .map(|i| ec2(format!("instance/{i}")))
            .collect();
    }
    if let Some(i) = s("InstanceId") {
        return vec![ec2(format!("instance/{i}"))];
    }
    for (member, kind) in [
        ("VolumeId", "volume"),
        ("SubnetId", "subnet"),
        ("GroupId", "security-group"),
        ("VpcId", "vpc"),
        ("KeyName", "key-pair"),
        ("NetworkInterfaceId", "network-interface"),
        ("RouteTableId", "route-table"),
        ("NetworkAclId", "network-acl"),
        ("InternetGatewayId", "internet-gateway"),
        ("NatGatewayId", "natgateway"),
        ("AllocationId", "elastic-ip"),
        ("SnapshotId", "snapshot"),
    ] {
        if let Some(id) = s(member) {
            return vec![ec2(format!("{kind}/{id}"))];
        }
    }
    vec!["*".into()]
}
