//! What a pass did: one line per buyer-event considered or claim resent, and the totals.

use std::fmt;

use crate::domain::Outcome;
use crate::store::reminders::PassCounts;

/// One line of a pass's report: a buyer-event considered, or a claim resent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassLine {
    /// sent, deferred, skipped, done, failed (and "would send" in a dry run).
    pub decision: Outcome,
    /// The buyer.
    pub email: String,
    /// The event.
    pub event_id: String,
    /// The order.
    pub reference: String,
    /// The step concerned, if any.
    pub step: Option<String>,
    /// Why.
    pub reason: String,
}

impl fmt::Display for PassLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<10} {} event {} ({})",
            self.decision, self.email, self.event_id, self.reference
        )?;
        if let Some(step) = &self.step {
            write!(f, " {step}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Where a pass's lines go as they are decided.
pub type LineSink = Box<dyn FnMut(&PassLine) + Send>;

/// What a pass did.
#[derive(Default)]
pub struct PassReport {
    /// One line per buyer-event considered or claim resent (empty when the lines went to a sink).
    pub lines: Vec<PassLine>,
    /// The totals.
    pub counts: PassCounts,
    /// Set when the pass stopped early because the service is stopping.
    pub interrupted: bool,
    /// Why sending is paused (the circuit breaker), when it is: the pass sent nothing.
    pub paused: Option<String>,
    sink: Option<LineSink>,
}

impl std::fmt::Debug for PassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassReport")
            .field("lines", &self.lines)
            .field("counts", &self.counts)
            .field("interrupted", &self.interrupted)
            .field("paused", &self.paused)
            .finish()
    }
}

impl PassReport {
    /// A report whose lines go to `sink` (when given) as they are decided.
    pub(super) fn with_sink(sink: Option<LineSink>) -> PassReport {
        PassReport {
            sink,
            ..PassReport::default()
        }
    }

    pub(super) fn push(&mut self, line: PassLine) {
        match &mut self.sink {
            Some(sink) => sink(&line),
            None => self.lines.push(line),
        }
    }
}

pub(super) fn line(
    decision: Outcome,
    email: &str,
    event_id: &str,
    reference: &str,
    step: Option<&str>,
    reason: String,
) -> PassLine {
    PassLine {
        decision,
        email: email.into(),
        event_id: event_id.into(),
        reference: reference.into(),
        step: step.map(str::to_string),
        reason,
    }
}
