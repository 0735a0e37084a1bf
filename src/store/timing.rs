//! Timing experiments' figures: for each step whose delay is a list, each arm's buyer-events,
//! purchases and revenue, the arms against each other and each against the control group, with
//! intervals that stay true however often they are read ([`crate::confseq`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

use super::parse_timestamp;
use crate::confseq::{self, Tally};
use crate::experiment::Share;

/// One timing experiment: a step and its list of delays.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimingExperiment {
    /// The step.
    pub step: String,
    /// Its delays, as written (`"1h, 1d"`).
    pub delays: String,
    /// How the intervals are made.
    pub method: &'static str,
    /// Each arm, in the order of the delays.
    pub arms: Vec<ArmFigures>,
    /// Every pair of arms.
    pub comparisons: Vec<ArmComparison>,
    /// Buyer-events given an arm per week, on average since the first.
    pub per_week: f64,
    /// Buyer-events it would take, at this volume, to show a difference of 5 points between two
    /// arms' purchase rates; in weeks. `null` when there is no volume yet.
    pub weeks_to_show_5_points: Option<f64>,
}

/// One arm.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArmFigures {
    /// The arm's delay.
    pub delay: String,
    /// Buyer-events given this arm.
    pub buyer_events: u64,
    /// Of which bought (whenever: before or after the email).
    pub purchases: u64,
    /// What they paid, in cents.
    pub revenue_cents: i64,
    /// purchases / buyer_events.
    pub rate: f64,
    /// Against the control group (buyer-events held out when this step was their first): the
    /// difference in purchase rate; `null` without a control group or too early.
    pub rate_vs_control: Option<Difference>,
    /// The same for revenue per buyer-event, in cents.
    pub revenue_per_buyer_event_vs_control_cents: Option<Difference>,
}

/// Two arms compared: `first` minus `second`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArmComparison {
    /// The first arm's delay.
    pub first: String,
    /// The second arm's delay.
    pub second: String,
    /// Purchase rate difference; `null` while too early.
    pub rate: Option<Difference>,
    /// Revenue per buyer-event difference, in cents; `null` while too early.
    pub revenue_per_buyer_event_cents: Option<Difference>,
}

/// A difference with its interval.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Difference {
    /// The observed difference.
    pub estimate: f64,
    /// Lower end of the 95 % confidence sequence.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Whether the interval excludes zero: a winner, stated once and for all.
    pub decided: bool,
}

impl From<confseq::Difference> for Difference {
    fn from(d: confseq::Difference) -> Difference {
        Difference {
            estimate: d.estimate,
            low: d.interval.low,
            high: d.interval.high,
            decided: d.decided(),
        }
    }
}

/// Rates and revenue of one group.
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    bought: Tally,
    revenue: Tally,
}

impl Group {
    fn add(&mut self, bought: bool, revenue_cents: i64) {
        self.bought.push(if bought { 1.0 } else { 0.0 });
        self.revenue.push(revenue_cents as f64);
    }
}

/// Every timing experiment that has given an arm, with its figures. `steps` are the configured
/// steps' names with their current delays' text, so that an experiment whose list changed reads
/// as ended (it is still shown, with its final figures).
pub(super) fn experiments(
    conn: &Connection,
    holdout: Share,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<TimingExperiment>> {
    let mut stmt = conn.prepare(
        "SELECT a.step, a.arms, a.arm, a.assigned_at, be.completed_at IS NOT NULL,
                (SELECT coalesce(sum(o.amount_cents), 0) FROM orders o
                  WHERE o.email_key = a.email_key AND o.event_id = a.event_id
                    AND o.state = 'checkout_completed')
         FROM timing_arms a
         JOIN buyer_events be ON be.email_key = a.email_key AND be.event_id = a.event_id
         ORDER BY a.step, a.arms",
    )?;
    // (step, arms) -> (arm groups, first assignment)
    let mut found: BTreeMap<(String, String), (Vec<Group>, DateTime<Utc>)> = BTreeMap::new();
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let key = (r.get::<_, String>(0)?, r.get::<_, String>(1)?);
        let arm = usize::try_from(r.get::<_, i64>(2)?).unwrap_or(0);
        let at = parse_timestamp(&r.get::<_, String>(3)?)?;
        let count = key.1.split(", ").count().max(arm + 1);
        let entry = found
            .entry(key)
            .or_insert_with(|| (vec![Group::default(); count], at));
        entry.1 = entry.1.min(at);
        if entry.0.len() <= arm {
            entry.0.resize(arm + 1, Group::default());
        }
        entry.0[arm].add(r.get(4)?, r.get(5)?);
    }
    drop(rows);
    let mut out = Vec::new();
    for ((step, delays), (groups, since)) in found {
        let control = control_group(conn, &step)?;
        out.push(figures(
            &step, &delays, &groups, control, holdout, since, now,
        ));
    }
    Ok(out)
}

/// The control group of a step: buyer-events held out when it was their first step.
fn control_group(conn: &Connection, step: &str) -> anyhow::Result<Group> {
    let mut stmt = conn.prepare_cached(
        "SELECT be.completed_at IS NOT NULL,
                (SELECT coalesce(sum(o.amount_cents), 0) FROM orders o
                  WHERE o.email_key = x.email_key AND o.event_id = x.event_id
                    AND o.state = 'checkout_completed')
         FROM experiment x
         JOIN buyer_events be ON be.email_key = x.email_key AND be.event_id = x.event_id
         WHERE x.held_out = 1 AND x.share > 0 AND x.step = ?1",
    )?;
    let mut group = Group::default();
    let mut rows = stmt.query([step])?;
    while let Some(r) = rows.next()? {
        group.add(r.get(0)?, r.get(1)?);
    }
    Ok(group)
}

/// The figures of one experiment from its groups' tallies (pure).
fn figures(
    step: &str,
    delays: &str,
    groups: &[Group],
    control: Group,
    holdout: Share,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> TimingExperiment {
    let names: Vec<String> = delays.split(", ").map(str::to_string).collect();
    let name = |i: usize| {
        names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("arm {}", i + 1))
    };
    let k = groups.len().max(1) as f64;
    let arms_total: u64 = groups.iter().map(|g| g.bought.n).sum();
    // Among the buyer-events the arms were drawn from, each arm's share is 1/k.
    let share = 1.0 / k;
    // Against the control group: the population is emailed and held out together, each arm
    // (1 - h)/k of it and the control group h.
    let h = holdout.fraction();
    let total_with_control = arms_total + control.bought.n;
    let vs_control = |g: &Tally, c: &Tally| {
        (h > 0.0)
            .then(|| confseq::difference(g, c, (1.0 - h) / k, h, total_with_control))
            .flatten()
            .map(Difference::from)
    };
    let arms = groups
        .iter()
        .enumerate()
        .map(|(i, g)| ArmFigures {
            delay: name(i),
            buyer_events: g.bought.n,
            purchases: g.bought.sum as u64,
            revenue_cents: g.revenue.sum as i64,
            rate: g.bought.mean().unwrap_or(0.0),
            rate_vs_control: vs_control(&g.bought, &control.bought),
            revenue_per_buyer_event_vs_control_cents: vs_control(&g.revenue, &control.revenue),
        })
        .collect();
    let mut comparisons = Vec::new();
    for i in 0..groups.len() {
        for j in i + 1..groups.len() {
            let (a, b) = (&groups[i], &groups[j]);
            comparisons.push(ArmComparison {
                first: name(i),
                second: name(j),
                rate: confseq::difference(&a.bought, &b.bought, share, share, arms_total)
                    .map(Difference::from),
                revenue_per_buyer_event_cents: confseq::difference(
                    &a.revenue, &b.revenue, share, share, arms_total,
                )
                .map(Difference::from),
            });
        }
    }
    let weeks = ((now - since).num_seconds().max(0) as f64 / (7.0 * 86_400.0)).max(1.0 / 7.0);
    let per_week = arms_total as f64 / weeks;
    let rate = groups.iter().map(|g| g.bought.sum).sum::<f64>() / (arms_total.max(1) as f64);
    // Two arms of the k: each pair's buyer-events are 2/k of all.
    let weeks_to_show_5_points = (per_week > 0.0)
        .then(|| confseq::buyer_events_to_show(0.05, rate, 0.5, 0.5))
        .flatten()
        .map(|n| n as f64 * k / 2.0 / per_week);
    TimingExperiment {
        step: step.to_string(),
        delays: delays.to_string(),
        method: confseq::METHOD,
        arms,
        comparisons,
        per_week,
        weeks_to_show_5_points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(n: u64, bought: u64, price: i64) -> Group {
        let mut g = Group::default();
        for i in 0..n {
            g.add(i < bought, if i < bought { price } else { 0 });
        }
        g
    }

    #[test]
    fn arms_are_named_by_their_delays_and_compared_in_pairs() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let t = figures(
            "abandoned-1",
            "1h, 1d",
            &[group(1000, 100, 35_000), group(1000, 250, 35_000)],
            Group::default(),
            Share::from_hundredths(0),
            at("2026-11-01T00:00:00Z"),
            at("2026-12-01T00:00:00Z"),
        );
        assert_eq!(t.arms[0].delay, "1h");
        assert_eq!(t.arms[1].delay, "1d");
        assert_eq!(t.arms[1].purchases, 250);
        assert!((t.arms[1].rate - 0.25).abs() < 1e-9);
        assert_eq!(t.arms[0].rate_vs_control, None, "no control group");
        let c = &t.comparisons[0];
        let rate = c.rate.unwrap();
        assert!((rate.estimate + 0.15).abs() < 1e-9, "{rate:?}");
        assert!(rate.decided && rate.high < 0.0, "{rate:?}");
        assert!(t.per_week > 400.0 && t.per_week < 500.0, "{}", t.per_week);
        assert!(t.weeks_to_show_5_points.is_some());
    }

    #[test]
    fn a_small_experiment_is_too_early_to_tell() {
        let now = Utc::now();
        let t = figures(
            "abandoned-1",
            "1h, 1d",
            &[group(30, 3, 100), group(30, 9, 100)],
            group(20, 2, 100),
            Share::from_hundredths(1000),
            now,
            now,
        );
        assert_eq!(t.comparisons[0].rate, None);
        assert_eq!(t.arms[0].rate_vs_control, None);
    }
}
