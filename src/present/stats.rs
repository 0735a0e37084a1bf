//! The figures in words: amounts, the control group and the variants (the honest figure in a
//! sentence, or why there is none yet), as `stats` prints them and the overview leads with.

use std::fmt::Write as _;

use crate::experiment::Share;
use crate::store::stats::{Experiment, Stats, StepFigures};
use crate::store::timing::{ArmComparison, Difference, TimingExperiment};
use crate::templates::format_money;

/// An amount rounded for a sentence: "R4,200" (to R100 from R1,000, else to R10).
pub fn about(cents: i64) -> String {
    let unit = if cents.abs() >= 100_000 {
        10_000
    } else {
        1_000
    };
    let rounded = (cents as f64 / unit as f64).round() as i64 * unit;
    if rounded == 0 {
        return "R0".into();
    }
    format_money(Some(crate::domain::Cents(rounded))).replace(".00", "")
}

/// "1 in 10" for a share.
fn one_in(share: Share) -> String {
    let f = share.fraction();
    if f <= 0.0 {
        return "none".into();
    }
    let n = (1.0 / f).round() as u64;
    if (1.0 / n as f64 - f).abs() < 0.005 {
        format!("1 in {n}")
    } else {
        format!("{share}")
    }
}

fn buyers(n: u64) -> String {
    if n == 1 {
        "1 buyer".into()
    } else {
        format!("{n} buyers")
    }
}

/// The overview's first sentence: what the reminders added, with its range, or why that is not
/// known yet.
pub fn experiment_sentence(experiment: Option<&Experiment>) -> String {
    let Some(x) = experiment else {
        return "No control group yet, so the figures below count every purchase after a reminder, \
                including buyers who would have paid anyway. Set [experiment] holdout = \"10%\" to \
                measure what the reminders really add: 1 in 10 dormant buyers will then not be \
                reminded."
            .into();
    };
    let (e, h) = (x.emailed.buyer_events, x.held_out.buyer_events);
    let groups = format!("from {} emailed against {h} held out", buyers(e));
    let Some(lift) = &x.lift else {
        return format!(
            "The control group ({} held out, {} of dormant buyers) has {} emailed and {h} held \
             out so far; the first figure comes once both groups have buyers.",
            x.holdout,
            one_in(x.holdout),
            buyers(e)
        );
    };
    if !lift.conclusive {
        return format!(
            "Too early to tell what the reminders add: {} emailed against {h} held out is too few \
             for a range that means anything. Keep the control group on; the range narrows as \
             buyers come in.",
            buyers(e)
        );
    }
    let range = format!(
        "between {} and {}",
        about(lift.low_cents),
        about(lift.high_cents)
    );
    if lift.low_cents > 0 {
        format!(
            "Reminders brought in about {} that would not have come otherwise ({range}), {groups}.",
            about(lift.revenue_cents)
        )
    } else if lift.high_cents < 0 {
        format!(
            "Reminders seem to cost sales: about {} less than without them ({range}), {groups}.",
            about(-lift.revenue_cents)
        )
    } else {
        format!("Reminders made no clear difference ({range}), {groups}.")
    }
}

/// `stats` lines for the control group and the steps' variants.
pub fn experiment_lines(experiment: Option<&Experiment>, steps: &[StepFigures]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", experiment_sentence(experiment));
    if let Some(x) = experiment {
        for (label, g) in [("emailed", &x.emailed), ("held out", &x.held_out)] {
            let _ = writeln!(
                out,
                "  {label}: {} buyer-events, {} purchases, {}",
                g.buyer_events,
                g.purchases,
                rands(g.revenue_cents)
            );
        }
        if let Some(l) = &x.lift {
            let _ = writeln!(
                out,
                "  lift: {:.1} purchases ({:.1} to {:.1}), {} ({} to {}), 95% interval{}",
                l.purchases,
                l.low_purchases,
                l.high_purchases,
                about(l.revenue_cents),
                about(l.low_cents),
                about(l.high_cents),
                if l.conclusive {
                    ""
                } else {
                    "; too wide to rely on yet"
                }
            );
        }
    }
    if !steps.is_empty() {
        let _ = writeln!(out, "by step and template (people's clicks only):");
    }
    for f in steps {
        let _ = writeln!(
            out,
            "  {} / {}: sent {}, clicked {}, purchases {} ({:.1}%, {:.1}% to {:.1}%), {}{}",
            f.step,
            f.template,
            f.sent,
            f.clicked,
            f.purchases,
            f.rate * 100.0,
            f.rate_low * 100.0,
            f.rate_high * 100.0,
            rands(f.revenue_cents),
            if f.better {
                "; better than the others"
            } else {
                ""
            }
        );
    }
    out
}

/// Rands for people: `R1,250.00`.
pub fn rands(cents: i64) -> String {
    format_money(Some(crate::domain::Cents(cents))).replace("free", "R0.00")
}

/// A timing experiment in words: each arm, then the verdict between arms, which stays "too early to
/// tell" until the interval (valid however often it is read) excludes no difference.
pub fn timing_lines(t: &TimingExperiment) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "timing experiment on {} (delays {}; intervals: {}):",
        t.step, t.delays, t.method
    );
    for arm in &t.arms {
        let _ = writeln!(
            out,
            "  {} arm: {} buyers, {} bought ({:.1}%), {}",
            arm.delay,
            arm.buyer_events,
            arm.purchases,
            arm.rate * 100.0,
            rands(arm.revenue_cents)
        );
        if let Some(d) = arm.rate_vs_control {
            let _ = writeln!(
                out,
                "    against the control group: {:+.1} points ({})",
                d.estimate * 100.0,
                if d.decided {
                    format!("between {:+.1} and {:+.1}", d.low * 100.0, d.high * 100.0)
                } else {
                    "too early to tell".to_string()
                }
            );
        }
    }
    for c in &t.comparisons {
        let _ = writeln!(out, "  {} against {}: {}", c.first, c.second, verdict(c));
    }
    if let Some(pace) = pace(t) {
        let _ = writeln!(out, "  {pace}");
    }
    out
}

/// The arm a comparison has decided for (by revenue per buyer-event, else by purchase rate), with
/// the difference from that arm's side; `None` while it is too early to tell.
fn decided(c: &ArmComparison) -> Option<(&str, bool, Difference)> {
    let by_revenue = c
        .revenue_per_buyer_event_cents
        .filter(|d| d.decided)
        .map(|d| (true, d));
    let (revenue, d) = by_revenue.or_else(|| c.rate.filter(|d| d.decided).map(|d| (false, d)))?;
    Some(if d.estimate >= 0.0 {
        (c.first.as_str(), revenue, d)
    } else {
        let flipped = Difference {
            estimate: -d.estimate,
            low: -d.high,
            high: -d.low,
            decided: true,
        };
        (c.second.as_str(), revenue, flipped)
    })
}

/// The arm a comparison has decided for, if it has.
pub fn favoured(c: &ArmComparison) -> Option<&str> {
    decided(c).map(|(arm, _, _)| arm)
}

/// A comparison of two arms in words: "too early to tell" until its interval decides.
pub fn verdict(c: &ArmComparison) -> String {
    match decided(c) {
        Some((winner, true, d)) => format!(
            "the {winner} arm earns more: {} per 100 abandoned checkouts (between {} and {})",
            rands((d.estimate * 100.0).round() as i64),
            rands((d.low * 100.0).round() as i64),
            rands((d.high * 100.0).round() as i64)
        ),
        Some((winner, false, d)) => format!(
            "the {winner} arm's buyers buy more often: {:.1} points more (between {:.1} and {:.1})",
            d.estimate * 100.0,
            d.low * 100.0,
            d.high * 100.0
        ),
        None => "too early to tell".to_string(),
    }
}

/// How long a difference of 5 points would take to show at the organiser's volume.
pub fn pace(t: &TimingExperiment) -> Option<String> {
    let weeks = t.weeks_to_show_5_points?;
    Some(format!(
        "at your volume ({:.0} buyers a week) a difference of 5 points would take about {} to show",
        t.per_week,
        if weeks < 1.5 {
            "a week".to_string()
        } else {
            format!("{:.0} weeks", weeks.ceil())
        }
    ))
}

/// `stats` for people.
pub fn stats_in_words(stats: &Stats) -> String {
    // The honest figure first (the control group), then what is attributed to the reminders.
    let mut out = experiment_lines(stats.experiment.as_ref(), &stats.steps);
    for t in &stats.timing {
        out.push_str(&timing_lines(t));
    }
    let r = &stats.recovered;
    let _ = writeln!(
        out,
        "attributed (any purchase after a reminder, whether or not it made the difference): {} purchases, {} ({} after clicking the email's link); last 30 days: {} purchases, {}",
        r.total.purchases,
        rands(r.total.revenue_cents),
        r.clicked.purchases,
        r.last_30_days.purchases,
        rands(r.last_30_days.revenue_cents)
    );
    for step in &r.by_step {
        let _ = writeln!(
            out,
            "  {}: {} clicked ({}), {} did not click ({})",
            step.step,
            step.clicked.purchases,
            rands(step.clicked.revenue_cents),
            step.not_clicked.purchases,
            rands(step.not_clicked.revenue_cents)
        );
    }
    // Not "remindable": some of these cannot be reminded (held out, unsubscribed, no step left);
    // the overview gives that count with each reason.
    let _ = writeln!(
        out,
        "checkouts left unpaid now (left alone long enough to count, not yet given up on; the overview says how many can still be reminded): {}",
        stats.dormant_now
    );
    for w in &stats.windows {
        let list = |m: &std::collections::BTreeMap<String, i64>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let _ = writeln!(
            out,
            "last {}: messages from Quicket: {}; reminders: {}",
            w.window,
            list(&w.hooks),
            list(&w.reminders)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_rounded_for_sentences() {
        assert_eq!(about(419_950), "R4,200");
        assert_eq!(about(45_040), "R450");
        assert_eq!(about(-128_457), "-R1,300");
        assert_eq!(about(40), "R0");
        assert_eq!(one_in(Share::parse("10%").unwrap()), "1 in 10");
        assert_eq!(one_in(Share::parse("30%").unwrap()), "30%");
    }
}
