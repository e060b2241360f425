//! Output of the JSON protocols, written from a JSON value keyed by the model's member
//! names — keeping only what the model has.
//!
//! Architecture invariant: no member the output shape lacks reaches an answer, in any
//! protocol. The XML writers get this by walking the model; a handler's value may carry
//! internal fields of its stored record (`terminated_at`, `client_token`, who launched an
//! instance), so the JSON writer walks the model the same way instead of printing the
//! value as it is.

use crate::model::{Kind, Model, ShapeId};
use serde_json::{Map, Value};

/// `v` reduced to what shape `shape` has: structures keep their members (by member name),
/// lists and maps their items, scalars themselves.
pub fn shaped(model: &Model, shape: ShapeId, v: &Value) -> Value {
    match (&model.shape(shape).kind, v) {
        (Kind::Structure { members }, Value::Object(obj)) => {
            let mut out = Map::new();
            for m in members {
                if let Some(x) = obj.get(&m.name)
                    && !x.is_null()
                {
                    out.insert(m.name.clone(), shaped(model, m.shape, x));
                }
            }
            Value::Object(out)
        }
        (Kind::List { member }, Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(|i| shaped(model, member.shape, i))
                .collect(),
        ),
        (Kind::Map { value, .. }, Value::Object(obj)) => Value::Object(
            obj.iter()
                .map(|(k, x)| (k.clone(), shaped(model, value.shape, x)))
                .collect(),
        ),
        (Kind::Structure { .. } | Kind::List { .. } | Kind::Map { .. }, _) => Value::Null,
        (_, scalar) => scalar.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;
    use serde_json::json;

    /// The same value, carrying internal fields, through every protocol's writer: none of
    /// them shows what the model lacks.
    #[test]
    fn internal_fields_reach_no_answer_in_any_protocol() {
        let ec2 = service("ec2").unwrap().model();
        let op = ec2.operation("DescribeVpcs").unwrap();
        let value = json!({
            "Vpcs": [{ "VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16",
                       "ClientToken": "secret-token", "TerminatedAt": 12345,
                       "Tags": [{ "Key": "k", "Value": "v", "Internal": "x" }] }],
            "LaunchedBy": "arn:aws:iam::000000000000:user/someone",
        });
        let shaped = shaped(ec2, op.output.unwrap(), &value);
        let text = shaped.to_string();
        for internal in [
            "ClientToken",
            "secret-token",
            "TerminatedAt",
            "Internal",
            "LaunchedBy",
        ] {
            assert!(!text.contains(internal), "{internal} leaked into {text}");
        }
        assert_eq!(shaped["Vpcs"][0]["VpcId"], "vpc-1");
        assert_eq!(shaped["Vpcs"][0]["Tags"][0]["Value"], "v");

        let mut xml = String::new();
        crate::xml::write_members(ec2, op.output.unwrap(), &value, &mut xml);
        for internal in [
            "ClientToken",
            "secret-token",
            "TerminatedAt",
            "Internal",
            "LaunchedBy",
        ] {
            assert!(!xml.contains(internal), "{internal} leaked into {xml}");
        }
        assert!(xml.contains("<vpcId>vpc-1</vpcId>"), "{xml}");

        let iam = service("iam").unwrap().model();
        let op = iam.operation("GetUser").unwrap();
        let value = json!({ "User": { "UserName": "bob", "PasswordHash": "pbkdf2$...",
                                      "UserId": "AIDA", "Arn": "arn", "Path": "/",
                                      "CreateDate": "2020-01-01T00:00:00Z" } });
        let mut xml = String::new();
        crate::xml::write_members(iam, op.output.unwrap(), &value, &mut xml);
        assert!(
            !xml.contains("PasswordHash") && !xml.contains("pbkdf2"),
            "{xml}"
        );
        assert!(xml.contains("<UserName>bob</UserName>"), "{xml}");
    }
}
