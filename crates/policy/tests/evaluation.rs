//! Evaluation: the decision logic across policy types, and what the result reports.

use kumori_policy::{
    Decision, Effect, Policy, PolicyKind, PolicySets, PolicySource, Principal, PrincipalMatch,
    Request, evaluate, trust_allows,
};
use proptest::prelude::*;

const ACCOUNT: &str = "111122223333";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const ROLE: &str = "arn:aws:iam::111122223333:role/Builder";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/Builder/ci";

fn identity(statements: &str) -> Policy {
    Policy::parse(
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
        PolicyKind::Identity,
    )
    .unwrap_or_else(|e| panic!("{e}: {statements}"))
}

fn resource_policy(statements: &str) -> Policy {
    Policy::parse(
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
        PolicyKind::Resource,
    )
    .unwrap_or_else(|e| panic!("{e}: {statements}"))
}

fn trust(statements: &str) -> Policy {
    Policy::parse(
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
        PolicyKind::Trust,
    )
    .unwrap_or_else(|e| panic!("{e}: {statements}"))
}

fn alice(action: &str, resource: &str) -> Request {
    Request::new(action, resource)
        .with_principal(Principal::user(ALICE))
        .with_principal_keys()
}

fn decide(req: &Request, sets: &PolicySets<'_>) -> Decision {
    evaluate(req, sets).decision
}

#[test]
fn nothing_allows_by_default() {
    let sets = PolicySets::new();
    assert_eq!(
        decide(&alice("s3:GetObject", "arn:aws:s3:::b/k"), &sets),
        Decision::ImplicitDeny
    );
}

#[test]
fn explicit_deny_beats_allow() {
    let allow = identity(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    let deny = identity(
        r#"{"Sid":"NoDelete","Effect":"Deny","Action":"s3:Delete*","Resource":"arn:aws:s3:::prod/*"}"#,
    );
    let sets = PolicySets::new()
        .with_identity("admin", &allow)
        .with_identity("guard", &deny);
    let eval = evaluate(&alice("s3:DeleteObject", "arn:aws:s3:::prod/x"), &sets);
    assert_eq!(eval.decision, Decision::ExplicitDeny);
    assert_eq!(eval.decision.as_str(), "explicitDeny");
    assert_eq!(eval.matched.len(), 1);
    let m = &eval.matched[0];
    assert_eq!(m.policy_id, "guard");
    assert_eq!(m.policy_index, 1);
    assert_eq!(m.sid.as_deref(), Some("NoDelete"));
    assert_eq!(m.effect, Effect::Deny);
    assert_eq!(m.source, PolicySource::Identity);

    assert_eq!(
        decide(&alice("s3:DeleteObject", "arn:aws:s3:::dev/x"), &sets),
        Decision::Allowed
    );
    // A deny in a resource policy applies too, even to the root user.
    let bucket = resource_policy(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#,
    );
    let sets = PolicySets::new()
        .with_identity("admin", &allow)
        .with_resource("bucket", &bucket);
    assert_eq!(
        decide(&alice("s3:GetObject", "arn:aws:s3:::b/k"), &sets),
        Decision::ExplicitDeny
    );
    let root =
        Request::new("s3:GetObject", "arn:aws:s3:::b/k").with_principal(Principal::root(ACCOUNT));
    assert_eq!(decide(&root, &sets), Decision::ExplicitDeny);
}

#[test]
fn root_is_allowed_unless_denied() {
    let root = Request::new("iam:CreateUser", "arn:aws:iam::111122223333:user/x")
        .with_principal(Principal::root(ACCOUNT));
    assert_eq!(decide(&root, &PolicySets::new()), Decision::Allowed);
}

#[test]
fn actions_are_case_insensitive_resources_are_not() {
    let p = identity(
        r#"{"Effect":"Allow","Action":"S3:getobject","Resource":"arn:aws:s3:::Bucket/*"}"#,
    );
    let sets = PolicySets::new().with_identity("p", &p);
    assert_eq!(
        decide(&alice("s3:GetObject", "arn:aws:s3:::Bucket/k"), &sets),
        Decision::Allowed
    );
    assert_eq!(
        decide(&alice("s3:GetObject", "arn:aws:s3:::bucket/k"), &sets),
        Decision::ImplicitDeny
    );
}

#[test]
fn not_action() {
    // Everything except IAM.
    let p = identity(r#"{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}"#);
    let sets = PolicySets::new().with_identity("p", &p);
    assert_eq!(
        decide(&alice("s3:GetObject", "*"), &sets),
        Decision::Allowed
    );
    assert_eq!(
        decide(&alice("ec2:RunInstances", "*"), &sets),
        Decision::Allowed
    );
    assert_eq!(
        decide(&alice("iam:CreateUser", "*"), &sets),
        Decision::ImplicitDeny
    );

    // Deny everything except a list: the list is not allowed by the deny, only not denied.
    let allow_all = identity(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    let deny_others = identity(
        r#"{"Effect":"Deny","NotAction":["iam:ChangePassword","iam:GetUser"],"Resource":"*"}"#,
    );
    let sets = PolicySets::new()
        .with_identity("all", &allow_all)
        .with_identity("deny", &deny_others);
    assert_eq!(decide(&alice("iam:GetUser", "*"), &sets), Decision::Allowed);
    assert_eq!(
        decide(&alice("s3:GetObject", "*"), &sets),
        Decision::ExplicitDeny
    );
    let sets = PolicySets::new().with_identity("deny", &deny_others);
    assert_eq!(
        decide(&alice("iam:GetUser", "*"), &sets),
        Decision::ImplicitDeny
    );
}

#[test]
fn not_resource() {
    let p = identity(
        r#"{"Effect":"Allow","Action":"s3:*","NotResource":["arn:aws:s3:::secret","arn:aws:s3:::secret/*"]}"#,
    );
    let sets = PolicySets::new().with_identity("p", &p);
    assert_eq!(
        decide(&alice("s3:GetObject", "arn:aws:s3:::public/k"), &sets),
        Decision::Allowed
    );
    assert_eq!(
        decide(&alice("s3:GetObject", "arn:aws:s3:::secret/k"), &sets),
        Decision::ImplicitDeny
    );
    // NotResource does not widen the actions.
    assert_eq!(
        decide(
            &alice(
                "ec2:RunInstances",
                "arn:aws:ec2:us-east-1:111122223333:instance/i-1"
            ),
            &sets
        ),
        Decision::ImplicitDeny
    );
}

#[test]
fn permissions_boundary_intersects() {
    let identity_p = identity(r#"{"Effect":"Allow","Action":["s3:*","ec2:*"],"Resource":"*"}"#);
    let boundary = identity(r#"{"Effect":"Allow","Action":["s3:*","iam:*"],"Resource":"*"}"#);
    let sets = PolicySets::new()
        .with_identity("id", &identity_p)
        .with_boundary("boundary", &boundary);
    // Both allow.
    let e = evaluate(&alice("s3:GetObject", "*"), &sets);
    assert_eq!(e.decision, Decision::Allowed);
    assert_eq!(e.layers.boundary_allows, Some(true));
    let sources: Vec<_> = e.matched.iter().map(|m| m.source).collect();
    assert_eq!(
        sources,
        [PolicySource::Identity, PolicySource::PermissionsBoundary]
    );
    // Identity only.
    let e = evaluate(&alice("ec2:RunInstances", "*"), &sets);
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.layers.boundary_allows, Some(false));
    assert!(e.layers.identity_allows);
    assert!(e.matched.is_empty());
    // Boundary only: a boundary grants nothing by itself.
    assert_eq!(
        decide(&alice("iam:GetUser", "*"), &sets),
        Decision::ImplicitDeny
    );
    // A deny in the boundary is an explicit deny.
    let deny_boundary = identity(
        r#"{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}"#,
    );
    let sets = PolicySets::new()
        .with_identity("id", &identity_p)
        .with_boundary("b", &deny_boundary);
    let e = evaluate(&alice("s3:DeleteBucket", "*"), &sets);
    assert_eq!(e.decision, Decision::ExplicitDeny);
    assert_eq!(e.matched[0].source, PolicySource::PermissionsBoundary);
}

#[test]
fn session_policies_intersect() {
    let role_policy = identity(r#"{"Effect":"Allow","Action":["s3:*","sqs:*"],"Resource":"*"}"#);
    let session_policy = identity(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    let session = Request::new("s3:GetObject", "arn:aws:s3:::b/k")
        .with_principal(Principal::assumed_role(SESSION, ROLE));
    let sets = PolicySets::new()
        .with_identity("role", &role_policy)
        .with_session("session", &session_policy);
    assert_eq!(decide(&session, &sets), Decision::Allowed);
    let mut put = session.clone();
    put.action = "s3:PutObject".into();
    let e = evaluate(&put, &sets);
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.layers.session_allows, Some(false));
    // Session policies cannot grant what the role lacks.
    let wide_session = identity(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    let sets = PolicySets::new()
        .with_identity("role", &role_policy)
        .with_session("session", &wide_session);
    let mut ec2 = session.clone();
    ec2.action = "ec2:RunInstances".into();
    assert_eq!(decide(&ec2, &sets), Decision::ImplicitDeny);
}

#[test]
fn resource_policies_in_the_same_account() {
    let bucket = |principal: &str| {
        resource_policy(&format!(
            r#"{{"Sid":"Grant","Effect":"Allow","Principal":{principal},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#
        ))
    };
    let get = alice("s3:GetObject", "arn:aws:s3:::b/k");
    let boundary = identity(r#"{"Effect":"Allow","Action":"ec2:*","Resource":"*"}"#);

    // Naming the user: allowed without any identity policy, and despite the boundary.
    let named = bucket(&format!(r#"{{"AWS":"{ALICE}"}}"#));
    let sets = PolicySets::new().with_resource("bucket", &named);
    let e = evaluate(&get, &sets);
    assert_eq!(e.decision, Decision::Allowed);
    assert_eq!(e.matched[0].source, PolicySource::Resource);
    assert_eq!(e.matched[0].principal_match, Some(PrincipalMatch::Direct));
    let sets = PolicySets::new()
        .with_resource("bucket", &named)
        .with_boundary("b", &boundary);
    assert_eq!(decide(&get, &sets), Decision::Allowed);

    // Someone else named: no effect.
    let other = bucket(r#"{"AWS":"arn:aws:iam::111122223333:user/bob"}"#);
    let sets = PolicySets::new().with_resource("bucket", &other);
    assert_eq!(decide(&get, &sets), Decision::ImplicitDeny);

    // Naming the account delegates to the account's identity policies.
    for principal in [
        format!(r#"{{"AWS":"{ACCOUNT}"}}"#),
        format!(r#"{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}}"#),
    ] {
        let account = bucket(&principal);
        let sets = PolicySets::new().with_resource("bucket", &account);
        let e = evaluate(&get, &sets);
        assert_eq!(e.decision, Decision::ImplicitDeny, "{principal}");
        assert_eq!(e.layers.resource_grant, Some(PrincipalMatch::Account));
        let allow = identity(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
        let sets = PolicySets::new()
            .with_resource("bucket", &account)
            .with_identity("id", &allow);
        assert_eq!(decide(&get, &sets), Decision::Allowed);
    }

    // Everyone.
    let public = bucket(r#""*""#);
    let sets = PolicySets::new().with_resource("bucket", &public);
    assert_eq!(decide(&get, &sets), Decision::Allowed);
    assert_eq!(
        decide(&Request::new("s3:GetObject", "arn:aws:s3:::b/k"), &sets),
        Decision::Allowed
    );

    // A role session: named by its role, limited by its boundary; named itself, not.
    let session = Request::new("s3:GetObject", "arn:aws:s3:::b/k")
        .with_principal(Principal::assumed_role(SESSION, ROLE));
    let by_role = bucket(&format!(r#"{{"AWS":"{ROLE}"}}"#));
    let sets = PolicySets::new().with_resource("bucket", &by_role);
    assert_eq!(decide(&session, &sets), Decision::Allowed);
    let sets = PolicySets::new()
        .with_resource("bucket", &by_role)
        .with_boundary("b", &boundary);
    assert_eq!(decide(&session, &sets), Decision::ImplicitDeny);
    let by_session = bucket(&format!(r#"{{"AWS":"{SESSION}"}}"#));
    let sets = PolicySets::new()
        .with_resource("bucket", &by_session)
        .with_boundary("b", &boundary);
    assert_eq!(decide(&session, &sets), Decision::Allowed);
}

#[test]
fn conditions_decide_statements() {
    let p = identity(
        r#"{"Effect":"Allow","Action":"ec2:*","Resource":"*",
            "Condition":{"StringEquals":{"aws:RequestedRegion":["eu-west-1","eu-central-1"]},
                         "IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#,
    );
    let sets = PolicySets::new().with_identity("p", &p);
    let base = alice("ec2:RunInstances", "*");
    let ok = base
        .clone()
        .with_context("aws:RequestedRegion", "eu-west-1")
        .with_context("aws:SourceIp", "10.2.3.4");
    assert_eq!(decide(&ok, &sets), Decision::Allowed);
    // Keys are AND'ed.
    let wrong_ip = base
        .clone()
        .with_context("aws:RequestedRegion", "eu-west-1")
        .with_context("aws:SourceIp", "192.0.2.1");
    assert_eq!(decide(&wrong_ip, &sets), Decision::ImplicitDeny);
    // Several keys under one operator are AND'ed too.
    let two_keys = identity(
        r#"{"Effect":"Allow","Action":"ec2:*","Resource":"*",
            "Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1","aws:PrincipalTag/team":"blue"}}}"#,
    );
    let two_sets = PolicySets::new().with_identity("p", &two_keys);
    let region_only = base
        .clone()
        .with_context("aws:RequestedRegion", "eu-west-1");
    assert_eq!(decide(&region_only, &two_sets), Decision::ImplicitDeny);
    let both = region_only.with_context("aws:PrincipalTag/Team", "blue");
    assert_eq!(decide(&both, &two_sets), Decision::Allowed);
    // A missing key is reported.
    let e = evaluate(
        &base.clone().with_context("aws:SourceIp", "10.2.3.4"),
        &sets,
    );
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.missing_context_keys, ["aws:RequestedRegion"]);
    let e = evaluate(&base, &sets);
    assert_eq!(
        e.missing_context_keys,
        ["aws:RequestedRegion", "aws:SourceIp"]
    );

    // A negated operator on a missing key is true: this deny fires without the tag.
    let deny = identity(
        r#"{"Effect":"Allow","Action":"*","Resource":"*"},
           {"Effect":"Deny","Action":"ec2:TerminateInstances","Resource":"*",
            "Condition":{"StringNotEquals":{"ec2:ResourceTag/Owner":"${aws:username}"}}}"#,
    );
    let sets = PolicySets::new().with_identity("p", &deny);
    let terminate = alice(
        "ec2:TerminateInstances",
        "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
    );
    assert_eq!(decide(&terminate, &sets), Decision::ExplicitDeny);
    let own = terminate
        .clone()
        .with_context("ec2:ResourceTag/Owner", "alice");
    assert_eq!(decide(&own, &sets), Decision::Allowed);
    let others = terminate.with_context("ec2:ResourceTag/Owner", "bob");
    assert_eq!(decide(&others, &sets), Decision::ExplicitDeny);
}

#[test]
fn variables_in_resources() {
    let p = identity(
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}"#,
    );
    let sets = PolicySets::new().with_identity("p", &p);
    assert_eq!(
        decide(
            &alice("s3:GetObject", "arn:aws:s3:::home/alice/a.txt"),
            &sets
        ),
        Decision::Allowed
    );
    assert_eq!(
        decide(&alice("s3:GetObject", "arn:aws:s3:::home/bob/a.txt"), &sets),
        Decision::ImplicitDeny
    );
    // A role session has no aws:username: the resource matches nothing, and the key is reported.
    let session = Request::new("s3:GetObject", "arn:aws:s3:::home/alice/a.txt")
        .with_principal(Principal::assumed_role(SESSION, ROLE))
        .with_principal_keys();
    let e = evaluate(&session, &sets);
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.missing_context_keys, ["aws:username"]);

    // Principal tags and defaults.
    let p = identity(
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::${aws:PrincipalTag/team, 'shared'}/*"}"#,
    );
    let sets = PolicySets::new().with_identity("p", &p);
    let tagged =
        alice("s3:GetObject", "arn:aws:s3:::blue/x").with_context("aws:PrincipalTag/team", "blue");
    assert_eq!(decide(&tagged, &sets), Decision::Allowed);
    assert_eq!(
        decide(&alice("s3:GetObject", "arn:aws:s3:::shared/x"), &sets),
        Decision::Allowed
    );
    assert_eq!(
        decide(&alice("s3:GetObject", "arn:aws:s3:::blue/x"), &sets),
        Decision::ImplicitDeny
    );

    // Version 2008-10-17: no variables, the text is literal.
    let old = Policy::parse(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}}"#,
        PolicyKind::Identity,
    )
    .unwrap();
    let sets = PolicySets::new().with_identity("old", &old);
    assert_eq!(
        decide(
            &alice("s3:GetObject", "arn:aws:s3:::home/alice/a.txt"),
            &sets
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(
            &alice("s3:GetObject", "arn:aws:s3:::home/${aws:username}/a.txt"),
            &sets
        ),
        Decision::Allowed
    );
}

#[test]
fn trust_policies() {
    let t = trust(
        r#"{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"},
           {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole",
            "Condition":{"StringEquals":{"sts:ExternalId":"s3cret"}}},
           {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/alice","777788889999"]},"Action":["sts:AssumeRole","sts:TagSession"]},
           {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::777788889999:user/mallory"},"Action":"sts:*"}"#,
    );
    let assume = |p: Principal| {
        Request::new("sts:AssumeRole", "arn:aws:iam::111122223333:role/R").with_principal(p)
    };

    let e = trust_allows(&t, &assume(Principal::service("ec2.amazonaws.com")));
    assert_eq!(e.decision, Decision::Allowed);
    assert_eq!(e.matched[0].principal_match, Some(PrincipalMatch::Direct));
    assert_eq!(e.matched[0].source, PolicySource::Trust);
    assert_eq!(
        trust_allows(&t, &assume(Principal::service("lambda.amazonaws.com"))).decision,
        Decision::ImplicitDeny
    );

    // The account form, with its ExternalId condition.
    let ext = assume(Principal::user("arn:aws:iam::444455556666:user/ops"));
    let e = trust_allows(&t, &ext);
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert_eq!(e.missing_context_keys, ["sts:ExternalId"]);
    let e = trust_allows(&t, &ext.with_context("sts:ExternalId", "s3cret"));
    assert_eq!(e.decision, Decision::Allowed);
    assert_eq!(e.matched[0].principal_match, Some(PrincipalMatch::Account));

    // A user by ARN; an account by bare ID; an explicit deny.
    assert!(
        trust_allows(&t, &assume(Principal::user(ALICE)))
            .decision
            .is_allowed()
    );
    let mut tag = assume(Principal::user(ALICE));
    tag.action = "sts:TagSession".into();
    assert!(trust_allows(&t, &tag).decision.is_allowed());
    assert!(
        trust_allows(
            &t,
            &assume(Principal::user("arn:aws:iam::777788889999:user/eve"))
        )
        .decision
        .is_allowed()
    );
    assert_eq!(
        trust_allows(
            &t,
            &assume(Principal::user("arn:aws:iam::777788889999:user/mallory"))
        )
        .decision,
        Decision::ExplicitDeny
    );
    assert_eq!(
        trust_allows(
            &t,
            &assume(Principal::user("arn:aws:iam::111122223333:user/bob"))
        )
        .decision,
        Decision::ImplicitDeny
    );
    // Another action is not granted.
    let mut web = assume(Principal::user(ALICE));
    web.action = "sts:AssumeRoleWithWebIdentity".into();
    assert_eq!(trust_allows(&t, &web).decision, Decision::ImplicitDeny);

    // Role sessions, by role ARN (role chaining).
    let chain = trust(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{ROLE}"}},"Action":"sts:AssumeRole"}}"#
    ));
    let e = trust_allows(&chain, &assume(Principal::assumed_role(SESSION, ROLE)));
    assert_eq!(e.decision, Decision::Allowed);
    assert_eq!(e.matched[0].principal_match, Some(PrincipalMatch::Role));

    // Everyone; web identity.
    let open = trust(r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}"#);
    assert!(
        trust_allows(&open, &assume(Principal::user(ALICE)))
            .decision
            .is_allowed()
    );
    let oidc = trust(
        r#"{"Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"sts:AssumeRoleWithWebIdentity",
            "Condition":{"StringEquals":{"cognito-identity.amazonaws.com:aud":"us-east-1:pool"}}}"#,
    );
    let web = Request::new("sts:AssumeRoleWithWebIdentity", "*")
        .with_principal(Principal::federated("cognito-identity.amazonaws.com"))
        .with_context("cognito-identity.amazonaws.com:aud", "us-east-1:pool");
    assert!(trust_allows(&oidc, &web).decision.is_allowed());
}

#[test]
fn matched_statements_report_positions_and_sids() {
    let text = "{\"Version\":\"2012-10-17\",\"Statement\":[\n{\"Sid\":\"One\",\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\"},\n{\"Sid\":\"Two\",\"Effect\":\"Allow\",\"Action\":\"s3:Get*\",\"Resource\":\"*\"}]}";
    let p = Policy::parse(text, PolicyKind::Identity).unwrap();
    let sets = PolicySets::new().with_identity("arn:aws:iam::111122223333:policy/P", &p);
    let e = evaluate(&alice("s3:GetObject", "*"), &sets);
    assert_eq!(e.decision, Decision::Allowed);
    let sids: Vec<_> = e.matched.iter().map(|m| m.sid.as_deref()).collect();
    assert_eq!(sids, [Some("One"), Some("Two")]);
    assert_eq!(e.matched[1].start.line, 3);
    assert_eq!(e.matched[1].start.column, 1);
    assert_eq!(e.matched[1].statement_index, 1);
    assert_eq!(e.matched[0].policy_id, "arn:aws:iam::111122223333:policy/P");
}

// ---- Properties ----
//
// Each property is checked against a reference: `wildcard`, a few obviously correct lines,
// says whether an Action pattern matches. And each generates the cases that can tell a working
// evaluator from a broken one in fair numbers: requests built from a pattern (which must
// match it, whatever the wildcards stand for) beside unrelated ones (which mostly do not).
// Without the reference a property such as "a deny only removes" holds for a matcher that
// matches everything or nothing, or an evaluator that ignores Deny.

/// An Action pattern: `*`, or vendor:name with wildcards (IAM refuses them in the vendor,
/// except a lone `*`) and mixed case (actions match case-insensitively).
fn arb_pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("*".to_string()),
        6 => ("(s3|sq|S3|Sq|\\*)", "[GgPp*?][a-zA-Z*?]{0,3}")
            .prop_map(|(vendor, name)| format!("{vendor}:{name}")),
    ]
}

/// What stands in for the wildcards of a pattern, and which letters change case.
#[derive(Debug, Clone)]
struct Fill {
    runs: Vec<String>,
    flips: Vec<bool>,
}

fn arb_fill() -> impl Strategy<Value = Fill> {
    (
        prop::collection::vec("[a-zA-Z0-9]{0,3}", 8),
        prop::collection::vec(any::<bool>(), 12),
    )
        .prop_map(|(runs, flips)| Fill { runs, flips })
}

/// An action that `pattern` matches by construction: each `*` replaced by a run, each `?` by
/// one character, some letters in the other case.
fn instance(pattern: &str, fill: &Fill) -> String {
    let mut runs = fill.runs.iter().cycle();
    let mut flips = fill.flips.iter().cycle();
    let mut out = String::new();
    for c in pattern.chars() {
        match c {
            '*' => out.push_str(runs.next().unwrap()),
            '?' => out.push(runs.next().unwrap().chars().next().unwrap_or('x')),
            c if *flips.next().unwrap() => out.push(if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }),
            c => out.push(c),
        }
    }
    out
}

/// The reference matcher: `*` any run, `?` one character, letters in any case.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| wildcard(rest, &text[i..])),
        Some((b'?', rest)) => !text.is_empty() && wildcard(rest, &text[1..]),
        Some((c, rest)) => {
            text.first().is_some_and(|t| t.eq_ignore_ascii_case(c)) && wildcard(rest, &text[1..])
        }
    }
}

fn matches(pattern: &str, action: &str) -> bool {
    wildcard(pattern.as_bytes(), action.as_bytes())
}

/// Where a case's request comes from: an instance of one of the patterns, or anywhere.
#[derive(Debug, Clone, Copy)]
enum Origin {
    First,
    Second,
    Elsewhere,
}

fn arb_request(
    first: impl Strategy<Value = String>,
    second: impl Strategy<Value = String>,
) -> impl Strategy<Value = (String, String, String)> {
    (
        first,
        second,
        arb_fill(),
        prop_oneof![
            Just(Origin::First),
            Just(Origin::Second),
            Just(Origin::Elsewhere)
        ],
        "(s3|sq|S3|ec2):[GgPp][a-zA-Z]{0,4}",
    )
        .prop_map(|(first, second, fill, origin, elsewhere)| {
            let action = match origin {
                Origin::First => instance(&first, &fill),
                Origin::Second => instance(&second, &fill),
                Origin::Elsewhere => elsewhere,
            };
            (first, second, action)
        })
}

/// Runs `property` over 1,000 cases (a failure is shrunk and its seed kept in
/// evaluation.proptest-regressions, as `proptest!` does), then fails unless every class in
/// `classes` was at least a twentieth of the cases: a class never generated is never tested.
/// (Each class is 10–45% of the cases, so a twentieth leaves no room for chance failures.)
fn check<S: Strategy>(
    strategy: S,
    classes: &[&'static str],
    property: impl Fn(S::Value) -> Result<&'static str, TestCaseError>,
) {
    const CASES: u32 = 1000;
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<&str, u32>::new());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: CASES,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    });
    let outcome = runner.run(&strategy, |value| {
        let class = property(value)?;
        *seen.lock().unwrap().entry(class).or_default() += 1;
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let seen = seen.into_inner().unwrap();
    for class in classes {
        let n = seen.get(class).copied().unwrap_or(0);
        assert!(
            n >= CASES / 20,
            "only {n} of {CASES} cases were {class:?}: {seen:?}"
        );
    }
}

fn decide_with(statements: &str, action: &str) -> Decision {
    let p = identity(statements);
    decide(
        &Request::new(action, "*"),
        &PolicySets::new().with_identity("p", &p),
    )
}

fn allow(pattern_json: &str) -> String {
    format!(r#"{{"Effect":"Allow","Action":{pattern_json},"Resource":"*"}}"#)
}

/// One statement listing actions [a, b] allows exactly what a or b matches, as two statements
/// with a and b do.
#[test]
fn action_lists_are_unions() {
    check(
        arb_request(arb_pattern(), arb_pattern()),
        &["first only", "second only", "both", "neither"],
        |(a, b, action)| {
            let one = decide_with(&allow(&format!(r#"["{a}","{b}"]"#)), &action);
            let two = decide_with(
                &format!(
                    r#"{},{}"#,
                    allow(&format!(r#""{a}""#)),
                    allow(&format!(r#""{b}""#))
                ),
                &action,
            );
            let (in_a, in_b) = (matches(&a, &action), matches(&b, &action));
            let expected = if in_a || in_b {
                Decision::Allowed
            } else {
                Decision::ImplicitDeny
            };
            prop_assert_eq!(one, expected, "[{}, {}] for {}", a, b, action);
            prop_assert_eq!(two, expected, "{} and {} for {}", a, b, action);
            Ok(match (in_a, in_b) {
                (true, false) => "first only",
                (false, true) => "second only",
                (true, true) => "both",
                (false, false) => "neither",
            })
        },
    );
}

/// Action and NotAction with the same pattern split every request between them, along the
/// line the pattern draws.
#[test]
fn not_action_is_the_complement() {
    check(
        arb_request(arb_pattern(), arb_pattern()),
        &["matched", "not matched"],
        |(a, _, action)| {
            let by_action = decide_with(&allow(&format!(r#""{a}""#)), &action).is_allowed();
            let by_not_action = decide_with(
                &format!(r#"{{"Effect":"Allow","NotAction":"{a}","Resource":"*"}}"#),
                &action,
            )
            .is_allowed();
            let expected = matches(&a, &action);
            prop_assert_eq!(by_action, expected, "Action {} for {}", a, action);
            prop_assert_eq!(by_not_action, !expected, "NotAction {} for {}", a, action);
            Ok(if expected { "matched" } else { "not matched" })
        },
    );
}

/// Adding a deny statement removes exactly what it matches: a request the deny matches is
/// explicitly denied (allowed before or not), any other keeps its decision.
#[test]
fn deny_only_removes() {
    // The allow is often `*`, so that many denied requests were allowed before.
    let allows = prop_oneof![Just("*".to_string()), arb_pattern()];
    check(
        arb_request(arb_pattern(), allows),
        &[
            "denied, was allowed",
            "denied, was not allowed",
            "not denied, allowed",
            "not denied, not allowed",
        ],
        |(d, a, action)| {
            let before = decide_with(&allow(&format!(r#""{a}""#)), &action);
            let after = decide_with(
                &format!(
                    r#"{},{{"Effect":"Deny","Action":"{d}","Resource":"*"}}"#,
                    allow(&format!(r#""{a}""#))
                ),
                &action,
            );
            let (allowed, denied) = (matches(&a, &action), matches(&d, &action));
            let expected_before = if allowed {
                Decision::Allowed
            } else {
                Decision::ImplicitDeny
            };
            prop_assert_eq!(before, expected_before, "allow {} for {}", a, action);
            let expected_after = if denied {
                Decision::ExplicitDeny
            } else {
                before
            };
            prop_assert_eq!(after, expected_after, "deny {} for {}", d, action);
            Ok(match (denied, allowed) {
                (true, true) => "denied, was allowed",
                (true, false) => "denied, was not allowed",
                (false, true) => "not denied, allowed",
                (false, false) => "not denied, not allowed",
            })
        },
    );
}

#[test]
fn instances_match_their_pattern_and_the_reference_refuses_others() {
    // The reference matcher itself, on cases worked by hand.
    assert!(matches("s3:G*", "S3:getObject"));
    assert!(matches("*:?et*", "sq:GetQueueUrl"));
    assert!(matches("s?:*", "sq:x"));
    assert!(!matches("s3:G?", "s3:G"));
    assert!(!matches("s3:G*", "sq:Get"));
    assert!(!matches("s3:*t", "s3:GetObjectX"));
    let fill = Fill {
        runs: vec!["ab".into(), String::new()],
        flips: vec![true, false],
    };
    // Runs and flips cycle; a flip only changes letters; `?` takes a run's first character.
    let made = instance("s3:G*?t*", &fill);
    assert_eq!(made, "S3:GabxTab");
    assert!(matches("s3:G*?t*", &made));
}
