//! How long one authorization decision takes against a user with 50 attached policies.
//!
//! The policies mix what real accounts carry: AWS-managed-style wildcard grants
//! (`AmazonEC2FullAccess`, read-only S3), resource-scoped grants (buckets, tables, log
//! groups, functions), guard-rail denies (region lock via `NotAction` + `StringNotEquals`,
//! source-IP lock via `NotIpAddress`), tag-based access with policy variables, and
//! MFA/date conditions. The request is an `ec2:StopInstances` that most statements have to
//! look at and several conditions have to evaluate.
//!
//! Run: `cargo run --release -p kumori-policy --example policy_bench`

use std::hint::black_box;
use std::time::{Duration, Instant};

use kumori_policy::{Decision, Policy, PolicyKind, PolicySets, Principal, Request, evaluate};

const ACCOUNT: &str = "123456789012";

fn policy_text(i: usize) -> String {
    let statements = match i % 10 {
        0 => r#"
            {"Effect":"Allow","Action":"ec2:*","Resource":"*"},
            {"Effect":"Allow","Action":"elasticloadbalancing:*","Resource":"*"},
            {"Effect":"Allow","Action":"cloudwatch:*","Resource":"*"},
            {"Effect":"Allow","Action":"autoscaling:*","Resource":"*"},
            {"Effect":"Allow","Action":"iam:CreateServiceLinkedRole","Resource":"*",
             "Condition":{"StringEquals":{"iam:AWSServiceName":[
                "autoscaling.amazonaws.com","ec2scheduled.amazonaws.com",
                "elasticloadbalancing.amazonaws.com","spot.amazonaws.com"]}}}"#
            .to_string(),
        1 => r#"
            {"Effect":"Allow","Action":["s3:Get*","s3:List*","s3:Describe*","s3-object-lambda:Get*","s3-object-lambda:List*"],"Resource":"*"}"#
            .to_string(),
        2 => format!(
            r#"
            {{"Sid":"Bucket{i}","Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::team-{i}-data","arn:aws:s3:::team-{i}-data/*"]}},
            {{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"arn:aws:s3:::team-{i}-data"}}"#
        ),
        3 => r#"
            {"Sid":"RegionLock","Effect":"Deny",
             "NotAction":["iam:*","sts:*","organizations:*","cloudfront:*","route53:*","support:*","budgets:*"],
             "Resource":"*",
             "Condition":{"StringNotEquals":{"aws:RequestedRegion":["us-east-1","us-west-2","eu-west-1"]}}}"#
            .to_string(),
        4 => r#"
            {"Sid":"IpLock","Effect":"Deny","Action":"*","Resource":"*",
             "Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16","172.16.0.0/12","2001:db8::/32"]},
                          "Bool":{"aws:ViaAWSService":"false"}}}"#
            .to_string(),
        5 => format!(
            r#"
            {{"Effect":"Allow","Action":["ec2:StartInstances","ec2:StopInstances","ec2:RebootInstances"],
              "Resource":"arn:aws:ec2:*:{ACCOUNT}:instance/*",
              "Condition":{{"StringEquals":{{"ec2:ResourceTag/Team":"${{aws:PrincipalTag/Team}}"}}}}}},
            {{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}}"#
        ),
        6 => format!(
            r#"
            {{"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:PutItem","dynamodb:Query","dynamodb:UpdateItem"],
              "Resource":["arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders-{i}","arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders-{i}/index/*"]}},
            {{"Effect":"Allow","Action":"dynamodb:Scan","Resource":"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders-{i}",
              "Condition":{{"ForAllValues:StringLike":{{"dynamodb:Attributes":["id","status","created*"]}}}}}}"#
        ),
        7 => r#"
            {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::home/${aws:username}/*"},
            {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::home",
             "Condition":{"StringLike":{"s3:prefix":["","home/","home/${aws:username}/*"]}}}"#
            .to_string(),
        8 => format!(
            r#"
            {{"Effect":"Allow","Action":["iam:*AccessKey*","iam:*MFADevice*","iam:ChangePassword"],
              "Resource":"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}",
              "Condition":{{"Bool":{{"aws:MultiFactorAuthPresent":"true"}},
                            "DateLessThan":{{"aws:CurrentTime":"2030-01-01T00:00:00Z"}},
                            "NumericLessThan":{{"aws:MultiFactorAuthAge":"3600"}}}}}}"#
        ),
        _ => format!(
            r#"
            {{"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],
              "Resource":"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/fn-{i}:*"}},
            {{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn-{i}*",
              "Condition":{{"ArnLike":{{"aws:SourceArn":"arn:aws:events:us-east-1:{ACCOUNT}:rule/*"}}}}}}"#
        ),
    };
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn main() {
    let compile_start = Instant::now();
    let policies: Vec<Policy> = (0..50)
        .map(|i| Policy::parse(&policy_text(i), PolicyKind::Identity).expect("valid policy"))
        .collect();
    let compile_time = compile_start.elapsed();
    let ids: Vec<String> = (0..50)
        .map(|i| format!("arn:aws:iam::{ACCOUNT}:policy/bench-{i}"))
        .collect();
    let sets = policies
        .iter()
        .zip(&ids)
        .fold(PolicySets::new(), |s, (p, id)| s.with_identity(id, p));
    let statements: usize = policies.iter().map(|p| p.statements().len()).sum();

    let req = Request::new(
        "ec2:StopInstances",
        format!("arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0abcdef1234567890"),
    )
    .with_principal(Principal::user(format!(
        "arn:aws:iam::{ACCOUNT}:user/platform/alice"
    )))
    .with_principal_keys()
    .with_context("aws:SourceIp", "10.20.30.40")
    .with_context("aws:RequestedRegion", "us-east-1")
    .with_context("aws:ViaAWSService", "false")
    .with_context("aws:SecureTransport", "true")
    .with_context("aws:MultiFactorAuthPresent", "true")
    .with_context("aws:MultiFactorAuthAge", "120")
    .with_context("aws:CurrentTime", "2026-05-01T12:00:00Z")
    .with_context("aws:PrincipalTag/Team", "platform")
    .with_context("ec2:ResourceTag/Team", "platform");

    let first = evaluate(&req, &sets);
    assert_eq!(first.decision, Decision::Allowed, "{first:#?}");

    // Warm up caches and the branch predictor.
    for _ in 0..20_000 {
        black_box(evaluate(black_box(&req), black_box(&sets)));
    }

    // Per-call latency.
    const SAMPLES: usize = 200_000;
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let e = evaluate(black_box(&req), black_box(&sets));
        samples.push(t.elapsed());
        black_box(e);
    }
    samples.sort_unstable();

    // Throughput on one core, without the per-call clock reads.
    let start = Instant::now();
    for _ in 0..SAMPLES {
        black_box(evaluate(black_box(&req), black_box(&sets)));
    }
    let total = start.elapsed();

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "policies: 50, statements: {statements}, compiled in {:.2} ms",
        compile_time.as_secs_f64() * 1e3
    );
    println!(
        "decision: {} via {} matched statements",
        first.decision.as_str(),
        first.matched.len()
    );
    println!("median: {:.2} µs", us(percentile(&samples, 0.5)));
    println!("p99:    {:.2} µs", us(percentile(&samples, 0.99)));
    println!("max:    {:.2} µs", us(*samples.last().expect("samples")));
    println!(
        "throughput: {:.0} requests/s on one core ({:.2} µs mean)",
        SAMPLES as f64 / total.as_secs_f64(),
        us(total) / SAMPLES as f64
    );
}
