//! The service kit: what every service shares, so that adding an operation is one line in
//! its service's table and adding a service is one table more.
//!
//! Each service declares its operations once, as a table of `(name, handler)` built with
//! [`operations!`]. Dispatch, `/_kumori/health` (implemented / total per service) and the
//! tests all read those tables; a test checks that every name in them is an operation of the
//! service's model, so a misspelled name fails the build's tests instead of silently
//! answering `NotImplemented`.

use crate::{Ctx, Result};
use kumori_protocol::Output;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

/// What a handler's call is, boxed so that handlers of every shape fit one table.
pub type BoxFuture<'a> = Pin<Box<dyn Future<Output = Result<Output>> + Send + 'a>>;
/// A handler as the table holds it.
pub type Handler = for<'a> fn(&'a Ctx<'a>, &'a Value) -> BoxFuture<'a>;

/// One operation a service implements.
pub struct Op {
    /// The operation's name in the service's model (`CreateVpc`).
    pub name: &'static str,
    pub handler: Handler,
}

/// A table of operations: `operations!["CreateVpc" => vpc::create_vpc, …]`. Each handler
/// is an `async fn(&Ctx, &Value) -> Result<T>` where `T` is a JSON value or an [`Output`].
#[macro_export]
macro_rules! operations {
    ($($name:literal => $handler:path),* $(,)?) => {
        &[$(
            $crate::kit::Op {
                name: $name,
                handler: {
                    fn call<'a>(
                        ctx: &'a $crate::Ctx<'a>,
                        input: &'a ::serde_json::Value,
                    ) -> $crate::kit::BoxFuture<'a> {
                        Box::pin(async move { $handler(ctx, input).await.map(Into::into) })
                    }
                    call
                },
            }
        ),*]
    };
}

/// What runs before every operation of a service (EC2 makes the region's default VPC).
pub type BeforeFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;
pub type Before = for<'a> fn(&'a Ctx<'a>, &'a str) -> BeforeFuture<'a>;

/// A tag, as every service's model has it (`Key`, `Value`). EC2 lets `Value` be left out,
/// meaning empty; services whose model requires it have it checked by the protocol layer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// The tags of one resource, as the store's table holds them (in the order `set_tags` gave
/// them, else by key).
pub async fn tags_of(
    tx: &mut kumori_store::Tx,
    s: kumori_store::Scope<'_>,
    id: &str,
) -> kumori_store::Result<Vec<Tag>> {
    Ok(tx
        .tags_of(s, id)
        .await?
        .into_iter()
        .map(Tag::from)
        .collect())
}

/// The tags of every resource of one type, by resource id.
pub async fn tags_by_resource(
    tx: &mut kumori_store::Tx,
    s: kumori_store::Scope<'_>,
    resource_type: &str,
) -> kumori_store::Result<std::collections::HashMap<String, Vec<Tag>>> {
    let mut map: std::collections::HashMap<String, Vec<Tag>> = Default::default();
    for row in tx.tags(s, Some(resource_type)).await? {
        map.entry(row.resource_id.clone())
            .or_default()
            .push(row.into());
    }
    Ok(map)
}

impl From<kumori_store::TagRow> for Tag {
    fn from(t: kumori_store::TagRow) -> Tag {
        Tag {
            key: t.key,
            value: t.value,
        }
    }
}

/// A service kumori serves: its model's name and its tables (one per resource family).
pub struct Service {
    pub name: &'static str,
    pub tables: &'static [&'static [Op]],
    pub before: Option<Before>,
    /// The region every call works in, for a service whose calls ignore the request's region
    /// (none today: IAM keeps the request's region for its ARNs' partition and stores under
    /// `global` through its own scope).
    pub region: Option<&'static str>,
    /// The resource ARNs a call is authorized against under `--auth enforce` (none: `*`).
    pub resources: Option<Resources>,
}

/// How a service names the resources of a call, for authorization.
pub type Resources = fn(&Ctx<'_>, &crate::Caller, &kumori_protocol::Call) -> Vec<String>;

impl Service {
    pub fn operations(&self) -> impl Iterator<Item = &'static Op> {
        self.tables.iter().flat_map(|t| t.iter())
    }
}

/// Every service kumori implements operations of.
pub static SERVICES: &[&Service] = &[
    &crate::ec2::operations::SERVICE,
    &crate::iam::SERVICE,
    &crate::sts::SERVICE,
    &crate::elbv2::SERVICE,
    &crate::autoscaling::SERVICE,
    &crate::rds::SERVICE,
    &crate::secretsmanager::SERVICE,
    &crate::route53::SERVICE,
];

type Index = HashMap<(&'static str, &'static str), (&'static Service, Handler)>;

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    SERVICES
        .iter()
        .flat_map(|s| {
            s.operations()
                .map(move |op| ((s.name, op.name), (*s, op.handler)))
        })
        .collect()
});

/// Runs `service`'s operation `op`; `None` when kumori does not implement it.
pub async fn run(ctx: &Ctx<'_>, service: &str, op: &str, input: &Value) -> Option<Result<Output>> {
    let (svc, handler) = INDEX.get(&(service, op)).copied()?;
    let ctx = Ctx {
        region: svc.region.unwrap_or(ctx.region),
        ..*ctx
    };
    if let Some(before) = svc.before
        && let Err(e) = before(&ctx, op).await
    {
        return Some(Err(e));
    }
    Some(handler(&ctx, input).await)
}

/// How many of each service's operations kumori implements, for `/_kumori/health`.
pub fn implemented(service: &str) -> usize {
    SERVICES
        .iter()
        .find(|s| s.name == service)
        .map_or(0, |s| s.operations().count())
}

/// One page of `items`, which come in the order of `key`: those after the key `after` (the
/// previous page's last), at most `max`, and the key to continue after when more remain.
/// Both of
/// AWS's paging styles are this: EC2's opaque `NextToken` and IAM's `Marker` with
/// `IsTruncated` differ only in how they show the key.
pub fn page<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    after: Option<&str>,
    max: Option<usize>,
) -> (Vec<T>, Option<String>) {
    if let Some(a) = after {
        items.retain(|i| key(i).as_str() > a);
    }
    match max {
        Some(max) if items.len() > max.max(1) => {
            items.truncate(max.max(1));
            let last = items.last().map(&key);
            (items, last)
        }
        _ => (items, None),
    }
}

/// A deserializer that notes which members a handler's input struct asks for, so a test can
/// check them against the model: a misspelled field would otherwise silently read nothing.
#[cfg(test)]
pub(crate) mod recording {
    use serde::de::{Deserializer, Visitor};
    use serde_json::Value;
    use std::cell::RefCell;

    thread_local! {
        pub static ASKED: RefCell<Vec<&'static [&'static str]>> = const { RefCell::new(Vec::new()) };
    }

    /// Wraps the decoded input; records the top-level struct's fields, defers the rest.
    pub struct Recorder<'a>(pub &'a Value);

    impl<'de> Deserializer<'de> for &Recorder<'de> {
        type Error = serde_json::Error;

        fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
            self.0.deserialize_any(v)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            fields: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Self::Error> {
            ASKED.with(|a| a.borrow_mut().push(fields));
            self.0.deserialize_struct(name, fields, v)
        }

        fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
            self.0.deserialize_option(v)
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            v: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.deserialize_enum(name, variants, v)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf unit unit_struct newtype_struct seq tuple
            tuple_struct map identifier ignored_any
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every handler, called with an empty input, asks only for members the model has (by
    /// the model's member names): a misspelled field would silently read nothing.
    #[tokio::test]
    async fn input_structs_ask_only_for_members_the_model_has() {
        let store = kumori_store::Store::open_memory().await.unwrap();
        let limits = crate::Limits::default();
        let ctx = Ctx::root(&store, "000000000000", "us-east-1", &limits);
        let mut checked = 0;
        let mut wrong = Vec::new();
        let members_of = |model: &kumori_protocol::Model, op: &str| -> Vec<String> {
            let operation = model.operation(op).unwrap();
            match operation.input.map(|i| &model.shape(i).kind) {
                Some(kumori_protocol::model::Kind::Structure { members }) => {
                    members.iter().map(|m| m.name.clone()).collect()
                }
                _ => Vec::new(),
            }
        };
        for s in SERVICES {
            let model = kumori_protocol::model::service(s.name).unwrap().model();
            // A struct shared by sibling operations (Create/Delete, Stop/Start) may carry a
            // member of a sibling; a member of no operation at all is a misspelling.
            let anywhere: std::collections::HashSet<String> = s
                .operations()
                .flat_map(|op| members_of(model, op.name))
                .collect();
            for op in s.operations() {
                recording::ASKED.with(|a| a.borrow_mut().clear());
                let _ = run(&ctx, s.name, op.name, &serde_json::json!({})).await;
                let asked = recording::ASKED.with(|a| a.borrow_mut().split_off(0));
                let members = members_of(model, op.name);
                for fields in asked {
                    checked += 1;
                    for f in fields {
                        if !members.iter().any(|m| m == f) && !anywhere.contains(*f) {
                            wrong.push(format!("{}:{} asks for {f}", s.name, op.name));
                        }
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "members the model does not have:\n{}",
            wrong.join("\n")
        );
        assert!(checked > 200, "only {checked} input structs were seen");
    }

    #[test]
    fn pages_cover_everything_once_in_order() {
        let items: Vec<u32> = (0..23).collect();
        let key = |i: &u32| format!("{i:03}");
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, next) = page(items.clone(), key, after.as_deref(), Some(5));
            assert!(page.len() <= 5);
            seen.extend(page);
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, (0..23).collect::<Vec<_>>());
        assert_eq!(page(items, key, None, None).0.len(), 23);
    }

    #[test]
    fn every_table_names_real_operations_once() {
        let mut seen = std::collections::HashSet::new();
        for s in SERVICES {
            let model = kumori_protocol::model::service(s.name)
                .unwrap_or_else(|| panic!("{} is not a vendored service", s.name))
                .model();
            for op in s.operations() {
                assert!(
                    model.operation(op.name).is_some(),
                    "{}:{} is not an operation of the model (misspelled?)",
                    s.name,
                    op.name
                );
                assert!(
                    seen.insert((s.name, op.name)),
                    "{}:{} twice",
                    s.name,
                    op.name
                );
            }
        }
        assert!(implemented("ec2") > 150 && implemented("iam") > 50 && implemented("sts") == 5);
    }
}
