//! Work kumori does on its own, not in answer to a call: one process at a time, whichever
//! holds the store's `housekeeping` lease, so that nodes sharing a database neither repeat
//! nor race it, and another node takes over within a lease's time when the holder dies.
//! Today: deleting the records of instances terminated a day ago, and secrets whose
//! scheduled deletion is due. Auto Scaling
//! (`autoscaling::reconcile`) and load-balancer health (the server's `balancers.rs`) run
//! under leases of their own.

use kumori_store::{Store, StoreError};
use std::time::Duration;

/// The lease's name in the store.
pub const LEASE: &str = "housekeeping";
/// How often the holder sweeps (and renews), and how long a lease lasts without renewal.
pub const EVERY: Duration = Duration::from_secs(60);
pub const LEASE_TTL: Duration = Duration::from_secs(180);

/// One round: takes or renews the lease for `holder` and, holding it, sweeps. Answers
/// whether it held the lease and how many records went.
pub async fn round(store: &Store, holder: &str, now: u64) -> Result<(bool, usize), StoreError> {
    if !store.lease(LEASE, holder, LEASE_TTL).await? {
        return Ok((false, 0));
    }
    let gone = crate::ec2::compute::instances::sweep_terminated(store, now).await?;
    let secrets = crate::secretsmanager::sweep(store, now as f64).await?;
    Ok((true, gone + secrets))
}
