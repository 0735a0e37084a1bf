//! The schedule workshop: the schedule file beside the main configuration, "What would this
//! send?" against what the passes then really send, and the editor at /admin/schedule.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use chrono::{DateTime, Duration, Utc};
use common::TestApp;
use quicket_followup::config::{ReminderStep, SendWindow};
use quicket_followup::domain::OrderState;
use quicket_followup::reminders::forecast::{self, CronPasses, Passes};
use serde_json::json;

fn hook(reference: &str, action: &str, email: &str, event_date: &str) -> String {
    json!({
        "reference": reference, "event_id": 456, "event_name": "Jazz on the Lawn",
        "amount": "450.00", "email": email, "event_date": event_date, "action": action,
        "tickets": [{"id": 1, "attendee_name": "Lerato Dlamini", "attendee_email": email,
                     "ticket_type": "VIP", "price": "450.00", "barcode": 0}]
    })
    .to_string()
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Africa::Johannesburg)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[tokio::test]
async fn what_would_this_send_matches_what_the_passes_at_those_times_then_send() {
    let app = TestApp::spawn_with(|c| {
        c.schedule.scan = "0 0 * * * *".into(); // a pass every hour: 168 in the week
        c.experiment.holdout = quicket_followup::experiment::Share::parse("20%").unwrap();
        c.reminders.push(ReminderStep {
            name: "abandoned-2".into(),
            after: Some(std::time::Duration::from_secs(26 * 3600)),
            before_event: None,
            when: vec![OrderState::Started, OrderState::Cancelled],
            template: "abandoned".into(),
            variants: Vec::new(),
            even_if_sold_out: false,
            send_window: SendWindow::parse("07:00-21:00").unwrap(),
        });
    })
    .await;
    let now = Utc::now();
    // Buyers in every state, events from two days to far ahead (so that last-chance falls due
    // in the week for some), a paid one and an unsendable address.
    let actions = [
        "checkout_started",
        "checkout_cancelled",
        "eft_pending",
        "checkout_started",
        "checkout_completed",
    ];
    for i in 0..30 {
        let action = actions[i % actions.len()];
        let event = local(now + Duration::hours(40 + 9 * i as i64));
        let email = if i == 7 {
            "someone@example.com".to_string()
        } else {
            format!("buyer{i}@mail.co.za")
        };
        let (status, answer) = app
            .post_hook(hook(&format!("R{i}"), action, &email, &event))
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let config = app.service.engine.settings().config.clone();
    let from = Utc::now();
    let report = forecast::what_would_send(
        &app.service.engine,
        app.store(),
        &config,
        from,
        forecast::week(),
    )
    .await
    .unwrap();
    assert_eq!(
        report.followed, 24,
        "the 6 paid buyer-events are not followed"
    );
    assert!(
        report.forecast.sends.len() >= 20,
        "a week of the default steps sends plenty: {:?}",
        report.forecast.sends
    );

    // The real passes at the same moments, sending (into the outbox).
    let passes = CronPasses::new(&config.schedule.scan, config.schedule.timezone).unwrap();
    let mut sent = Vec::new();
    let mut at = passes.next(from, false);
    let mut n = 0;
    while let Some(t) = at.filter(|t| *t < report.until) {
        let pass = app.service.engine.run_pass(t, false).await.unwrap();
        for line in pass.lines.iter().filter(|l| l.decision == "sent") {
            sent.push((t, line.step.clone().unwrap(), line.email.clone()));
        }
        n += 1;
        at = passes.next(t, false);
    }
    assert_eq!(n, report.forecast.passes);
    let forecast: Vec<(DateTime<Utc>, String, String)> = report
        .forecast
        .sends
        .iter()
        .map(|s| (s.at, s.step.clone(), s.email.clone()))
        .collect();
    let mut sent_sorted = sent.clone();
    sent_sorted.sort();
    let mut forecast_sorted = forecast.clone();
    forecast_sorted.sort();
    assert_eq!(forecast_sorted, sent_sorted);
    // And per day and step, as the page shows them.
    let days = report.days();
    assert_eq!(
        days.iter().map(|d| d.total).sum::<usize>(),
        sent.len(),
        "{days:?}"
    );
    let steps = report.forecast.per_step(&report.rules);
    for (i, step) in report.rules.steps.iter().enumerate() {
        assert_eq!(
            steps[i],
            sent.iter().filter(|(_, s, _)| *s == step.name).count(),
            "{}",
            step.name
        );
    }
    assert!(report.forecast.held_out > 0, "20% held out: some fall due");
}
