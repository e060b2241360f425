//! Forgetting terminated instances for good. Describes stop showing one an hour after its
//! termination (`Instance::gone`); its record stays a day, because AWS honours a launch's
//! client token for at least 24 hours after the instance is terminated, and is then deleted
//! by the housekeeping sweep (`crate::housekeeping`), so that stores do not grow forever.

use super::{Instance, TERMINATED_VISIBLE_SECS};
use crate::resource::Resource;
use kumori_store::{Scope, Store, StoreError};

/// How long a terminated instance's record is kept, from its termination.
pub const TERMINATED_KEPT_SECS: u64 = 24 * 3600;

const _: () = assert!(TERMINATED_KEPT_SECS >= TERMINATED_VISIBLE_SECS);

/// Deletes, in every account and region, the instances terminated at least
/// [`TERMINATED_KEPT_SECS`] before `now` (seconds since the epoch): one write transaction per
/// region, reading only terminated instances. Answers how many went.
pub async fn sweep_terminated(store: &Store, now: u64) -> Result<usize, StoreError> {
    let scopes = store.read().await?.scopes_with(Instance::KIND).await?;
    let mut gone = 0;
    for (account, region) in scopes {
        let s = Scope {
            account: &account,
            region: &region,
        };
        let mut tx = store.write().await?;
        let terminated = tx
            .find_where(s, Instance::KIND, "State", "terminated")
            .await?;
        for r in terminated {
            let Ok(i) = serde_json::from_str::<Instance>(&r.body) else {
                continue; // not ours to judge: left as it is
            };
            if i.terminated_at
                .is_some_and(|t| now >= t + TERMINATED_KEPT_SECS)
                && tx.delete(s, &i.instance_id).await?
            {
                gone += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec2::api::{LaunchPlan, launch, terminate};
    use crate::{Ctx, Limits};

    #[tokio::test]
    async fn terminated_instances_go_a_day_later_and_live_ones_stay() {
        let store = Store::open_memory().await.unwrap();
        let limits = Limits::default();
        let ctx = Ctx::root(&store, "000000000000", "us-east-1", &limits);
        crate::ec2::network::default_vpc::ensure(&ctx)
            .await
            .unwrap();
        let image = kumori_catalog::public_images("us-east-1")
            .into_iter()
            .find(|i| i["Architecture"] == "x86_64")
            .map(|i| i["ImageId"].as_str().unwrap().to_string());
        let plan = LaunchPlan {
            count: 3,
            image_id: image,
            instance_type: Some("t3.micro".into()),
            ..Default::default()
        };
        let ids = launch(&ctx, &plan).await.unwrap().instance_ids;
        terminate(&ctx, &ids[..2]).await.unwrap();
        // Terminated at known times, 100 s apart.
        let at = 1_800_000_000;
        let s = ctx.scope();
        let mut tx = store.write().await.unwrap();
        for (n, id) in ids.iter().enumerate().take(2) {
            let r = tx.get(s, id).await.unwrap().unwrap();
            let mut i: Instance = serde_json::from_str(&r.body).unwrap();
            i.terminated_at = Some(at + n as u64 * 100);
            let body = serde_json::to_string(&i).unwrap();
            tx.update(s, &kumori_store::Record { body, ..r })
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let sweep = |now| sweep_terminated(&store, now);
        assert_eq!(sweep(at + TERMINATED_KEPT_SECS - 1).await.unwrap(), 0);
        assert_eq!(sweep(at + TERMINATED_KEPT_SECS).await.unwrap(), 1);
        assert_eq!(sweep(at + 10 * TERMINATED_KEPT_SECS).await.unwrap(), 1);
        let mut tx = store.read().await.unwrap();
        let left: Vec<String> = tx
            .list(s, "instance")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, [ids[2].clone()], "the running one stays");
    }
}
