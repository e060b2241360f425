//! The loop that runs kumori's own work (`kumori_services::housekeeping`) in the background of
//! a server: a round every `EVERY`, under the store's lease, so that among nodes sharing a
//! database one does it at a time. Failures (the database away) are logged and retried at
//! the next round; they never stop the server.

use kumori_services::housekeeping;
use kumori_store::Store;

/// Starts the loop; it ends with the runtime. `holder` names this process in the lease.
pub fn spawn_housekeeping(store: Store) -> tokio::task::JoinHandle<()> {
    let holder = format!("kumori-{}-{}", std::process::id(), uuid::Uuid::new_v4());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(housekeeping::EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            match housekeeping::round(&store, &holder, now).await {
                Ok((_, 0)) => {}
                Ok((_, gone)) => tracing::info!("housekeeping: {gone} old records deleted"),
                Err(e) => tracing::warn!("housekeeping: {e}"),
            }
        }
    })
}

/// Starts Auto Scaling's loop: a round every `EVERY` under its own lease, so that among
/// nodes sharing a database one keeps the groups at a time, and another takes over within
/// the lease's time when it dies.
pub fn spawn_autoscaling(
    store: Store,
    limits: kumori_services::Limits,
) -> tokio::task::JoinHandle<()> {
    use kumori_services::autoscaling::reconcile;
    let holder = format!("kumori-{}-{}", std::process::id(), uuid::Uuid::new_v4());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(reconcile::EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = reconcile::round(&store, &limits, &holder).await {
                tracing::warn!("autoscaling: {e}");
            }
        }
    })
}
