//! Deciding a page of due buyer-events: the control group, what Quicket's API says about sold-out
//! tickets, the planner's answer, and sorting the answers into what is sent and what is recorded.
//! Nothing here sends.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::engine::{Engine, Settings};
use super::planner::{Decision, StepStatus, plan};
use super::report::{PassLine, PassReport, line};
use crate::domain::ArmRecord;
use crate::domain::Outcome;
use crate::events::EventInfo;
use crate::experiment::{HELD_OUT, held_out_reason};
use crate::store::reminders::{
    DecisionRecord, DueBuyerEvent, HoldOut, NewArm, QuietDecisions, StepSkips,
};

/// A skipped step and why: what the planner hands over with a step to send.
pub(super) type Skips = Vec<(String, String)>;

/// One page's decisions, sorted by what becomes of them.
#[derive(Default)]
pub(super) struct Sorted {
    /// Everything that sends nothing now, to record.
    pub(super) quiet: QuietDecisions,
    /// Steps to claim and send.
    pub(super) sends: Vec<(DueBuyerEvent, String, Skips)>,
    /// Timing-experiment arms given in this page, to store.
    pub(super) arms: Vec<NewArm>,
}

impl Engine {
    /// Whether a buyer-event is in the control group: as recorded when its first step fell due;
    /// else emailed if anything was ever sent or claimed for it (before the control group was
    /// turned on); else as the keyed hash says for the share in force.
    pub(crate) fn held_out(&self, s: &Settings, due: &DueBuyerEvent) -> bool {
        if let Some(recorded) = due.held_out {
            return recorded;
        }
        let c = &due.candidate;
        let emailed = c.history.iter().any(|r| {
            matches!(
                r.status,
                StepStatus::Sent
                    | StepStatus::Claimed
                    | StepStatus::Failed
                    | StepStatus::Interrupted
            )
        });
        !emailed
            && self
                .assigner
                .held_out(&c.email_key, &c.event_id, s.config.experiment.holdout)
    }

    /// When the planner sends a step of a timing experiment to a buyer-event that has no arm yet
    /// (it plans it at the earliest arm's time), gives it its arm by keyed hash and plans again:
    /// the arm's own delay may still be ahead. Every buyer-event still waiting at the earliest
    /// arm's time gets an arm, whatever happens next, so each arm's figures count the buyers who
    /// bought before their email too.
    fn give_arm(
        &self,
        s: &Settings,
        due: &mut DueBuyerEvent,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<Decision, String> {
        let Decision::Send { step: name, .. } = &decision else {
            return Ok(decision);
        };
        let Some(step) = s.rules.steps.iter().find(|st| &st.name == name) else {
            return Ok(decision);
        };
        if step.arms.is_empty() || crate::reminders::planner::arm_of(&due.candidate, step).is_some()
        {
            return Ok(decision);
        }
        let c = &mut due.candidate;
        let arms = step.arms_key();
        let arm = self.assigner.timing_arm(
            &c.email_key,
            &c.event_id,
            &step.name,
            &arms,
            step.arms.len(),
        );
        c.arms.push(ArmRecord {
            step: step.name.clone(),
            arms,
            arm,
            new: true,
        });
        plan_or_bug(|| plan(&due.candidate, &s.rules, now))
    }

    /// Asks the planner about each buyer-event of a page (with what is known of its event).
    pub(super) fn decide(
        &self,
        s: &Settings,
        page: Vec<DueBuyerEvent>,
        infos: &HashMap<String, EventInfo>,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> Vec<(DueBuyerEvent, Decision)> {
        page.into_iter()
            .filter_map(|mut due| {
                report.counts.considered += 1;
                due.candidate.held_out = self.held_out(s, &due);
                let info = infos.get(&due.candidate.event_id);
                due.candidate.event_date =
                    crate::events::event_start(due.candidate.event_date, info);
                match plan_or_bug(|| plan(&due.candidate, &s.rules, now))
                    .and_then(|decision| self.give_arm(s, &mut due, decision, now))
                {
                    Ok(decision) => Some((due, decision)),
                    Err(bug) => {
                        // Nothing recorded: it stays due, and the next pass tries again.
                        report.counts.failed += 1;
                        report.push(unplanned(&due, &bug));
                        None
                    }
                }
            })
            .collect()
    }

    /// Before emailing, refreshes what Quicket's API says about the events concerned (waiting at
    /// most `quicket.timeout`), and plans again those whose event date it changes or whose
    /// buyers' tickets turn out to be sold out.
    pub(super) async fn check_sold_out(
        &self,
        s: &Settings,
        decided: &mut [(DueBuyerEvent, Decision)],
        infos: &mut HashMap<String, EventInfo>,
        refreshed: &mut HashSet<String>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> anyhow::Result<()> {
        if !self.events.enabled() || !decided.iter().any(|(_, d)| sends_now(d)) {
            return Ok(());
        }
        self.refresh_events(decided, infos, refreshed, now, dry_run)
            .await;
        let local_now = now.with_timezone(&s.rules.timezone).naive_local();
        // The buyer's choice matters only when something of the event is still on sale.
        let (at, references): (Vec<usize>, Vec<String>) = decided
            .iter()
            .enumerate()
            .filter(|(_, (due, d))| {
                sends_now(d)
                    && infos.get(&due.candidate.event_id).is_some_and(|info| {
                        info.may_be_sold_out() && !info.nothing_on_sale(local_now)
                    })
            })
            .map(|(i, (due, _))| (i, due.reference.clone()))
            .unzip();
        let types = self.store.chosen_ticket_types(references).await?;
        let mut chosen = at.into_iter().zip(types).peekable();
        for (i, (due, decision)) in decided.iter_mut().enumerate() {
            if !sends_now(decision) {
                continue;
            }
            let Some(info) = infos.get(&due.candidate.event_id) else {
                continue;
            };
            // The event's details may be new since the first plan.
            let date = info.start_for(due.candidate.event_date);
            let mut changed = date != due.candidate.event_date;
            due.candidate.event_date = date;
            if info.nothing_on_sale(local_now) {
                due.candidate.sold_out = true;
                changed = true;
            } else if chosen.peek().is_some_and(|(at, _)| *at == i)
                && let Some((_, types)) = chosen.next()
            {
                due.candidate.sold_out = info.sold_out_for(&types, local_now);
                changed |= due.candidate.sold_out;
            }
            if changed {
                *decision =
                    plan_or_bug(|| plan(&due.candidate, &s.rules, now)).unwrap_or_else(|bug| {
                        Decision::Defer {
                            until: now,
                            reason: format!(
                                "could not be planned ({bug}); looked at again at the next pass"
                            ),
                        }
                    });
            }
        }
        Ok(())
    }

    /// Refreshes what Quicket's API says about the events of the steps about to be sent, each
    /// at most once per pass.
    async fn refresh_events(
        &self,
        decided: &[(DueBuyerEvent, Decision)],
        infos: &mut HashMap<String, EventInfo>,
        refreshed: &mut HashSet<String>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) {
        let mut events: Vec<String> = decided
            .iter()
            .filter(|(_, d)| sends_now(d))
            .map(|(due, _)| due.candidate.event_id.clone())
            .filter(|id| !refreshed.contains(id))
            .collect();
        events.sort();
        events.dedup();
        if !events.is_empty() {
            refreshed.extend(events.iter().cloned());
            infos.extend(self.events.refresh(events, now, !dry_run).await);
        }
    }
}

/// The planner's answer, or what its panic said: a bug met on one buyer-event skips that one for
/// this pass instead of ending the pass for everyone.
pub(super) fn plan_or_bug(plan: impl FnOnce() -> Decision) -> Result<Decision, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(plan))
        .map_err(|panic| format!("a bug: {}", panic_text(panic.as_ref())))
}

/// A panic's message, when it has one.
pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The report's line for a buyer-event the planner failed on (logged too, without the address).
fn unplanned(due: &DueBuyerEvent, bug: &str) -> PassLine {
    let c = &due.candidate;
    tracing::error!(
        event_id = %c.event_id,
        reference = %due.reference,
        "a buyer-event could not be planned ({bug}); skipped in this pass"
    );
    line(
        Outcome::Failed,
        &c.email,
        &c.event_id,
        &due.reference,
        None,
        format!("could not be planned ({bug}); skipped in this pass, looked at again at the next"),
    )
}

/// Whether a decision would email now; the control group is checked like the emailed group, so
/// that both skip alike.
fn sends_now(d: &Decision) -> bool {
    matches!(d, Decision::Send { .. } | Decision::HoldOut { .. })
}

/// Sorts a page's decisions: steps to send, and the records (with report lines) of the rest.
pub(super) fn sort(
    s: &Settings,
    decided: Vec<(DueBuyerEvent, Decision)>,
    now: DateTime<Utc>,
    report: &mut PassReport,
) -> Sorted {
    let mut sorted = Sorted::default();
    for (due, decision) in decided {
        let c = &due.candidate;
        for a in c.arms.iter().filter(|a| a.new) {
            sorted.arms.push(NewArm {
                email_key: c.email_key.clone(),
                event_id: c.event_id.clone(),
                step: a.step.clone(),
                arms: a.arms.clone(),
                arm: a.arm,
            });
        }
        match decision {
            Decision::Send { step, skip } => sorted.sends.push((due, step, skip)),
            Decision::HoldOut { step, skip } => {
                hold_out(s, due, step, skip, now, report, &mut sorted)
            }
            other => record_quiet(s, &due, other, now, report, &mut sorted),
        }
    }
    sorted
}

/// A step the control group is not sent: reported and recorded as if it had been.
fn hold_out(
    s: &Settings,
    due: DueBuyerEvent,
    step: String,
    skip: Skips,
    now: DateTime<Utc>,
    report: &mut PassReport,
    sorted: &mut Sorted,
) {
    let c = &due.candidate;
    report.counts.skipped += 1;
    report.push(line(
        Outcome::Skipped,
        &c.email,
        &c.event_id,
        &due.reference,
        Some(&step),
        held_out_reason(),
    ));
    sorted.quiet.decisions.push(DecisionRecord {
        email_key: c.email_key.clone(),
        event_id: c.event_id.clone(),
        decision: Outcome::Skipped,
        reason: format!("{step}: {HELD_OUT}"),
        next_check_at: Some(now),
    });
    sorted.quiet.held.push(HoldOut {
        email_key: c.email_key.clone(),
        event_id: c.event_id.clone(),
        reference: due.reference.clone(),
        step,
        skip,
        share: s.config.experiment.holdout,
    });
}

/// A decision that sends nothing (deferred, skipped, done): reported and recorded.
fn record_quiet(
    s: &Settings,
    due: &DueBuyerEvent,
    decision: Decision,
    now: DateTime<Utc>,
    report: &mut PassReport,
    sorted: &mut Sorted,
) {
    let c = &due.candidate;
    let reason = quiet_reason(&decision, s.rules.timezone);
    // The control group waits like the emailed group, but nothing of it is ever deferred to be
    // sent: it reads "skipped ... held out" (the planner's reason says why).
    let label = match decision {
        Decision::Defer { .. } if c.held_out => Outcome::Skipped,
        _ => decision.label(),
    };
    match label {
        Outcome::Deferred => report.counts.deferred += 1,
        _ => report.counts.skipped += 1,
    }
    let step = match &decision {
        Decision::SkipSteps { skip } if skip.len() == 1 => Some(skip[0].0.as_str()),
        _ => None,
    };
    report.push(line(
        label,
        &c.email,
        &c.event_id,
        &due.reference,
        step,
        reason.clone(),
    ));
    if let Decision::SkipSteps { skip } = &decision {
        sorted.quiet.step_skips.push(StepSkips {
            email_key: c.email_key.clone(),
            event_id: c.event_id.clone(),
            reference: due.reference.clone(),
            skip: skip.clone(),
        });
    }
    sorted.quiet.decisions.push(DecisionRecord {
        email_key: c.email_key.clone(),
        event_id: c.event_id.clone(),
        decision: label,
        reason,
        next_check_at: decision.next_check(now),
    });
}

/// Why a decision sends nothing, as the report and the database say it.
fn quiet_reason(decision: &Decision, tz: chrono_tz::Tz) -> String {
    match decision {
        Decision::Defer { reason, until } => format!(
            "{reason} (next look {})",
            until.with_timezone(&tz).format("%Y-%m-%d %H:%M")
        ),
        Decision::Skip { reason } | Decision::Done { reason } => reason.clone(),
        Decision::SkipSteps { skip } => skip
            .iter()
            .map(|(step, why)| format!("{step}: {why}"))
            .collect::<Vec<_>>()
            .join("; "),
        Decision::Send { .. } | Decision::HoldOut { .. } => String::new(),
    }
}

/// A dry run's line for a step it would send.
pub(super) fn would_send(due: DueBuyerEvent, step: &str, skip: &Skips) -> PassLine {
    let c = due.candidate;
    let mut reason = "due".to_string();
    if !skip.is_empty() {
        let names: Vec<&str> = skip.iter().map(|(s, _)| s.as_str()).collect();
        reason = format!("due; would skip {}", names.join(", "));
    }
    // The buyer-event is done with: its texts move into the line instead of being copied.
    PassLine {
        decision: Outcome::WouldSend,
        email: c.email,
        event_id: c.event_id,
        reference: due.reference,
        step: Some(step.to_string()),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_planner_is_an_error_naming_it_not_the_end_of_the_pass() {
        let answer = plan_or_bug(|| panic!("DateTime + TimeDelta overflowed"));
        assert_eq!(
            answer,
            Err("a bug: DateTime + TimeDelta overflowed".to_string())
        );
        let n = 7;
        let answer = plan_or_bug(|| panic!("step {n} failed"));
        assert_eq!(answer, Err("a bug: step 7 failed".to_string()));
        let fine = Decision::Skip {
            reason: "fine".into(),
        };
        assert_eq!(plan_or_bug(|| fine.clone()), Ok(fine));
    }
}
