//! What `/admin/problems`, `/healthz` and `/metrics` say about deliveries that had something
//! wrong: a field that could not be read, a cap applied, a refusal. All from the
//! `deliveries_with_problems` index.

use super::{Store, StoreError};

/// How much of a body `/admin/problems` shows; the whole one is a download.
pub const BODY_SHOWN: usize = 4096;

/// Counts of the hooks with problems, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProblemCounts {
    /// Deliveries with any problem (refused, ignored, failed, or recorded with a note).
    pub deliveries: i64,
    /// Hooks whose `event_date` could not be read: no reminder can be held back before their event.
    pub unreadable_event_dates: i64,
    /// Hooks with an amount or a price recorded as unknown (unreadable or ambiguous).
    pub unknown_amounts: i64,
    /// Hooks kept within the caps (tickets, names, emails).
    pub over_caps: i64,
}

impl Store {
    /// Counts the deliveries with problems, by kind.
    pub async fn problem_counts(&self) -> Result<ProblemCounts, StoreError> {
        self.read(|conn| {
            let counts = conn
                .prepare_cached(
                    "SELECT count(*),
                        count(*) FILTER (WHERE error LIKE '%event_date: %'),
                        count(*) FILTER (WHERE error LIKE '%amount: %' OR error LIKE '%].price: %'),
                        count(*) FILTER (WHERE error LIKE '%; only the first %' OR error LIKE '%characters; cut to%'
                                            OR error LIKE '%so not an address; not kept%')
                     FROM deliveries WHERE error IS NOT NULL",
                )?
                .query_row([], |r| {
                    Ok(ProblemCounts {
                        deliveries: r.get(0)?,
                        unreadable_event_dates: r.get(1)?,
                        unknown_amounts: r.get(2)?,
                        over_caps: r.get(3)?,
                    })
                })?;
            Ok(counts)
        })
        .await
    }
}

/// What the overview's "needs you" part counts since a moment (a week ago).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Since {
    /// Hooks received with a problem (refused, ignored, failed, or kept with a note).
    pub problem_hooks: i64,
    /// Addresses put on the suppression list, by source (its stored name), most first.
    pub suppressed: Vec<(String, i64)>,
}

impl Store {
    /// Problem hooks and new suppressions since `since`.
    pub async fn since(&self, since: chrono::DateTime<chrono::Utc>) -> Result<Since, StoreError> {
        let since = super::timestamp(since);
        self.read(move |conn| {
            let problem_hooks = conn
                .prepare_cached(
                    "SELECT count(*) FROM deliveries INDEXED BY deliveries_with_problems
                     WHERE error IS NOT NULL AND received_at >= ?1",
                )?
                .query_row([&since], |r| r.get(0))?;
            let suppressed = conn
                .prepare_cached(
                    "SELECT source, count(*) FROM suppressions WHERE added_at >= ?1
                     GROUP BY source ORDER BY count(*) DESC, source",
                )?
                .query_map([&since], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Since {
                problem_hooks,
                suppressed,
            })
        })
        .await
    }
}
