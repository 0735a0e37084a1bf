//! Login throttling for `/admin`: after [`MAX_FAILURES`] failed logins from one client within
//! [`WINDOW`], that client is refused (429) until the oldest of them is [`WINDOW`] old. Other
//! clients are not affected. Kept in memory: a restart forgets, which costs a guesser a restart.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins one client may make within [`WINDOW`].
pub const MAX_FAILURES: usize = 10;
/// The span failures are counted over.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// Clients remembered at most; beyond that, those with no recent failure are dropped first.
const MAX_CLIENTS: usize = 100_000;

/// The failed logins of recent clients.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl LoginThrottle {
    /// How long `client` must still wait, or `None` when it may try.
    pub fn blocked(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let times = failures.get_mut(&client)?;
        forget_old(times, now);
        if times.len() < MAX_FAILURES {
            return None;
        }
        let oldest = *times.front()?;
        Some((oldest + WINDOW).saturating_duration_since(now))
    }

    /// Notes a failed login; returns whether the client is now refused.
    pub fn failed(&self, client: IpAddr, now: Instant) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_CLIENTS && !failures.contains_key(&client) {
            failures.retain(|_, times| {
                forget_old(times, now);
                !times.is_empty()
            });
            if failures.len() >= MAX_CLIENTS {
                // Under a flood from this many addresses, the newest client is not remembered
                // rather than letting memory grow without bound.
                return false;
            }
        }
        let times = failures.entry(client).or_default();
        forget_old(times, now);
        times.push_back(now);
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
        times.len() >= MAX_FAILURES
    }
}

fn forget_old(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_block_one_client_until_the_window_has_passed() {
        let throttle = LoginThrottle::default();
        let (a, b): (IpAddr, IpAddr) = (
            "203.0.113.1".parse().unwrap(),
            "203.0.113.2".parse().unwrap(),
        );
        let start = Instant::now();
        for i in 0..9 {
            assert!(!throttle.failed(a, start + Duration::from_secs(i)));
            assert_eq!(throttle.blocked(a, start + Duration::from_secs(i)), None);
        }
        assert!(throttle.failed(a, start + Duration::from_secs(60)));
        let wait = throttle
            .blocked(a, start + Duration::from_secs(60))
            .unwrap();
        assert_eq!(wait, WINDOW - Duration::from_secs(60));
        assert_eq!(
            throttle.blocked(b, start + Duration::from_secs(60)),
            None,
            "others unaffected"
        );
        // Still refused just before the first failure is ten minutes old, free after.
        assert!(
            throttle
                .blocked(a, start + WINDOW - Duration::from_secs(1))
                .is_some()
        );
        assert_eq!(throttle.blocked(a, start + WINDOW), None);
    }

    #[test]
    fn failures_spread_over_more_than_the_window_never_block() {
        let throttle = LoginThrottle::default();
        let a: IpAddr = "198.51.100.9".parse().unwrap();
        let start = Instant::now();
        for i in 0..50 {
            let at = start + Duration::from_secs(i * 70);
            assert!(!throttle.failed(a, at), "failure {i}");
            assert_eq!(throttle.blocked(a, at), None);
        }
    }
}
