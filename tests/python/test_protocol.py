"""The HTTP surface that is not one service's logic: health, reset, unknown and unimplemented
operations, request ids."""

import re

import pytest
from botocore.exceptions import ClientError
from support import (
    BACKEND,
    UUID_RE,
    client,
    error_of,
    expect_error,
    http,
    http_json,
    signed_form_post,
)

SERVICES = {"ec2", "iam", "sts", "elbv2", "autoscaling", "rds", "route53", "s3"}


@pytest.mark.parametrize("path", ["/_kumori/health", "/_localstack/health"])
def test_health_reports_version_services_and_backend(endpoint, path):
    health, headers = http_json(endpoint, "GET", path)
    assert headers["content-type"].startswith("application/json")
    assert isinstance(health["version"], str) and health["version"]
    services = health["services"]
    assert SERVICES <= set(services), f"missing services: {SERVICES - set(services)}"
    assert all(isinstance(v, str) and v for v in services.values()), services
    assert health["state"] == {"backend": BACKEND, "database": "answers"}


@pytest.mark.parametrize("path", ["/_kumori/reset", "/moto-api/reset"])
def test_reset_drops_all_state(endpoint, ec2, ec2_apne1, path):
    ec2.create_vpc(CidrBlock="10.0.0.0/16")
    ec2_apne1.create_vpc(CidrBlock="10.1.0.0/16")
    answer, _ = http_json(endpoint, "POST", path)
    assert isinstance(answer, dict)
    for c in (ec2, ec2_apne1):
        assert [v for v in c.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    # The server keeps working after a reset.
    assert ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["CidrBlock"] == "10.0.0.0/16"


def test_unknown_ec2_action_is_invalid_action(endpoint):
    status, headers, body = signed_form_post(endpoint, "ec2", "us-east-1", {"Action": "Bogus", "Version": "2016-11-15"})
    text = body.decode()
    assert status == 400, text
    # EC2's own envelope: <Response><Errors><Error><Code>.
    assert re.search(r"<Response>\s*<Errors>\s*<Error>\s*<Code>InvalidAction</Code>", text), text
    assert UUID_RE.match(headers["x-amzn-requestid"])


def test_unsigned_request_is_routed_by_api_version(endpoint):
    # A curl-style POST with no signature: the Version parameter says it is for EC2.
    body = b"Action=Bogus&Version=2016-11-15"
    status, _, resp = http(endpoint, "POST", "/", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400, resp
    assert b"<Code>InvalidAction</Code>" in resp


def test_unknown_iam_action_is_invalid_action_in_query_envelope(endpoint):
    status, _, body = signed_form_post(endpoint, "iam", "us-east-1", {"Action": "Bogus", "Version": "2010-05-08"})
    text = body.decode()
    assert status == 400, text
    assert re.search(r"<ErrorResponse[^>]*>\s*<Error>\s*<Type>Sender</Type>\s*<Code>InvalidAction</Code>", text), text


@pytest.mark.parametrize(
    "service, call, operation",
    [
        ("ec2", lambda c: c.create_vpn_gateway(Type="ipsec.1"), "CreateVpnGateway"),
        ("iam", lambda c: c.list_mfa_devices(), "ListMFADevices"),
        ("elbv2", lambda c: c.describe_trust_stores(), "DescribeTrustStores"),
        ("route53", lambda c: c.list_health_checks(), "ListHealthChecks"),
        ("s3", lambda c: c.list_buckets(), "ListBuckets"),
    ],
)
def test_unimplemented_operation_answers_501_not_implemented(endpoint, service, call, operation):
    extra = {"s3": {"addressing_style": "path"}} if service == "s3" else {}
    c = client(service, endpoint, **extra)
    with pytest.raises(ClientError) as info:
        call(c)
    code, status, message = error_of(info.value)
    assert (code, status) == ("NotImplemented", 501), info.value.response
    # The message names service:Operation so a user knows exactly what is missing. ELBv2's
    # service may be named by its model name or its signing name.
    names = {"elbv2": ("elbv2", "elasticloadbalancing")}.get(service, (service,))
    assert any(f"{n}:{operation}" in message for n in names), message
    # S3 names its request-id header differently from every other service.
    header = "x-amz-request-id" if service == "s3" else "x-amzn-requestid"
    assert UUID_RE.match(info.value.response["ResponseMetadata"]["HTTPHeaders"][header])


def test_ec2_success_carries_request_id_in_header_and_body(ec2):
    meta1 = ec2.describe_vpcs()["ResponseMetadata"]
    meta2 = ec2.describe_vpcs()["ResponseMetadata"]
    for meta in (meta1, meta2):
        header = meta["HTTPHeaders"]["x-amzn-requestid"]
        assert UUID_RE.match(header), header
        # boto3 takes RequestId from the body's <requestId>; it must be the header's id.
        assert meta["RequestId"] == header
    assert meta1["RequestId"] != meta2["RequestId"]


def test_ec2_error_carries_request_id(ec2):
    with expect_error("InvalidVpcID.NotFound") as info:
        ec2.describe_vpcs(VpcIds=["vpc-0123456789abcdef0"])
    meta = info.value.response["ResponseMetadata"]
    assert UUID_RE.match(meta["HTTPHeaders"]["x-amzn-requestid"])
    assert meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]


@pytest.mark.parametrize("method, path", [("GET", "/_kumori/health"), ("POST", "/_kumori/reset")])
def test_internal_endpoints_carry_request_id(endpoint, method, path):
    status, headers, _ = http(endpoint, method, path, body=b"" if method == "POST" else None)
    assert status == 200
    assert UUID_RE.match(headers.get("x-amzn-requestid", "")), headers


def test_rest_xml_body_is_routed_and_read(endpoint):
    """boto3's ChangeResourceRecordSets posts an XML body to `/rrset/` (trailing slash): kumori
    must route it to that operation and read the body, not choke on either."""
    r53 = client("route53", endpoint)
    batch = {
        "Changes": [
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": "web.example.com",
                    "Type": "A",
                    "TTL": 300,
                    "ResourceRecords": [{"Value": "10.0.1.10"}],
                },
            }
        ]
    }
    with pytest.raises(ClientError) as info:
        r53.change_resource_record_sets(HostedZoneId="Z0123456789", ChangeBatch=batch)
    code, status, message = error_of(info.value)
    assert (code, status) == ("NoSuchHostedZone", 404) and "Z0123456789" in message
    zone = r53.create_hosted_zone(Name="example.com", CallerReference="protocol")["HostedZone"]["Id"]
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=batch)
    sets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    assert {"Name": "web.example.com.", "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "10.0.1.10"}]} in sets


def test_malformed_rest_xml_body_is_malformed_xml(endpoint):
    status, _, body = http(
        endpoint,
        "POST",
        "/2013-04-01/hostedzone",
        body=b"<CreateHostedZoneRequest><Name>example.com</CreateHostedZoneRequest>",
        headers={"Content-Type": "application/xml"},
    )
    assert status == 400, body
    assert b"<Code>MalformedXML</Code>" in body


def test_query_protocol_accepts_get_with_parameters_in_the_url(endpoint):
    status, headers, body = http(
        endpoint,
        "GET",
        "/?Action=DescribeAvailabilityZones&Version=2016-11-15&ZoneName.1=us-east-1b",
    )
    assert status == 200, body
    assert b"<zoneName>us-east-1b</zoneName>" in body
    assert b"<zoneName>us-east-1a</zoneName>" not in body
    assert UUID_RE.match(headers["x-amzn-requestid"])
