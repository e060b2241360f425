//! Health checks as ELB runs them: every interval, an HTTP GET of the path (or a TCP
//! connect) with the timeout; a target becomes healthy after `healthy_threshold` successes
//! in a row and unhealthy after `unhealthy_threshold` failures in a row, and says why in
//! ELB's reason codes.

use crate::{HEALTHY, HealthCheck, TargetCell, UNHEALTHY};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Why one check failed, in ELB's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: &'static str,
    pub description: String,
}

/// Whether `status` is one the matcher accepts (`200`, `200,202`, `200-299`).
pub fn matches(matcher: &str, status: u16) -> bool {
    matcher
        .split(',')
        .any(|part| match part.trim().split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (lo.parse().unwrap_or(0), hi.parse().unwrap_or(0));
                (lo..=hi).contains(&status)
            }
            None => part.trim().parse() == Ok(status),
        })
}

/// One check of `addr` (its port replaced by the check's own, if set).
pub async fn check_once(
    addr: SocketAddr,
    hc: &HealthCheck,
    dialer: &crate::Dialer,
) -> Result<(), Failure> {
    let addr = SocketAddr::new(addr.ip(), hc.port.unwrap_or(addr.port()));
    if !dialer.may_reach(addr) {
        return Err(Failure {
            reason: "Target.FailedHealthChecks",
            description: format!(
                "Health checks failed: without --dataplane nothing runs at {}, and kumori checks only loopback targets from this machine",
                addr.ip()
            ),
        });
    }
    let timeout = || Failure {
        reason: "Target.Timeout",
        description: "Request timed out".into(),
    };
    let failed = || Failure {
        reason: "Target.FailedHealthChecks",
        description: "Health checks failed".into(),
    };
    if !hc.http {
        return match tokio::time::timeout(hc.timeout, dialer.connect(addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(failed()),
            Err(_) => Err(timeout()),
        };
    }
    // A connection of its own for each check, as ELB's checkers open one: a target that
    // stopped taking connections fails, whatever connections it still serves.
    let request = hyper::Request::get(hc.path.as_str())
        .header("host", addr.to_string())
        .header("user-agent", "ELB-HealthChecker/2.0")
        .header("connection", "close")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|_| failed())?;
    let check = async {
        let stream = dialer.connect(addr).await.map_err(|_| failed())?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|_| failed())?;
        tokio::spawn(connection);
        sender.send_request(request).await.map_err(|_| failed())
    };
    match tokio::time::timeout(hc.timeout, check).await {
        Err(_) => Err(timeout()),
        Ok(Err(f)) => Err(f),
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            if matches(&hc.matcher, status) {
                Ok(())
            } else {
                Err(Failure {
                    reason: "Target.ResponseCodeMismatch",
                    description: format!("Health checks failed with these codes: [{status}]"),
                })
            }
        }
    }
}

/// Checks one target for as long as the task lives, keeping `cell` up to date.
pub async fn run(addr: SocketAddr, hc: HealthCheck, cell: Arc<TargetCell>, dialer: crate::Dialer) {
    let (mut ok_run, mut fail_run) = (0u32, 0u32);
    let mut every = tokio::time::interval(hc.interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match check_once(addr, &hc, &dialer).await {
            Ok(()) => {
                ok_run += 1;
                fail_run = 0;
                if ok_run >= hc.healthy_threshold {
                    cell.state.store(HEALTHY, Ordering::Relaxed);
                }
            }
            Err(f) => {
                fail_run += 1;
                ok_run = 0;
                if let Ok(mut d) = cell.detail.lock() {
                    *d = (Some(f.reason), Some(f.description));
                }
                if fail_run >= hc.unhealthy_threshold {
                    cell.state.store(UNHEALTHY, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matchers_take_lists_and_ranges() {
        assert!(super::matches("200", 200));
        assert!(!super::matches("200", 204));
        assert!(super::matches("200,202", 202));
        assert!(super::matches("200-299", 204));
        assert!(!super::matches("200-299", 301));
    }
}
