//! Parsing and validation: what IAM accepts, and the message it gives for what it refuses.

use kumori_policy::{Effect, Policy, PolicyKind, Position, Version, policy_size};

fn err(text: &str, kind: PolicyKind) -> String {
    match Policy::parse(text, kind) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.message,
    }
}

fn identity_err(statement: &str) -> String {
    err(
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#),
        PolicyKind::Identity,
    )
}

const SYNTAX: &str = "Syntax errors in policy.";

#[test]
fn accepts_the_usual_shapes() {
    let p = Policy::parse(
        r#"{"Version":"2012-10-17","Id":"x","Statement":{"Sid":"A1","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
        PolicyKind::Identity,
    )
    .unwrap();
    assert_eq!(p.version(), Version::V2012);
    assert_eq!(p.id(), Some("x"));
    assert_eq!(p.statements().len(), 1);
    assert_eq!(p.statements()[0].sid(), Some("A1"));
    assert_eq!(p.statements()[0].effect(), Effect::Allow);

    // No Version means 2008-10-17.
    let p = Policy::parse(
        r#"{"Statement":[{"Effect":"Deny","NotAction":["iam:*"],"NotResource":"arn:aws:s3:::b"}]}"#,
        PolicyKind::Identity,
    )
    .unwrap();
    assert_eq!(p.version(), Version::V2008);
    assert_eq!(p.statements()[0].effect(), Effect::Deny);

    // Numbers and booleans are valid condition values.
    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*",
            "Condition":{"NumericLessThanEquals":{"s3:max-keys":10},"Bool":{"aws:SecureTransport":true},
                         "ForAnyValue:StringLikeIfExists":{"aws:TagKeys":["a*","b"]}}}]}"#,
        PolicyKind::Identity,
    )
    .unwrap();

    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        PolicyKind::Trust,
    )
    .unwrap();
    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Public read","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
        PolicyKind::Resource,
    )
    .unwrap();
}

#[test]
fn syntax_errors() {
    for text in [
        "not json",
        "[]",
        r#"{"Version":"2012-10-17"}"#,
        r#"{"Version":"2012-10-17","Statement":[]}"#,
        r#"{"Version":"2012-10-17","Statement":"x"}"#,
        r#"{"Version":"2010-01-01","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
        r#"{"Version":20121017,"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
        r#"{"Version":"2012-10-17","Extra":1,"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Foo":1}}"#,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Permit","Action":"s3:*","Resource":"*"}}"#,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","NotAction":"s3:Get*","Resource":"*"}}"#,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","NotResource":"*"}}"#,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":[1],"Resource":"*"}}"#,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":{"a":"b"}}}"#,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqual":{"aws:username":"a"}}}}"#,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":"a"}}}"#,
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:username":null}}}}"#,
        // Duplicate keys, which serde_json would silently collapse.
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Effect":"Deny","Action":"s3:*","Resource":"*"}}"#,
    ] {
        assert_eq!(err(text, PolicyKind::Identity), SYNTAX, "{text}");
    }
}

#[test]
fn unknown_operator_without_keys_is_tolerated() {
    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqual":{}}}}"#,
        PolicyKind::Identity,
    )
    .unwrap();
}

#[test]
fn missing_effect() {
    assert_eq!(
        identity_err(r#"{"Action":"s3:*","Resource":"*"}"#),
        "Missing required field Effect"
    );
}

#[test]
fn principals_by_kind() {
    assert_eq!(
        identity_err(r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}"#),
        "Policy document should not specify a principal."
    );
    assert_eq!(
        identity_err(
            r#"{"Effect":"Allow","NotPrincipal":{"AWS":"*"},"Action":"s3:*","Resource":"*"}"#
        ),
        "Policy document should not specify a principal."
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#,
            PolicyKind::Trust
        ),
        "Invalid principal in policy: com.amazon.balsa.error.InvalidPolicyException: The passed in policy has a statement with no principals!"
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole","Resource":"*"}}"#,
            PolicyKind::Trust
        ),
        "Has prohibited field Resource"
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
            PolicyKind::Resource
        ),
        "Missing required field Principal"
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"sts:AssumeRole"}}"#,
            PolicyKind::Trust
        ),
        r#"Invalid principal in policy: "AWS":"alice""#
    );
}

#[test]
fn legacy_parsing() {
    for st in [
        r#"{"Effect":"allow","Action":"s3:*","Resource":"*"}"#,
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"yesterday"}}}"#,
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3::bucket"}"#,
    ] {
        assert_eq!(identity_err(st), "The policy failed legacy parsing", "{st}");
    }
}

#[test]
fn sids() {
    assert_eq!(
        identity_err(
            r#"{"Sid":"A","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"s3:*","Resource":"*"}"#
        ),
        "Statement IDs (SID) in a single policy must be unique."
    );
    assert_eq!(
        identity_err(
            r#"{"Sid":"Atomic_Red_Team","Effect":"Allow","Action":"s3:*","Resource":"*"}"#
        ),
        "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"
    );
    // Empty Sids are not duplicates of each other.
    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"","Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        PolicyKind::Identity,
    )
    .unwrap();
}

#[test]
fn actions_and_resources_required() {
    assert_eq!(
        identity_err(r#"{"Effect":"Allow","Resource":"*"}"#),
        "Policy statement must contain actions."
    );
    assert_eq!(
        identity_err(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#),
        "Policy statement must contain actions."
    );
    assert_eq!(
        identity_err(r#"{"Effect":"Allow","Action":"s3:*"}"#),
        "Policy statement must contain resources."
    );
    assert_eq!(
        identity_err(r#"{"Effect":"Allow","Action":"s3:*","NotResource":[]}"#),
        "Policy statement must contain resources."
    );
}

#[test]
fn resource_formats() {
    assert_eq!(
        identity_err(
            r#"{"Effect":"Allow","Action":"ecr:*","Resource":"174313347505.dkr.ecr.us-west-2.amazonaws.com/repo"}"#
        ),
        r#"Resource 174313347505.dkr.ecr.us-west-2.amazonaws.com/repo must be in ARN format or "*"."#
    );
    assert_eq!(
        identity_err(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws-x:s3:::b"}"#),
        r#"Partition "aws-x" is not valid for resource "arn:aws-x:s3:::b"."#
    );
    assert_eq!(
        identity_err(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:*:::b"}"#),
        "Resource vendor must be fully qualified and cannot contain regexes."
    );
    assert_eq!(
        identity_err(
            r#"{"Effect":"Allow","Action":"iam:*","Resource":"arn:aws:iam:us-east-1:123456789012:user/x"}"#
        ),
        "IAM resource arn:aws:iam:us-east-1:123456789012:user/x cannot contain region information."
    );
    assert_eq!(
        identity_err(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:us-east-1::b"}"#),
        "Resource arn:aws:s3:us-east-1::b can not contain region information."
    );
    // An S3 access point's ARN carries its region.
    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:us-east-1:123456789012:accesspoint/x/object/*"}}"#,
        PolicyKind::Identity,
    )
    .unwrap();
}

#[test]
fn managed_policies_need_the_2012_language() {
    let statement = r#""Statement":{"Effect":"denY","Action":"s3:*","Resource":"*"}"#;
    for doc in [
        format!("{{{statement}}}"),
        format!(r#"{{"Version":"2008-10-17",{statement}}}"#),
    ] {
        // Checked right after the syntax: before the legacy parsing that `denY` fails.
        assert_eq!(
            Policy::parse_managed(&doc).unwrap_err().message,
            "Policy document must be version 2012-10-17 or greater.",
            "{doc}"
        );
        assert_eq!(
            Policy::parse(&doc, PolicyKind::Identity)
                .unwrap_err()
                .message,
            "The policy failed legacy parsing"
        );
    }
    Policy::parse(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
        PolicyKind::Identity,
    )
    .unwrap();
}

#[test]
fn action_formats() {
    assert_eq!(
        identity_err(r#"{"Effect":"Allow","Action":"GetObject","Resource":"*"}"#),
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
    );
    assert_eq!(
        identity_err(r#"{"Effect":"Allow","Action":"s3:Get:Object","Resource":"*"}"#),
        "Actions/Condition can contain only one colon."
    );
    assert_eq!(
        identity_err(r#"{"Effect":"Allow","Action":"s3 x:GetObject","Resource":"*"}"#),
        "Vendor s3 x is not valid"
    );
    // IAM takes condition keys without a vendor (moto's probing of IAM: `{"a": "asf"}`).
    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualsIfExists":{"username":"a"}}}}"#,
        PolicyKind::Identity,
    )
    .unwrap();
    // Condition keys may contain several colons (KMS encryption context keys do).
    Policy::parse(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:aws:cloudtrail:arn":"x"}}}}"#,
        PolicyKind::Identity,
    )
    .unwrap();
}

#[test]
fn statement_positions() {
    let text = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"*\"},\n    {\n      \"Effect\": \"Deny\",\n      \"Action\": \"s3:Delete*\",\n      \"Resource\": \"*\"\n    }\n  ]\n}";
    let p = Policy::parse(text, PolicyKind::Identity).unwrap();
    let s = p.statements();
    assert_eq!(s[0].start(), Position { line: 4, column: 5 });
    assert_eq!(
        s[0].end(),
        Position {
            line: 4,
            column: 58
        }
    );
    assert_eq!(s[1].start(), Position { line: 5, column: 5 });
    assert_eq!(s[1].end(), Position { line: 9, column: 5 });
}

#[test]
fn size_ignores_whitespace() {
    assert_eq!(policy_size("{ \"a\" :\n\t1 }"), 7);
}
