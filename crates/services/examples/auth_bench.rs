//! What `--auth enforce` costs a request in CPU: SigV4 verification of a signed EC2 request
//! plus the evaluation of the caller's 50 attached policies (AWS's own managed policies,
//! ReadOnlyAccess's 3,000 actions among them, and customer policies with conditions).
//! Store reads are not included: they are the same lookups every request makes.
//!
//! `cargo run --release -p kumori-services --example auth_bench`

use http::HeaderMap;
use kumori_policy::Request;
use kumori_protocol::HttpRequest;
use kumori_protocol::sigv4::{self, Signature};
use kumori_services::authz::{Named, Policies, compile_identity, evaluate};
use std::time::Instant;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn managed(name: &str) -> String {
    let path = format!(
        "{}/../../data/iam/managed-policies/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["Document"].to_string()
}

/// 50 policies: AWS's managed ones, then customer policies of the shapes people write.
fn policies() -> Policies {
    let mut docs: Vec<String> = [
        "ReadOnlyAccess",
        "AmazonEC2ReadOnlyAccess",
        "AmazonS3ReadOnlyAccess",
        "AmazonVPCFullAccess",
        "AmazonRDSFullAccess",
        "AmazonRoute53FullAccess",
        "ElasticLoadBalancingFullAccess",
        "AutoScalingFullAccess",
        "IAMFullAccess",
        "AmazonS3FullAccess",
    ]
    .iter()
    .map(|n| managed(n))
    .collect();
    for i in 0..40 {
        docs.push(
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": format!("Scoped{i}"),
                        "Effect": "Allow",
                        "Action": ["ec2:StartInstances", "ec2:StopInstances", "ec2:RebootInstances"],
                        "Resource": format!("arn:aws:ec2:us-east-1:123456789012:instance/*"),
                        "Condition": { "StringEquals": { format!("ec2:ResourceTag/team{i}"): "net" } }
                    },
                    {
                        "Effect": "Deny",
                        "Action": "ec2:TerminateInstances",
                        "Resource": "*",
                        "Condition": { "NotIpAddress": { "aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"] } }
                    },
                    {
                        "Effect": "Allow",
                        "Action": format!("s3:GetObject"),
                        "Resource": format!("arn:aws:s3:::bucket-{i}/${{aws:username}}/*")
                    }
                ]
            })
            .to_string(),
        );
    }
    Policies {
        identity: docs
            .iter()
            .enumerate()
            .map(|(i, d)| Named {
                id: format!("policy-{i}"),
                source: "user-managed",
                policy: compile_identity(d).expect("a valid policy"),
            })
            .collect(),
        boundary: None,
        session: vec![],
        resource: None,
        principal_tags: vec![],
    }
}

fn main() {
    let body = b"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=instance-state-name&Filter.1.Value.1=running";
    let mut headers = HeaderMap::new();
    headers.insert("host", "127.0.0.1:4566".parse().unwrap());
    headers.insert(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8"
            .parse()
            .unwrap(),
    );
    let amz_date = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap();
    headers.insert("x-amz-date", amz_date.parse().unwrap());
    // Sign it as a client would.
    let unsigned = Signature {
        access_key: "AKIAIOSFODNN7EXAMPLE".into(),
        scope_date: amz_date[..8].to_string(),
        region: "us-east-1".into(),
        service: "ec2".into(),
        amz_date: amz_date.clone(),
        signed_headers: vec!["content-type".into(), "host".into(), "x-amz-date".into()],
        signature: String::new(),
        session_token: None,
        expires: None,
    };
    {
        let req = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        let (_, string_to_sign) = sigv4::canonical(&req, &unsigned, false);
        let key = sigv4::signing_key(SECRET, &unsigned.scope_date, "us-east-1", "ec2");
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(string_to_sign.as_bytes());
        let signature = sigv4::hex(&mac.finalize().into_bytes());
        headers.insert(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/{}/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={signature}",
                unsigned.scope_date
            )
            .parse()
            .unwrap(),
        );
    }
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let t = Instant::now();
    let policies = policies();
    let statements: usize = policies
        .identity
        .iter()
        .map(|n| n.policy.statements().len())
        .sum();
    println!(
        "50 attached policies, {statements} statements, compiled in {:.1} ms (once; cached by text)",
        t.elapsed().as_secs_f64() * 1e3
    );
    let base = Request::new("ec2:DescribeInstances", "*")
        .with_principal(kumori_policy::Principal::user(
            "arn:aws:iam::123456789012:user/developer3",
        ))
        .with_principal_keys()
        .with_context("aws:SourceIp", "127.0.0.1")
        .with_context("aws:RequestedRegion", "us-east-1")
        .with_context("ec2:Region", "us-east-1")
        .with_context("aws:SecureTransport", "false");

    let mut samples = Vec::with_capacity(20_000);
    let mut allowed = 0usize;
    for _ in 0..20_000 {
        let t = Instant::now();
        let sig = sigv4::parse(&req).expect("signed");
        sigv4::verify(&req, &sig, SECRET, time::OffsetDateTime::now_utc(), false).expect("valid");
        let e = evaluate(&base, &policies);
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        allowed += usize::from(e.decision.is_allowed());
    }
    assert_eq!(
        allowed,
        samples.len(),
        "ReadOnlyAccess allows ec2:DescribeInstances"
    );
    let part = |f: &dyn Fn()| {
        let mut v: Vec<f64> = (0..5_000)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let verify_only = part(&|| {
        let sig = sigv4::parse(&req).expect("signed");
        sigv4::verify(&req, &sig, SECRET, time::OffsetDateTime::now_utc(), false).expect("valid");
    });
    let eval_only = part(&|| {
        std::hint::black_box(evaluate(&base, &policies));
    });
    println!(
        "  of which SigV4 alone: median {verify_only:.1} us; evaluation alone: {eval_only:.1} us"
    );
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    println!(
        "SigV4 verification + evaluation of 50 policies: median {median:.1} us, p99 {p99:.1} us  target <= 20 us: {}",
        if median <= 20.0 { "met" } else { "MISSED" }
    );
    println!(
        "  allows {:.0} requests/s per core for authentication and authorization",
        1e6 / median
    );
}
