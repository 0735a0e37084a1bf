//! The figures of the overview and of `stats`: hooks and reminders over recent windows, dormant
//! buyer-events, and what the reminders recovered.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::experiment::{Member, Sent};
use super::{Store, StoreError, parse_timestamp, timestamp};
use crate::experiment::Share;
use crate::lift::{self, Group};

/// Counts over one recent window.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Window {
    /// "24h", "7d" or "30d".
    pub window: &'static str,
    /// Hooks received, by action ("unreadable" for bodies that could not be read).
    pub hooks: BTreeMap<String, i64>,
    /// Reminder steps decided, by outcome (sent, skipped, failed, claimed).
    pub reminders: BTreeMap<String, i64>,
}

/// Purchases and revenue.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Money {
    /// Buyer-events that completed.
    pub purchases: i64,
    /// What they paid, in cents.
    pub revenue_cents: i64,
}

impl Money {
    fn add(&mut self, revenue_cents: i64) {
        self.purchases += 1;
        self.revenue_cents += revenue_cents;
    }
}

/// Recovered purchases for one step.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StepRecovery {
    /// The step of the last reminder before the purchase.
    pub step: String,
    /// The buyer had followed the email's link before paying.
    pub clicked: Money,
    /// The buyer paid without following the link (may have bought anyway).
    pub not_clicked: Money,
}

/// What the reminders brought back: buyer-events that completed after at least one reminder was
/// sent, within the attribution window of it. A buyer who paid without any reminder never counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Recovery {
    /// All time.
    pub total: Money,
    /// Of which the buyer had clicked the email's link.
    pub clicked: Money,
    /// The last 30 days (by completion).
    pub last_30_days: Money,
    /// By the step of the last reminder before the purchase.
    pub by_step: Vec<StepRecovery>,
}

/// One day of the 30-day chart (local date).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Day {
    /// The local date, YYYY-MM-DD.
    pub date: String,
    /// Reminders sent that day.
    pub sent: i64,
    /// Purchases recovered that day.
    pub recovered: i64,
}

/// Everything the overview and `stats` show.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    /// When the figures were taken.
    pub at: String,
    /// Hooks and reminders over the last 24 h, 7 and 30 days.
    pub windows: Vec<Window>,
    /// Buyer-events dormant now: not paid, still for `dormant_after`, changed within `give_up_after`.
    pub dormant_now: i64,
    /// What was recovered.
    pub recovered: Recovery,
    /// The last 30 days, oldest first.
    pub daily: Vec<Day>,
    /// The control group against the emailed group (`null` while nobody was ever held out and
    /// the share is 0 %).
    pub experiment: Option<Experiment>,
    /// Each step and template (variant) sent, with what followed.
    pub steps: Vec<StepFigures>,
    /// Timing experiments (steps whose delay is a list): each arm, and the arms compared.
    pub timing: Vec<super::timing::TimingExperiment>,
}

/// The control group against the emailed group.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Experiment {
    /// `[experiment] holdout` in force now.
    pub holdout: Share,
    /// Buyer-events emailed (their first step sent while the share was above 0 %).
    pub emailed: Group,
    /// Buyer-events held out.
    pub held_out: Group,
    /// What the reminders added, with its 95 % interval; `null` while a group is empty.
    pub lift: Option<LiftFigures>,
    /// Both groups' cumulative purchase rate since their first step.
    pub curve: Vec<CurvePoint>,
}

/// The lift as `stats --format json` gives it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LiftFigures {
    /// Revenue the emails added, cents.
    pub revenue_cents: i64,
    /// 95 % interval, lower end.
    pub low_cents: i64,
    /// 95 % interval, upper end.
    pub high_cents: i64,
    /// Purchases the emails added.
    pub purchases: f64,
    /// 95 % interval, lower end.
    pub low_purchases: f64,
    /// 95 % interval, upper end.
    pub high_purchases: f64,
    /// Purchase rate emailed minus held out.
    pub rate_difference: f64,
    /// Whether the groups are large enough for the interval to say something (else the figure
    /// is given in words as "too early to tell").
    pub conclusive: bool,
}

/// One point of the cumulative purchase-rate chart.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CurvePoint {
    /// Hours since the first step (sent or held out).
    pub hours: f64,
    /// Share of the emailed group that had bought by then.
    pub emailed: f64,
    /// Share of the held-out group that had bought by then.
    pub held_out: f64,
}

/// One step and template (variant): sent, clicked (people only), purchases within the
/// attribution window of the send, and the purchase rate with its 95 % Wilson interval.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepFigures {
    /// The step.
    pub step: String,
    /// The template (variant).
    pub template: String,
    /// Emails sent.
    pub sent: u64,
    /// Of which a person followed the event link.
    pub clicked: u64,
    /// Of which the buyer bought within the attribution window.
    pub purchases: u64,
    /// What those purchases paid, in cents.
    pub revenue_cents: i64,
    /// purchases / sent.
    pub rate: f64,
    /// Its 95 % interval, lower end.
    pub rate_low: f64,
    /// Upper end.
    pub rate_high: f64,
    /// Better than every other variant of the step: the confidence sequence of the difference
    /// (valid however often it is read) lies wholly above zero.
    pub better: bool,
    /// This variant's purchase rate minus the best other variant's of the step, with its
    /// confidence sequence; `null` for a step with one template, or while too early.
    pub against_best_other: Option<super::timing::Difference>,
    /// How `against_best_other` and `better` are judged.
    pub method: &'static str,
}

pub use crate::config::StatsRules;

fn delta(d: std::time::Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

fn counts(conn: &Connection, sql: &str, since: &str) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<BTreeMap<String, i64>, _>>()?;
    Ok(rows)
}

/// A recovered purchase, as read from the database.
pub(super) struct Recovered {
    pub(super) step: String,
    pub(super) clicked: bool,
    pub(super) revenue_cents: i64,
    pub(super) completed_at: DateTime<Utc>,
}

pub(super) fn recovered(
    conn: &Connection,
    window: chrono::TimeDelta,
) -> anyhow::Result<Vec<Recovered>> {
    let mut stmt = conn.prepare(
        "SELECT be.completed_at,
            (SELECT r.step || char(31) || r.sent_at FROM reminders r
              WHERE r.email_key = be.email_key AND r.event_id = be.event_id AND r.status = 'sent'
                AND r.sent_at <= be.completed_at
              ORDER BY r.sent_at DESC LIMIT 1),
            EXISTS (SELECT 1 FROM clicks c WHERE c.email_key = be.email_key AND c.event_id = be.event_id
                      AND c.link = 'event' AND c.scanner IS NULL AND c.clicked_at <= be.completed_at),
            (SELECT coalesce(sum(o.amount_cents), 0) FROM orders o
              WHERE o.email_key = be.email_key AND o.event_id = be.event_id AND o.state = 'checkout_completed')
         FROM buyer_events be WHERE be.completed_at IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (completed_at, last_sent, clicked, revenue_cents) = row?;
        let Some((step, sent_at)) = last_sent.as_deref().and_then(|s| s.split_once('\u{1f}'))
        else {
            continue; // paid without a reminder: not recovered
        };
        let completed_at = parse_timestamp(&completed_at)?;
        if completed_at - parse_timestamp(sent_at)? > window {
            continue;
        }
        out.push(Recovered {
            step: step.to_string(),
            clicked,
            revenue_cents,
            completed_at,
        });
    }
    Ok(out)
}

/// Points of the cumulative purchase-rate chart, across the attribution window.
const CURVE_POINTS: u32 = 28;

/// The experiment's figures from its members; `None` when there is none and the share is 0 %.
///
/// The curve stops at the age of the data: at each point it counts only the buyer-events whose
/// first step is at least that old, and it ends at the oldest one's age (or the attribution
/// window, when that is shorter). Past it nothing is known, so nothing is drawn.
pub(super) fn experiment(
    members: &[Member],
    holdout: Share,
    window: chrono::TimeDelta,
    now: DateTime<Utc>,
) -> Option<Experiment> {
    if members.is_empty() && holdout.is_zero() {
        return None;
    }
    let bought = |m: &Member| {
        m.completed_at
            .filter(|done| *done - m.decided_at <= window)
            .map(|done| (done - m.decided_at).max(chrono::TimeDelta::zero()))
    };
    let mut emailed = Group::default();
    let mut held_out = Group::default();
    for m in members {
        let group = if m.held_out {
            &mut held_out
        } else {
            &mut emailed
        };
        group.buyer_events += 1;
        if bought(m).is_some() {
            group.purchases += 1;
            group.revenue_cents += m.revenue_cents;
        }
    }
    let lift = lift::lift(&emailed, &held_out).map(|l| LiftFigures {
        revenue_cents: l.revenue_cents,
        low_cents: l.low_cents,
        high_cents: l.high_cents,
        purchases: l.purchases,
        low_purchases: l.purchases_interval.low,
        high_purchases: l.purchases_interval.high,
        rate_difference: l.rate_difference,
        conclusive: l.conclusive,
    });
    let zero = chrono::TimeDelta::zero();
    let age = |m: &Member| (now - m.decided_at).max(zero);
    let span = members.iter().map(age).max().unwrap_or(zero).min(window);
    let rate = |held: bool, by: chrono::TimeDelta| {
        let group: Vec<&Member> = members
            .iter()
            .filter(|m| m.held_out == held && age(m) >= by)
            .collect();
        if group.is_empty() {
            return 0.0;
        }
        let n = group
            .iter()
            .filter(|m| bought(m).is_some_and(|after| after <= by))
            .count();
        n as f64 / group.len() as f64
    };
    let points = if span > zero { CURVE_POINTS } else { 0 };
    let curve = (0..=points)
        .map(|i| {
            let by = span * i as i32 / CURVE_POINTS as i32;
            CurvePoint {
                hours: by.num_seconds() as f64 / 3600.0,
                emailed: rate(false, by),
                held_out: rate(true, by),
            }
        })
        .collect();
    Some(Experiment {
        holdout,
        emailed,
        held_out,
        lift,
        curve,
    })
}

/// Each step and template's figures, in the steps' order then by template.
pub(super) fn step_figures(
    sent: &[Sent],
    templates: &BTreeMap<String, String>,
    order: &[String],
    window: chrono::TimeDelta,
) -> Vec<StepFigures> {
    let mut by: BTreeMap<(usize, String, String), StepFigures> = BTreeMap::new();
    for s in sent {
        let template = s
            .template
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| templates.get(&s.step).cloned())
            .unwrap_or_default();
        let rank = order
            .iter()
            .position(|name| *name == s.step)
            .unwrap_or(order.len());
        let f = by
            .entry((rank, s.step.clone(), template.clone()))
            .or_insert_with(|| StepFigures {
                step: s.step.clone(),
                template,
                sent: 0,
                clicked: 0,
                purchases: 0,
                revenue_cents: 0,
                rate: 0.0,
                rate_low: 0.0,
                rate_high: 0.0,
                better: false,
                against_best_other: None,
                method: crate::confseq::METHOD,
            });
        f.sent += 1;
        f.clicked += u64::from(s.clicked);
        if s.completed_at
            .is_some_and(|done| done >= s.sent_at && done - s.sent_at <= window)
        {
            f.purchases += 1;
            f.revenue_cents += s.revenue_cents;
        }
    }
    let mut figures: Vec<StepFigures> = by.into_values().collect();
    for f in figures.iter_mut() {
        f.rate = f.purchases as f64 / f.sent.max(1) as f64;
        if let Some(i) = lift::wilson(f.purchases, f.sent) {
            (f.rate_low, f.rate_high) = (i.low, i.high);
        }
    }
    let snapshot = figures.clone();
    for f in figures.iter_mut() {
        let others: Vec<&StepFigures> = snapshot
            .iter()
            .filter(|o| o.step == f.step && o.template != f.template)
            .collect();
        // Compared with a confidence sequence, not a one-look interval: the overview is read every
        // day, and a one-look interval read daily names winners that chance made.
        let k = (others.len() + 1) as f64;
        let total = f.sent + others.iter().map(|o| o.sent).sum::<u64>();
        let tally = |g: &StepFigures| crate::confseq::Tally::proportion(g.purchases, g.sent);
        f.better = !others.is_empty()
            && others.iter().all(|o| {
                crate::confseq::difference(&tally(f), &tally(o), 1.0 / k, 1.0 / k, total)
                    .is_some_and(|d| d.interval.low > 0.0)
            });
        let best_other = others
            .iter()
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
            .copied();
        f.against_best_other = best_other.and_then(|o| {
            crate::confseq::difference(&tally(f), &tally(o), 1.0 / k, 1.0 / k, total)
                .map(super::timing::Difference::from)
        });
    }
    figures
}

fn stats(conn: &Connection, now: DateTime<Utc>, rules: StatsRules) -> anyhow::Result<Stats> {
    let mut windows = Vec::new();
    for (label, days) in [("24h", 1), ("7d", 7), ("30d", 30)] {
        let since = timestamp(now - chrono::TimeDelta::days(days));
        windows.push(Window {
            window: label,
            hooks: counts(
                conn,
                "SELECT CASE WHEN outcome = 'rejected' THEN 'unreadable'
                             ELSE coalesce(nullif(action, ''), 'no action') END, count(*)
                 FROM deliveries WHERE received_at >= ?1 GROUP BY 1",
                &since,
            )?,
            reminders: counts(
                conn,
                "SELECT status, count(*) FROM reminders
                 WHERE coalesce(sent_at, decided_at) >= ?1 GROUP BY status",
                &since,
            )?,
        });
    }
    let dormant_now: i64 = conn.query_row(
        "SELECT count(*) FROM buyer_events
         WHERE state <> 'checkout_completed' AND anonymised_at IS NULL
           AND changed_at <= ?1 AND changed_at > ?2
           AND email_key NOT IN (SELECT email_key FROM suppressions)",
        params![
            timestamp(now - delta(rules.dormant_after)),
            timestamp(now - delta(rules.give_up_after))
        ],
        |r| r.get(0),
    )?;

    let mut recovery = Recovery::default();
    let mut by_step: BTreeMap<String, StepRecovery> = BTreeMap::new();
    let month_ago = now - chrono::TimeDelta::days(30);
    let local_date = |t: DateTime<Utc>| t.with_timezone(&rules.timezone).date_naive();
    let mut recovered_per_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for r in recovered(conn, delta(rules.attribution_window))? {
        recovery.total.add(r.revenue_cents);
        let entry = by_step
            .entry(r.step.clone())
            .or_insert_with(|| StepRecovery {
                step: r.step.clone(),
                ..StepRecovery::default()
            });
        if r.clicked {
            recovery.clicked.add(r.revenue_cents);
            entry.clicked.add(r.revenue_cents);
        } else {
            entry.not_clicked.add(r.revenue_cents);
        }
        if r.completed_at >= month_ago {
            recovery.last_30_days.add(r.revenue_cents);
            *recovered_per_day
                .entry(local_date(r.completed_at))
                .or_default() += 1;
        }
    }
    recovery.by_step = by_step.into_values().collect();

    let mut sent_per_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let mut stmt = conn.prepare("SELECT sent_at FROM reminders WHERE sent_at >= ?1")?;
    for sent in stmt.query_map([timestamp(month_ago)], |r| r.get::<_, String>(0))? {
        *sent_per_day
            .entry(local_date(parse_timestamp(&sent?)?))
            .or_default() += 1;
    }
    let today = local_date(now);
    let daily = (0..30)
        .rev()
        .filter_map(|back| today.checked_sub_days(chrono::Days::new(back)))
        .map(|date| Day {
            date: date.format("%Y-%m-%d").to_string(),
            sent: sent_per_day.get(&date).copied().unwrap_or(0),
            recovered: recovered_per_day.get(&date).copied().unwrap_or(0),
        })
        .collect();
    Ok(Stats {
        at: timestamp(now),
        windows,
        dormant_now,
        recovered: recovery,
        daily,
        experiment: experiment(
            &super::experiment::members(conn)?,
            rules.holdout,
            delta(rules.attribution_window),
            now,
        ),
        steps: step_figures(
            &super::experiment::sent(conn)?,
            &rules.steps.iter().cloned().collect(),
            &rules
                .steps
                .iter()
                .map(|(s, _)| s.clone())
                .collect::<Vec<_>>(),
            delta(rules.attribution_window),
        ),
        timing: super::timing::experiments(conn, rules.holdout, now)?,
    })
}

impl Store {
    /// The overview's figures at `now`.
    pub async fn stats(&self, now: DateTime<Utc>, rules: StatsRules) -> Result<Stats, StoreError> {
        self.read(move |conn| stats(conn, now, rules)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` emails of `template` for step "first", `bought` of whose buyers paid an hour later.
    fn sends(template: &str, n: usize, bought: usize) -> Vec<Sent> {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        (0..n)
            .map(|i| Sent {
                step: "first".into(),
                template: Some(template.into()),
                sent_at: at,
                clicked: false,
                completed_at: (i < bought).then(|| at + chrono::TimeDelta::hours(1)),
                revenue_cents: 10_000,
            })
            .collect()
    }

    #[test]
    fn a_variant_is_better_only_when_the_confidence_sequence_says_so() {
        let figures = |a: (usize, usize), b: (usize, usize)| {
            let mut all = sends("a", a.0, a.1);
            all.extend(sends("b", b.0, b.1));
            step_figures(
                &all,
                &BTreeMap::new(),
                &["first".to_string()],
                chrono::TimeDelta::days(3),
            )
        };
        // 28 of 70 against 16 of 80: a one-look 95 % interval already calls "a" better.
        assert!(lift::better((28, 70), (16, 80)));
        let early = figures((70, 28), (80, 16));
        assert!(early.iter().all(|f| !f.better), "{early:?}");
        // Ten times the buyers at the same rates: now it is known.
        let later = figures((700, 280), (800, 160));
        let a = later.iter().find(|f| f.template == "a").unwrap();
        assert!(a.better, "{later:?}");
        let d = a.against_best_other.unwrap();
        assert!(
            d.decided && d.low > 0.0 && (d.estimate - 0.2).abs() < 1e-9,
            "{d:?}"
        );
        assert!(early[0].against_best_other.is_some_and(|d| !d.decided));
        assert!(!later.iter().find(|f| f.template == "b").unwrap().better);
    }

    fn member(held_out: bool, days_ago: i64, bought_after_hours: Option<i64>) -> Member {
        let now = DateTime::parse_from_rfc3339("2026-12-10T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let decided_at = now - chrono::TimeDelta::days(days_ago);
        Member {
            held_out,
            decided_at,
            completed_at: bought_after_hours.map(|h| decided_at + chrono::TimeDelta::hours(h)),
            revenue_cents: 10_000,
        }
    }

    /// The oldest first step is 2 days old: the 7-day curve stops at 2 days, and each point
    /// counts only the buyers followed that long.
    #[test]
    fn the_curve_stops_at_the_age_of_the_data() {
        let now = DateTime::parse_from_rfc3339("2026-12-10T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let members = [
            member(false, 2, Some(30)),
            member(false, 2, None),
            // A day old: not counted past 24 hours.
            member(false, 1, Some(3)),
            member(true, 2, None),
            member(true, 1, None),
        ];
        let x = experiment(
            &members,
            Share::parse("20%").unwrap(),
            chrono::TimeDelta::days(7),
            now,
        )
        .unwrap();
        let last = x.curve.last().unwrap();
        assert_eq!(last.hours, 48.0);
        // At 48 hours only the two 2-day-old emailed buyers count: one of them bought.
        assert_eq!(last.emailed, 0.5);
        assert_eq!(last.held_out, 0.0);
        // At about 4 hours all three emailed buyers count, one had bought.
        let early = x.curve.iter().find(|p| p.hours >= 3.0).unwrap();
        assert!((early.emailed - 1.0 / 3.0).abs() < 1e-9, "{early:?}");
        // Nothing past the data's age.
        assert!(x.curve.iter().all(|p| p.hours <= 48.0));
    }
}
