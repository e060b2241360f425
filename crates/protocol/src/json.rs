//! Output of the JSON protocols, written from a JSON value keyed by the model's member
//! names — keeping only what the model has.
//!
//! Architecture invariant: no member the output shape lacks reaches an answer, in any
//! protocol. The XML writers get this by walking the model; a handler's value may carry
//! internal fields of its stored record (`terminated_at`, `client_token`, who launched an
//! instance), so the JSON writer walks the model the same way instead of printing the
//! value as it is.

use crate::AwsError;
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

/// Checks a JSON-protocol request's input against its input shape, as AWS's JSON services
/// do before any handler runs: a value of the wrong type is `SerializationException`; a
/// missing required member or a broken length, range or enum constraint is
/// `ValidationException`, every one listed in one message. Members the shape lacks are
/// ignored. Handlers then read input that fits their types.
pub fn check_input(model: &Model, shape: ShapeId, v: &Value) -> Result<(), AwsError> {
    if !v.is_object() {
        return Err(serialization("the request body must be a JSON object"));
    }
    let mut violations = Vec::new();
    check(model, shape, v, "", &mut violations)?;
    if violations.is_empty() {
        return Ok(());
    }
    let n = violations.len();
    let noun = if n == 1 { "error" } else { "errors" };
    Err(AwsError::new(
        "ValidationException",
        format!("{n} validation {noun} detected: {}", violations.join("; ")),
    ))
}

fn serialization(message: impl Into<String>) -> AwsError {
    AwsError::new("SerializationException", message)
}

/// `secretId` from `SecretId`: the name AWS's validation messages use.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn check(
    model: &Model,
    shape: ShapeId,
    v: &Value,
    path: &str,
    out: &mut Vec<String>,
) -> Result<(), AwsError> {
    let s = model.shape(shape);
    let wrong = |what: &str| {
        serialization(format!(
            "{} at '{path}' is not {what}",
            match v {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "a list",
                Value::Object(_) => "an object",
            }
        ))
    };
    let mut violate = |shown: String, constraint: String| {
        out.push(format!(
            "Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}"
        ));
    };
    let length = |len: usize, shown: String, violate: &mut dyn FnMut(String, String)| {
        if let Some(min) = s.min
            && (len as f64) < min
        {
            violate(
                shown.clone(),
                format!("Member must have length greater than or equal to {min}"),
            );
        }
        if let Some(max) = s.max
            && (len as f64) > max
        {
            violate(
                shown,
                format!("Member must have length less than or equal to {max}"),
            );
        }
    };
    match (&s.kind, v) {
        (_, Value::Null) => {}
        (Kind::Structure { members }, Value::Object(obj)) => {
            for m in members {
                let child = if path.is_empty() {
                    lower_first(&m.name)
                } else {
                    format!("{path}.{}", lower_first(&m.name))
                };
                match obj.get(&m.name) {
                    Some(x) if !x.is_null() => check(model, m.shape, x, &child, out)?,
                    _ if m.required => out.push(format!(
                        "Value null at '{child}' failed to satisfy constraint: Member must not \
                         be null"
                    )),
                    _ => {}
                }
            }
        }
        (Kind::List { member }, Value::Array(items)) => {
            length(items.len(), format!("{} items", items.len()), &mut violate);
            for (i, x) in items.iter().enumerate() {
                check(
                    model,
                    member.shape,
                    x,
                    &format!("{path}.{}.member", i + 1),
                    out,
                )?;
            }
        }
        (Kind::Map { key, value }, Value::Object(obj)) => {
            for (k, x) in obj {
                check(model, key.shape, &Value::String(k.clone()), path, out)?;
                check(model, value.shape, x, &format!("{path}.{k}"), out)?;
            }
        }
        (Kind::String, Value::String(text)) => {
            length(text.chars().count(), text.clone(), &mut violate);
            if let Some(allowed) = &s.enum_values
                && !allowed.iter().any(|a| a == text)
            {
                violate(
                    text.clone(),
                    format!(
                        "Member must satisfy enum value set: [{}]",
                        allowed.join(", ")
                    ),
                );
            }
        }
        (Kind::Integer | Kind::Long, Value::Number(n)) => {
            let Some(i) = n.as_i64() else {
                return Err(wrong("an integer"));
            };
            if let Some(min) = s.min
                && (i as f64) < min
            {
                violate(
                    i.to_string(),
                    format!("Member must have value greater than or equal to {min}"),
                );
            }
            if let Some(max) = s.max
                && (i as f64) > max
            {
                violate(
                    i.to_string(),
                    format!("Member must have value less than or equal to {max}"),
                );
            }
        }
        (Kind::Float | Kind::Double, Value::Number(_)) => {}
        (Kind::Boolean, Value::Bool(_)) => {}
        (Kind::Timestamp, Value::Number(_) | Value::String(_)) => {}
        (Kind::Blob, Value::String(b64)) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| serialization(format!("Value at '{path}' is not valid base64")))?;
            length(bytes.len(), "<binary>".into(), &mut violate);
        }
        (Kind::Structure { .. } | Kind::Map { .. }, _) => return Err(wrong("an object")),
        (Kind::List { .. }, _) => return Err(wrong("a list")),
        (Kind::String | Kind::Blob, _) => return Err(wrong("a string")),
        (Kind::Integer | Kind::Long | Kind::Float | Kind::Double, _) => {
            return Err(wrong("a number"));
        }
        (Kind::Boolean, _) => return Err(wrong("a boolean")),
        (Kind::Timestamp, _) => return Err(wrong("a timestamp")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service;
    use serde_json::json;

    #[test]
    fn json_input_is_checked_against_the_model() {
        let sm = service("secretsmanager").unwrap().model();
        let shape = |op: &str| sm.operation(op).unwrap().input.unwrap();
        assert!(check_input(sm, shape("CreateSecret"), &json!({ "Name": "a" })).is_ok());
        let e = check_input(sm, shape("CreateSecret"), &json!({})).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(e.message.contains("Value null at 'name'"), "{}", e.message);
        let e = check_input(sm, shape("CreateSecret"), &json!({ "Name": 5 })).unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = check_input(
            sm,
            shape("ListSecrets"),
            &json!({ "MaxResults": 0, "SortOrder": "up", "Filters": [{ "Key": "x" }] }),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("3 validation errors detected"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("'filters.1.member.key'"),
            "{}",
            e.message
        );
        let e = check_input(
            sm,
            shape("CreateSecret"),
            &json!({ "Name": "a", "SecretBinary": "not base64!" }),
        )
        .unwrap_err();
        assert_eq!(e.code, "SerializationException");
        let e = check_input(sm, shape("CreateSecret"), &json!([1])).unwrap_err();
        assert_eq!(e.code, "SerializationException");
    }

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
