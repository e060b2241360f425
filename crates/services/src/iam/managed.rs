//! AWS managed policies, shipped as data: `data/iam/managed-policies/*.json`, each AWS's
//! published document with its ARN and version, compiled into the binary. They belong to no
//! account (`arn:aws:iam::aws:policy/…`) and cannot be changed.

use serde::Deserialize;
use serde_json::Value;
use std::sync::OnceLock;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsPolicy {
    pub policy_name: String,
    pub arn: String,
    pub path: String,
    #[serde(default)]
    pub policy_id: Option<String>,
    pub default_version_id: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub create_date: Option<String>,
    #[serde(default)]
    pub update_date: Option<String>,
    pub document: Value,
}

const SOURCES: &[&str] = &[
    include_str!("../../../../data/iam/managed-policies/AdministratorAccess.json"),
    include_str!("../../../../data/iam/managed-policies/PowerUserAccess.json"),
    include_str!("../../../../data/iam/managed-policies/ReadOnlyAccess.json"),
    include_str!("../../../../data/iam/managed-policies/IAMFullAccess.json"),
    include_str!("../../../../data/iam/managed-policies/AmazonEC2FullAccess.json"),
    include_str!("../../../../data/iam/managed-policies/AmazonEC2ReadOnlyAccess.json"),
    include_str!("../../../../data/iam/managed-policies/AmazonVPCFullAccess.json"),
    include_str!("../../../../data/iam/managed-policies/AmazonS3FullAccess.json"),
    include_str!("../../../../data/iam/managed-policies/AmazonS3ReadOnlyAccess.json"),
    include_str!("../../../../data/iam/managed-policies/AmazonRDSFullAccess.json"),
    include_str!("../../../../data/iam/managed-policies/AmazonRoute53FullAccess.json"),
    include_str!("../../../../data/iam/managed-policies/ElasticLoadBalancingFullAccess.json"),
    include_str!("../../../../data/iam/managed-policies/AutoScalingFullAccess.json"),
    include_str!("../../../../data/iam/managed-policies/AmazonSSMManagedInstanceCore.json"),
    include_str!("../../../../data/iam/managed-policies/ViewOnlyAccess.json"),
];

/// Every AWS managed policy kumori carries.
pub fn all() -> &'static [AwsPolicy] {
    static ALL: OnceLock<Vec<AwsPolicy>> = OnceLock::new();
    ALL.get_or_init(|| {
        SOURCES
            .iter()
            .map(|s| serde_json::from_str(s).expect("the bundled managed policies are valid"))
            .collect()
    })
}

/// The AWS managed policy with `arn`.
pub fn by_arn(arn: &str) -> Option<&'static AwsPolicy> {
    all().iter().find(|p| p.arn == arn)
}

/// Its document as text, as IAM hands it out.
pub fn document_text(p: &AwsPolicy) -> String {
    p.document.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_bundled_policy_parses_and_is_arn_addressed() {
        let all = super::all();
        assert_eq!(all.len(), super::SOURCES.len());
        for p in all {
            assert_eq!(
                p.arn,
                format!("arn:aws:iam::aws:policy{}{}", p.path, p.policy_name)
            );
            assert!(p.document["Statement"].is_array() || p.document["Statement"].is_object());
        }
    }
}
