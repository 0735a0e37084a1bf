//! A buyer-event as the planner sees it: its state, its history of steps and what became of
//! each, and what a pass made of it. The store reads these, the planner decides on them.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::OrderState;

/// A step already decided for a buyer-event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// The step's name.
    pub step: String,
    /// What became of it.
    pub status: StepStatus,
    /// When it was claimed or skipped.
    pub decided_at: DateTime<Utc>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
}

/// What became of a step for a buyer-event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Claimed for sending; sent or retried by the pass.
    Claimed,
    /// Sent.
    Sent,
    /// Decided against; never sent.
    Skipped,
    /// The mail server refused it for good.
    Failed,
    /// Not sent because the buyer-event is in the control group: counts as an email for every
    /// rule (min_gap), so the two groups are timed alike.
    HeldOut,
    /// Its SMTP transaction had begun when the process died: it may or may not have arrived, so
    /// it is never sent again, and counts as an email for every rule (min_gap).
    Interrupted,
}

impl StepStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Claimed => "claimed",
            StepStatus::Sent => "sent",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
            StepStatus::HeldOut => "held_out",
            StepStatus::Interrupted => "interrupted",
        }
    }

    /// The status for a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Claimed,
            Self::Sent,
            Self::Skipped,
            Self::Failed,
            Self::HeldOut,
            Self::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

stored_as_text!(StepStatus, "step status");

/// Why a buyer is not emailed: they paid for the event meanwhile.
pub const BUYER_PAID: &str = "the buyer paid";
/// What became of a send that a crash interrupted after its SMTP transaction began.
pub const SEND_INTERRUPTED: &str = "interrupted: may or may not have arrived";

/// Why a buyer is not emailed: the address is on the suppression list.
pub const ADDRESS_SUPPRESSED: &str = "the address is unsubscribed";

/// What a pass made of a buyer-event or a claim, as `run-once`, the logs and the database
/// (`buyer_events.last_decision`) name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// An email went out.
    Sent,
    /// Nothing now; looked at again later.
    Deferred,
    /// Not emailed, for the reason given.
    Skipped,
    /// Nothing left to send.
    Done,
    /// Sending failed (to be retried, or refused for good).
    Failed,
    /// A send that a crash interrupted once its SMTP transaction had begun: it may or may not
    /// have arrived, and is not sent again.
    Interrupted,
    /// A dry run would send it (never stored).
    WouldSend,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 7] = [
        Outcome::Sent,
        Outcome::Deferred,
        Outcome::Skipped,
        Outcome::Done,
        Outcome::Failed,
        Outcome::Interrupted,
        Outcome::WouldSend,
    ];

    /// The name `run-once` prints and the database keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Deferred => "deferred",
            Outcome::Skipped => "skipped",
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::WouldSend => "would send",
        }
    }

    /// The outcome for a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that `{:<10}` lines the report's columns up.
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for Outcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

stored_as_text!(Outcome, "outcome");

impl serde::Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The timing-experiment arm a buyer-event was given for one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmRecord {
    /// The step.
    pub step: String,
    /// The step's delays when the arm was given (`"1h, 1d"`): another list is another experiment.
    pub arms: String,
    /// Which of them (0-based).
    pub arm: usize,
    /// Given by this pass and not yet stored.
    pub new: bool,
}

/// What the planner needs to know about one buyer-event.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The buyer's address, lower-cased: half of the buyer-event's key.
    pub email_key: String,
    /// The event: the other half.
    pub event_id: String,
    /// The address to write to, as Quicket sent it.
    pub email: String,
    /// The buyer-event's state.
    pub state: OrderState,
    /// The buyer's latest checkout change for the event.
    pub changed_at: DateTime<Utc>,
    /// The event's local start, when known.
    pub event_date: Option<NaiveDateTime>,
    /// Steps already decided.
    pub history: Vec<StepRecord>,
    /// Whether the address is on the suppression list.
    pub suppressed: bool,
    /// Whether Quicket's API says the buyer's tickets can no longer be bought.
    pub sold_out: bool,
    /// Whether the buyer-event is in the control group: never emailed.
    pub held_out: bool,
    /// The timing-experiment arms it was given.
    pub arms: Vec<ArmRecord>,
}
