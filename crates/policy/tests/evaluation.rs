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

fn arb_action() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        ("[sS][3q]", "[GgPp*?][a-z*]{0,3}").prop_map(|(s, a)| format!("{s}:{a}")),
    ]
}

proptest! {
    /// One statement listing actions [a, b] allows exactly what two statements with a and b
    /// allow between them.
    #[test]
    fn action_lists_are_unions(a in arb_action(), b in arb_action(), svc in "s[3q]", act in "[GgPp][a-z]{0,4}") {
        let one = identity(&format!(r#"{{"Effect":"Allow","Action":["{a}","{b}"],"Resource":"*"}}"#));
        let two = identity(&format!(
            r#"{{"Effect":"Allow","Action":"{a}","Resource":"*"}},{{"Effect":"Allow","Action":"{b}","Resource":"*"}}"#
        ));
        let req = Request::new(format!("{svc}:{act}"), "*");
        prop_assert_eq!(
            decide(&req, &PolicySets::new().with_identity("one", &one)),
            decide(&req, &PolicySets::new().with_identity("two", &two))
        );
    }

    /// Action and NotAction with the same list split every request between them.
    #[test]
    fn not_action_is_the_complement(a in arb_action(), svc in "s[3q]", act in "[GgPp][a-z]{0,4}") {
        let action = identity(&format!(r#"{{"Effect":"Allow","Action":"{a}","Resource":"*"}}"#));
        let not_action = identity(&format!(r#"{{"Effect":"Allow","NotAction":"{a}","Resource":"*"}}"#));
        let req = Request::new(format!("{svc}:{act}"), "*");
        let by_action = decide(&req, &PolicySets::new().with_identity("a", &action)).is_allowed();
        let by_not_action = decide(&req, &PolicySets::new().with_identity("n", &not_action)).is_allowed();
        prop_assert!(by_action != by_not_action);
    }

    /// Adding a deny statement never turns a denial into an allow, and adding an allow never
    /// turns an allow into a denial.
    #[test]
    fn deny_only_removes(a in arb_action(), d in arb_action(), svc in "s[3q]", act in "[GgPp][a-z]{0,4}") {
        let allow = identity(&format!(r#"{{"Effect":"Allow","Action":"{a}","Resource":"*"}}"#));
        let both = identity(&format!(
            r#"{{"Effect":"Allow","Action":"{a}","Resource":"*"}},{{"Effect":"Deny","Action":"{d}","Resource":"*"}}"#
        ));
        let req = Request::new(format!("{svc}:{act}"), "*");
        let before = decide(&req, &PolicySets::new().with_identity("a", &allow));
        let after = decide(&req, &PolicySets::new().with_identity("b", &both));
        if after == Decision::Allowed {
            prop_assert_eq!(before, Decision::Allowed);
        }
        if before == Decision::ImplicitDeny {
            prop_assert_ne!(after, Decision::Allowed);
        }
    }
}
