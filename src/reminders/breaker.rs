//! The circuit breaker: a complaint wave or a bounce wave pauses all sending before mailbox
//! providers block the domain. Over the last 7 days (or since the operator last resumed), with at
//! least 200 emails sent, complaints at or above 0.3% (Gmail's and Yahoo's limit for bulk
//! senders) or hard bounces at or above 5% pause sending: due reminders wait, nothing is dropped,
//! until `resume-sending` or the Resume button. Gmail asks to stay under 0.1%: above that, a
//! warning on the overview.

use chrono::{DateTime, Duration, Utc};

use crate::store::email_events::Rates;
use crate::store::{Store, StoreError};

/// The span the rates are measured over.
pub const WINDOW_DAYS: i64 = 7;
/// Fewer emails than this say too little to pause on.
pub const MIN_SENT: u64 = 200;
/// Complaints per email sent that pause sending (0.3%).
pub const COMPLAINT_LIMIT: f64 = 0.003;
/// Hard bounces per email sent that pause sending (5%).
pub const HARD_BOUNCE_LIMIT: f64 = 0.05;
/// Complaints per email sent above which the overview warns (Gmail's 0.1% guide).
pub const COMPLAINT_WARNING: f64 = 0.001;

/// What the rates say.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Why sending must pause, when it must.
    pub pause: Option<String>,
    /// A warning short of pausing.
    pub warning: Option<String>,
}

fn percent(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

/// Judges a span's rates. Pure.
pub fn assess(rates: &Rates) -> Assessment {
    let complaints = rates.complaint_rate();
    let bounces = rates.hard_bounce_rate();
    let enough = rates.sent >= MIN_SENT;
    let pause = if enough && complaints >= COMPLAINT_LIMIT {
        Some(format!(
            "complaint rate {} ({} complaints for {} emails in {WINDOW_DAYS} days) is at or above {}",
            percent(complaints),
            rates.complaints,
            rates.sent,
            percent(COMPLAINT_LIMIT)
        ))
    } else if enough && bounces >= HARD_BOUNCE_LIMIT {
        Some(format!(
            "hard-bounce rate {} ({} hard bounces for {} emails in {WINDOW_DAYS} days) is at or above {}",
            percent(bounces),
            rates.hard_bounces,
            rates.sent,
            percent(HARD_BOUNCE_LIMIT)
        ))
    } else {
        None
    };
    let warning = (pause.is_none() && rates.sent > 0 && complaints > COMPLAINT_WARNING).then(|| {
        format!(
            "complaint rate {} over {WINDOW_DAYS} days is above Gmail's 0.1% guide (sending pauses at {} once {MIN_SENT} emails are sent); check who is emailed and how often",
            percent(complaints),
            percent(COMPLAINT_LIMIT)
        )
    });
    Assessment { pause, warning }
}

/// The span the rates are measured over at `now`: the last 7 days, or since sending was resumed.
pub async fn since(store: &Store, now: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
    let week = now - Duration::days(WINDOW_DAYS);
    Ok(match store.sending_resumed_at().await? {
        Some(resumed) if resumed > week => resumed,
        _ => week,
    })
}

/// The rates in force at `now`.
pub async fn rates(store: &Store, now: DateTime<Utc>) -> Result<Rates, StoreError> {
    let since = since(store, now).await?;
    store.email_rates(since).await
}

/// The check at the start of a pass: `Some(reason)` when sending is paused (already, or now,
/// because the rates say so; a dry run only reports it).
pub async fn paused(
    store: &Store,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Option<String>, StoreError> {
    if let Some(pause) = store.sending_pause().await? {
        return Ok(Some(pause.reason));
    }
    let Some(reason) = assess(&rates(store, now).await?).pause else {
        return Ok(None);
    };
    if !dry_run {
        store.pause_sending(now, &reason).await?;
        tracing::error!(
            "sending paused: {reason}; resume with `quicket-followup resume-sending` or /admin"
        );
    }
    Ok(Some(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(sent: u64, hard_bounces: u64, complaints: u64) -> Rates {
        Rates {
            sent,
            hard_bounces,
            soft_bounces: 0,
            complaints,
        }
    }

    #[test]
    fn one_complaint_in_two_hundred_pauses() {
        let a = assess(&rates(200, 0, 1));
        assert!(a.pause.unwrap().contains("0.50%"));
    }

    #[test]
    fn too_few_emails_never_pause() {
        assert_eq!(assess(&rates(199, 50, 50)).pause, None);
    }

    #[test]
    fn the_limits_are_inclusive() {
        assert!(assess(&rates(1000, 0, 3)).pause.is_some());
        assert!(assess(&rates(1000, 0, 2)).pause.is_none());
        assert!(assess(&rates(1000, 50, 0)).pause.is_some());
        assert!(assess(&rates(1000, 49, 0)).pause.is_none());
    }

    #[test]
    fn above_gmails_guide_is_a_warning() {
        let a = assess(&rates(1000, 0, 2));
        assert!(a.warning.unwrap().contains("0.20%"));
        assert_eq!(assess(&rates(1000, 0, 1)).warning, None);
        assert_eq!(
            assess(&rates(0, 0, 0)),
            Assessment {
                pause: None,
                warning: None
            }
        );
    }
}
