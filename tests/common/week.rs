//! A week with known numbers, written straight into the database as the service would have left
//! it: the report's figures are checked against these.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use quicket_followup::store::Store;

/// The end of the seeded week: Monday 7 December 2026, 08:00 in Johannesburg.
pub const WEEK_END: &str = "2026-12-07T06:00:00Z";
/// Reminders sent in the week.
pub const SENT: i64 = 6;
/// Purchases after a reminder in the week, and what they paid.
pub const RECOVERED: i64 = 2;
pub const RECOVERED_CENTS: i64 = 75_000;
pub const UNSUBSCRIBES: i64 = 2;
pub const COMPLAINTS: i64 = 1;
pub const HARD_BOUNCES: i64 = 2;
pub const SOFT_BOUNCES: i64 = 1;
pub const HOOKS: i64 = 5;
pub const PROBLEM_HOOKS: i64 = 1;
/// Buyer-events of the control group: emailed and held out, whose first step fell due in the week.
pub const EMAILED: u64 = 6;
pub const HELD_OUT: u64 = 4;

/// A buyer's address: none of them may appear in a report.
pub fn buyer(n: usize) -> String {
    format!("buyer{n}@mail.co.za")
}

/// A buyer's name: none may appear in a report either.
pub const NAME: &str = "Lerato Dlamini";

/// Writes the week.
pub async fn seed(store: &Store) {
    store
        .write(|c| {
            let order = |n: usize, state: &str, amount: i64, at: &str| {
                c.execute(
                    "INSERT INTO orders (reference, state, state_since, changed_at, first_seen, event_id,
                        event_name, event_date, amount_cents, email, email_key, buyer_name)
                     VALUES (?1, ?2, ?3, ?3, ?3, '456', 'Jazz on the Lawn', '2026-12-20 19:00:00', ?4, ?5, ?5, ?6)",
                    rusqlite::params![format!("R-{n}"), state, at, amount, buyer(n), NAME],
                )
                .unwrap();
            };
            let buyer_event = |n: usize, completed: Option<&str>, changed: &str| {
                c.execute(
                    "INSERT INTO buyer_events (email_key, event_id, state, changed_at, reference, completed_at,
                        email, event_date)
                     VALUES (?1, '456', ?2, ?3, ?4, ?5, ?1, '2026-12-20 19:00:00')",
                    rusqlite::params![
                        buyer(n),
                        if completed.is_some() { "checkout_completed" } else { "checkout_started" },
                        completed.unwrap_or(changed),
                        format!("R-{n}"),
                        completed
                    ],
                )
                .unwrap();
            };
            let sent = |n: usize, at: &str| {
                c.execute(
                    "INSERT INTO reminders (email_key, event_id, step, status, reference, email, message_id,
                        decided_at, sent_at, attempts)
                     VALUES (?1, '456', 'abandoned-1', 'sent', ?2, ?1, ?3, ?4, ?4, 1)",
                    rusqlite::params![buyer(n), format!("R-{n}"), format!("<m{n}@shop.co.za>"), at],
                )
                .unwrap();
            };
            // Six reminders in the week (Tuesday 1 December, 10:00 to 15:00 local), one before it.
            for n in 0..6 {
                sent(n, &format!("2026-12-01T{:02}:00:00.000Z", 8 + n));
            }
            sent(9, "2026-11-28T08:00:00.000Z");
            // Two buyers paid after their reminder within the week; one paid after the week; one paid
            // in the week without any reminder (not the reminders' doing).
            order(0, "checkout_completed", 45_000, "2026-12-02T08:00:00.000Z");
            buyer_event(0, Some("2026-12-02T08:00:00.000Z"), "");
            order(1, "checkout_completed", 30_000, "2026-12-03T08:00:00.000Z");
            buyer_event(1, Some("2026-12-03T08:00:00.000Z"), "");
            order(2, "checkout_completed", 99_000, "2026-12-10T08:00:00.000Z");
            buyer_event(2, Some("2026-12-10T08:00:00.000Z"), "");
            order(7, "checkout_completed", 12_000, "2026-12-02T09:00:00.000Z");
            buyer_event(7, Some("2026-12-02T09:00:00.000Z"), "");
            for n in [3, 4, 5, 9] {
                order(n, "checkout_started", 20_000, "2026-11-30T20:00:00.000Z");
                buyer_event(n, None, "2026-11-30T20:00:00.000Z");
            }
            // The control group: the six emailed and four held out, all due in the week.
            for n in 0..6 {
                c.execute(
                    "INSERT INTO experiment VALUES (?1, '456', 0, 1000, 'abandoned-1', ?2)",
                    rusqlite::params![buyer(n), format!("2026-12-01T{:02}:00:00.000Z", 8 + n)],
                )
                .unwrap();
            }
            for n in 20..24 {
                order(n, "checkout_started", 20_000, "2026-11-30T20:00:00.000Z");
                buyer_event(n, None, "2026-11-30T20:00:00.000Z");
                c.execute(
                    "INSERT INTO experiment VALUES (?1, '456', 1, 1000, 'abandoned-1', '2026-12-01T12:00:00.000Z')",
                    [buyer(n)],
                )
                .unwrap();
            }
            // Unsubscribes: two in the week, one before; a bounce's suppression is no unsubscribe.
            for (n, source, at) in [
                (3, "unsubscribe", "2026-12-02T10:00:00.000Z"),
                (4, "unsubscribe", "2026-12-04T10:00:00.000Z"),
                (9, "unsubscribe", "2026-11-29T10:00:00.000Z"),
                (5, "bounce", "2026-12-04T11:00:00.000Z"),
            ] {
                c.execute(
                    "INSERT INTO suppressions (email_key, added_at, source) VALUES (?1, ?2, ?3)",
                    rusqlite::params![buyer(n), at, source],
                )
                .unwrap();
            }
            // The email provider: one complaint, two hard bounces, one soft in the week about reminders
    // sent; one before; and one complaint in the week naming no message sent (counts nowhere).
            c.execute(
                "INSERT INTO email_deliveries (id, received_at, provider, outcome) VALUES (1, '2026-12-02T00:00:00.000Z', 'postmark', 'recorded')",
                [],
            )
            .unwrap();
            for (i, kind, at) in [
                (0, "complaint", "2026-12-03T10:00:00.000Z"),
                (1, "hard_bounce", "2026-12-03T11:00:00.000Z"),
                (2, "hard_bounce", "2026-12-03T12:00:00.000Z"),
                (3, "soft_bounce", "2026-12-03T13:00:00.000Z"),
                (4, "complaint", "2026-11-20T13:00:00.000Z"),
                (5, "complaint", "2026-12-03T14:00:00.000Z"),
            ] {
                c.execute(
                    "INSERT INTO email_events (delivery_id, received_at, provider, kind, email_key, fingerprint, matched)
                     VALUES (1, ?1, 'postmark', ?2, ?3, ?4, ?5)",
                    rusqlite::params![at, kind, buyer(i), format!("f{i}"), i != 5],
                )
                .unwrap();
            }
            // Quicket's messages: five in the week, one of them unreadable; one before.
            for (i, at, error) in [
                (0, "2026-12-01T07:00:00.000Z", None),
                (1, "2026-12-01T07:10:00.000Z", None),
                (2, "2026-12-02T07:00:00.000Z", Some("event_date: not a date")),
                (3, "2026-12-03T07:00:00.000Z", None),
                (4, "2026-12-04T07:00:00.000Z", None),
                (5, "2026-11-29T07:00:00.000Z", None),
            ] {
                c.execute(
                    "INSERT INTO deliveries (received_at, body, outcome, error, reference, action)
                     VALUES (?1, ?2, 'recorded', ?3, ?4, 'checkout_started')",
                    rusqlite::params![
                        at,
                        format!("{{\"email\": \"{}\"}}", buyer(i)).into_bytes(),
                        error,
                        format!("R-{i}")
                    ],
                )
                .unwrap();
            }
            // An alert that began and ended in the week.
            c.execute(
                "INSERT INTO alerts (condition, started_at, told_at, resolved_at, summary)
                 VALUES ('transport', '2026-12-02T10:00:00.000Z', '2026-12-02T10:00:00.000Z',
                         '2026-12-02T11:30:00.000Z', 'No email could be sent.')",
                [],
            )
            .unwrap();
            Ok(())
        })
        .await
        .unwrap();
}
