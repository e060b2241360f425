//! Machinery every EC2 resource shares: tags, filters, pagination and DryRun.

use crate::{Ctx, Error, Result};
use base64::Engine;
use kumori_protocol::AwsError;
use kumori_store::{TagRow, Tx};
use serde::Deserialize;
use std::collections::HashMap;

pub use crate::kit::Tag;

/// A tag as DeleteTags takes it: without a value it matches any value.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagPattern {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagSpecification {
    pub resource_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// `{ Value: bool }`, as Modify*Attribute calls take each attribute.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BoolValue {
    pub value: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub name: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// `DryRunOperation` (HTTP 412) when the caller only asked whether the call would succeed.
/// Handlers call it after every check and before changing anything.
pub fn dry_run(flag: Option<bool>) -> Result<()> {
    if flag == Some(true) {
        return Err(Error(
            AwsError::new(
                "DryRunOperation",
                "Request would have succeeded, but DryRun flag is set.",
            )
            .with_status(412),
        ));
    }
    Ok(())
}

pub fn invalid_value(message: impl Into<String>) -> Error {
    Error::new("InvalidParameterValue", message)
}

/// Checks one tag as EC2 does: key 1–128 characters, value up to 256, no `aws:` prefix.
pub fn validate_tag(t: &Tag) -> Result<()> {
    if t.key.is_empty() || t.key.chars().count() > 128 {
        return Err(invalid_value(format!(
            "Tag key '{}' is invalid: a tag key must have 1 to 128 characters.",
            t.key
        )));
    }
    if t.value.chars().count() > 256 {
        return Err(invalid_value(format!(
            "Tag value for key '{}' is invalid: a tag value can have at most 256 characters.",
            t.key
        )));
    }
    if t.key.to_ascii_lowercase().starts_with("aws:") {
        return Err(invalid_value(
            "Tag keys starting with 'aws:' are reserved for internal use",
        ));
    }
    Ok(())
}

/// AWS allows 50 tags on one resource.
pub const MAX_TAGS: usize = 50;

/// The tags a create call's `TagSpecification`s give a resource of `resource_type`.
pub fn tags_from_specs(specs: &[TagSpecification], resource_type: &str) -> Result<Vec<Tag>> {
    let mut tags: Vec<Tag> = Vec::new();
    for spec in specs {
        match spec.resource_type.as_deref() {
            Some(t) if t == resource_type => {}
            Some(t) => {
                return Err(invalid_value(format!(
                    "'{t}' is not a valid taggable resource type for this operation."
                )));
            }
            None => {
                return Err(Error::new(
                    "MissingParameter",
                    "The request must contain the parameter ResourceType",
                ));
            }
        }
        if spec.tags.is_empty() {
            return Err(invalid_value(
                "Tag specification must have at least one tag",
            ));
        }
        for t in &spec.tags {
            validate_tag(t)?;
            tags.retain(|x| x.key != t.key);
            tags.push(t.clone());
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(Error::new(
            "TagLimitExceeded",
            "The maximum number of Tags for a resource has been reached.",
        ));
    }
    Ok(tags)
}

pub async fn put_tags(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    id: &str,
    resource_type: &str,
    tags: &[Tag],
) -> Result<()> {
    for t in tags {
        let row = TagRow {
            resource_id: id.to_string(),
            resource_type: resource_type.to_string(),
            key: t.key.clone(),
            value: t.value.clone(),
        };
        tx.put_tag(ctx.scope(), &row).await?;
    }
    Ok(())
}

/// The tags of one resource.
pub async fn tags_of(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Vec<Tag>> {
    Ok(crate::kit::tags_of(tx, ctx.scope(), id).await?)
}

/// Tags of every resource of one type, by resource id.
pub async fn tags_by_resource(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    resource_type: &str,
) -> Result<HashMap<String, Vec<Tag>>> {
    Ok(crate::kit::tags_by_resource(tx, ctx.scope(), resource_type).await?)
}

/// Glob match as EC2 filters do it: `*` any run of characters, `?` exactly one; a backslash
/// makes the next character literal (`\*` a star, `\\` a backslash).
pub fn glob(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    if pattern.contains('\\') {
        return glob_escaped(pattern, text);
    }
    // `?` is one character: compare bytes where both are ASCII (ids, addresses, most
    // names), characters otherwise.
    if pattern.is_ascii() && text.is_ascii() {
        glob_units(pattern.as_bytes(), text.as_bytes(), b'*', b'?')
    } else {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        glob_units(&p, &t, '*', '?')
    }
}

/// One unit of a pattern with escapes.
#[derive(Clone, Copy, PartialEq)]
enum Unit {
    Lit(char),
    Star,
    One,
}

/// [`glob`] for a pattern holding backslash escapes: the same walk over parsed units.
fn glob_escaped(pattern: &str, text: &str) -> bool {
    let mut units = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        units.push(match c {
            '\\' => Unit::Lit(chars.next().unwrap_or('\\')),
            '*' => Unit::Star,
            '?' => Unit::One,
            c => Unit::Lit(c),
        });
    }
    let text: Vec<Unit> = text.chars().map(Unit::Lit).collect();
    // Text units are all literals, so the pattern's Star and One never equal one.
    glob_units(&units, &text, Unit::Star, Unit::One)
}

/// Wildcard matching with one backtrack point: linear for the patterns people write,
/// O(pattern × text) at worst, and texts are short.
fn glob_units<T: PartialEq + Copy>(p: &[T], t: &[T], star: T, one: T) -> bool {
    // Quick refusal: the text must hold at least the pattern's non-star units.
    if p.iter().filter(|c| **c != star).count() > t.len() {
        return false;
    }
    let (mut pi, mut ti) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != star && (p[pi] == one || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == star {
            back = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = back {
            pi = sp + 1;
            ti = st + 1;
            back = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == star)
}

/// EC2 takes at most 200 filter values in one call (`FilterLimitExceeded`).
pub const MAX_FILTER_VALUES: usize = 200;
/// The longest filter value kumori takes: longer than any field it can match (tag values are
/// at most 256 characters, descriptions 255), short enough that matching stays cheap.
pub const MAX_FILTER_VALUE_LEN: usize = 1024;

/// A resource that EC2 filters can look at.
pub trait Filterable {
    /// Filter names the Describe call documents, besides the tag filters every resource has.
    const FILTERS: &'static [&'static str];
    /// The values of one field; the filter matches if any of them matches any filter value.
    fn field(&self, name: &str) -> Vec<String>;
}

/// Refuses filter names the resource does not know, as EC2 does.
pub fn check_filters<R: Filterable>(filters: &[Filter]) -> Result<()> {
    check_filter_sizes(filters)?;
    for f in filters {
        let known = R::FILTERS.contains(&f.name.as_str())
            || f.name == "tag-key"
            || f.name == "tag-value"
            || f.name.starts_with("tag:");
        if !known {
            return Err(invalid_value(format!("The filter '{}' is invalid", f.name)));
        }
    }
    Ok(())
}

/// Refuses more filter values than EC2 takes in one call, or a value longer than any field.
pub fn check_filter_sizes(filters: &[Filter]) -> Result<()> {
    let values: usize = filters.iter().map(|f| f.values.len()).sum();
    if values > MAX_FILTER_VALUES {
        return Err(Error::new(
            "FilterLimitExceeded",
            format!(
                "The maximum number of filter values specified on a single call is \
                 {MAX_FILTER_VALUES}"
            ),
        ));
    }
    if let Some(long) = filters
        .iter()
        .flat_map(|f| f.values.iter().map(move |v| (f, v)))
        .find(|(_, v)| v.chars().count() > MAX_FILTER_VALUE_LEN)
    {
        return Err(invalid_value(format!(
            "A value of the filter '{}' is {} characters long; filter values are at most \
             {MAX_FILTER_VALUE_LEN}.",
            long.0.name,
            long.1.chars().count()
        )));
    }
    Ok(())
}

/// Whether `item` with `tags` passes every filter (filters AND, values OR).
pub fn matches<R: Filterable>(item: &R, tags: &[Tag], filters: &[Filter]) -> bool {
    filters.iter().all(|f| {
        let fields: Vec<String> = if let Some(key) = f.name.strip_prefix("tag:") {
            tags.iter()
                .filter(|t| t.key == key)
                .map(|t| t.value.clone())
                .collect()
        } else if f.name == "tag-key" {
            tags.iter().map(|t| t.key.clone()).collect()
        } else if f.name == "tag-value" {
            tags.iter().map(|t| t.value.clone()).collect()
        } else {
            item.field(&f.name)
        };
        f.values.iter().any(|v| fields.iter().any(|x| glob(v, x)))
    })
}

/// Filter values read from a JSON document (catalogue entries answered as they are): the
/// texts at `path`, one per element of any list on the way.
pub fn json_values(v: &serde_json::Value, path: &[&str], out: &mut Vec<String>) {
    use serde_json::Value;
    match (v, path.split_first()) {
        (Value::Array(items), _) => items.iter().for_each(|i| json_values(i, path, out)),
        (_, Some((head, rest))) => {
            if let Some(next) = v.get(*head) {
                json_values(next, rest, out);
            }
        }
        (Value::String(s), None) => out.push(s.clone()),
        (Value::Null, None) => {}
        (other, None) => out.push(other.to_string()),
    }
}

/// The names of a `(filter name, path)` table, as `Filterable::FILTERS` wants them.
macro_rules! filter_names {
    ($paths:expr) => {
        &{
            const N: usize = $paths.len();
            let mut names = [""; N];
            let mut i = 0;
            while i < N {
                names[i] = $paths[i].0;
                i += 1;
            }
            names
        }
    };
}
pub(crate) use filter_names;

/// A Describe answer: the page under `member` (`Vpcs`), and `NextToken` when there is more.
/// Built by moving the items in: `json!` would deep-copy every one of them.
pub fn page_output(
    member: &str,
    items: Vec<serde_json::Value>,
    next: Option<String>,
) -> serde_json::Value {
    let mut out = serde_json::Map::with_capacity(2);
    out.insert(member.to_string(), serde_json::Value::Array(items));
    if let Some(t) = next {
        out.insert("NextToken".into(), serde_json::Value::String(t));
    }
    serde_json::Value::Object(out)
}

/// One page of `items` (already ordered by `key`): the items after `next_token`, at most
/// `max_results` of them, and the token for the page after.
pub fn paginate<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>)> {
    let after = match next_token {
        None | Some("") => None,
        Some(tok) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(tok)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    invalid_value(format!("Invalid value '{tok}' for parameter NextToken."))
                })?,
        ),
    };
    let max = max_results.map(|m| m.max(1) as usize);
    let (page, last) = crate::kit::page(items, key, after.as_deref(), max);
    Ok((
        page,
        last.map(|l| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(l)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_wildcards_match_literally() {
        assert!(glob("a\\*b", "a*b"));
        assert!(!glob("a\\*b", "axb"));
        assert!(glob("web\\?*", "web?-1"));
        assert!(!glob("web\\?*", "webx-1"));
        assert!(glob("c:\\\\*", "c:\\dir"));
    }

    #[test]
    fn globs() {
        assert!(glob("vpc-*", "vpc-0123"));
        assert!(glob("10.0.?.0/24", "10.0.1.0/24"));
        assert!(!glob("10.0.?.0/24", "10.0.12.0/24"));
        assert!(glob("*web*", "my-web-1"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
    }

    #[test]
    fn pages_cover_everything_once() {
        let items: Vec<String> = (0..23).map(|i| format!("id-{i:03}")).collect();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) =
                paginate(items.clone(), |s| s.clone(), Some(5), token.as_deref()).unwrap();
            assert!(page.len() <= 5);
            seen.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(paginate(items, |s| s.clone(), Some(5), Some("%%%")).is_err());
    }

    #[test]
    fn tag_rules() {
        assert!(
            validate_tag(&Tag {
                key: "aws:foo".into(),
                value: String::new()
            })
            .is_err()
        );
        assert!(
            validate_tag(&Tag {
                key: "k".repeat(129),
                value: String::new()
            })
            .is_err()
        );
        assert!(
            validate_tag(&Tag {
                key: "Name".into(),
                value: "v".repeat(256)
            })
            .is_ok()
        );
        let spec = TagSpecification {
            resource_type: Some("subnet".into()),
            tags: vec![],
        };
        assert!(tags_from_specs(&[spec], "vpc").is_err());
    }
}
