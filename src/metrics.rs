//! Prometheus metrics: counters kept by the `metrics` crate and rendered by its Prometheus
//! exporter at `GET /metrics`, plus gauges read from the database at scrape time.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Hooks received, by action and outcome.
pub const HOOKS: &str = "quicket_followup_hooks_total";
/// Reminder steps decided at send time, by step and outcome (sent, retry, failed, skipped).
pub const REMINDERS: &str = "quicket_followup_reminders_total";
/// Sends the mail server refused, by kind (transient, permanent).
pub const SMTP_ERRORS: &str = "quicket_followup_smtp_errors_total";
/// How long reminder passes take.
pub const PASS_DURATION: &str = "quicket_followup_pass_duration_seconds";
/// Reminder passes that failed (an error, or a bug met mid-pass).
pub const FAILED_PASSES: &str = "quicket_followup_failed_passes_total";
/// When the last reminder pass finished (Unix time).
pub const LAST_PASS: &str = "quicket_followup_last_pass_timestamp_seconds";
/// Buyer-events a pass would look at now (read from the database at scrape time).
pub const DUE: &str = "quicket_followup_reminders_due";
/// Hooks kept with a problem, by kind (`event_date` unreadable, `amount` unknown, `caps` applied,
/// `any`), read from the database at scrape time.
pub const PROBLEMS: &str = "quicket_followup_hooks_with_problems";

/// Bounces and complaints reported by the email provider, by provider and kind (`unmatched`: one
/// naming no reminder sent to its address, which changed nothing).
pub const EMAIL_EVENTS: &str = "quicket_followup_email_events_total";

/// Complaints per email sent over the breaker's window (7 days, or since sending resumed).
pub const COMPLAINT_RATE: &str = "quicket_followup_complaint_rate";
/// Hard bounces per email sent over the same window.
pub const HARD_BOUNCE_RATE: &str = "quicket_followup_hard_bounce_rate";
/// 1 while the circuit breaker has paused sending.
pub const SENDING_PAUSED: &str = "quicket_followup_sending_paused";
/// Connections closed at once because their client address already held its share.
pub const CONNECTIONS_OVER_CAP: &str = "quicket_followup_connections_over_cap_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. Tests start several services in one process;
/// they share it.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(PASS_DURATION.into()),
                &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // If another recorder is already global (a library user's), ours still renders what it has.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(
        HOOKS,
        "Hooks received on the webhook, by action and outcome"
    );
    metrics::describe_counter!(
        REMINDERS,
        "Reminder steps at send time, by step and outcome"
    );
    metrics::describe_counter!(SMTP_ERRORS, "Sends refused or failed, by kind");
    metrics::describe_histogram!(PASS_DURATION, "Duration of reminder passes in seconds");
    metrics::describe_counter!(
        FAILED_PASSES,
        "Reminder passes that failed (an error or a bug) since start"
    );
    metrics::describe_gauge!(LAST_PASS, "When the last reminder pass finished, Unix time");
    metrics::describe_counter!(
        EMAIL_EVENTS,
        "Bounces and complaints reported by the email provider, by provider and kind (unmatched: naming no reminder sent, changed nothing)"
    );
    metrics::describe_gauge!(
        COMPLAINT_RATE,
        "Complaints per email sent, last 7 days or since sending resumed"
    );
    metrics::describe_gauge!(
        HARD_BOUNCE_RATE,
        "Hard bounces per email sent, last 7 days or since sending resumed"
    );
    metrics::describe_gauge!(SENDING_PAUSED, "1 while the circuit breaker pauses sending");
    metrics::describe_counter!(
        CONNECTIONS_OVER_CAP,
        "Connections closed at once: their client address held server.max_connections_per_client"
    );
    metrics::describe_gauge!(DUE, "Buyer-events due to be looked at by a pass now");
    metrics::describe_gauge!(
        PROBLEMS,
        "Hooks kept with a problem (see /admin/problems), by kind"
    );
}
