//! The promises, checked against random histories: hooks of every action, repeated and out of
//! order, for several references, buyers and events; passes at random times; restarts; an SMTP
//! server that refuses for a while. After every step:
//! - never an email for a buyer-event that was paid when it was sent;
//! - each step at most once per buyer-event, and at most one email per buyer-event per `min_gap`;
//! - never outside the send window (South Africa's Consumer Protection Act by default, hours by
//!   day with a listed holiday, or a step's own window: each history runs under one of them, and
//!   is checked against rules written out here, not the library's), never within
//!   `stop_before_event` of the event;
//! - a paid order never returns to another state;
//!
//! and at the end, with the SMTP server answering, nothing is left claimed and unsent (liveness).
//! Cases proptest ever shrank are kept in `tests/properties.proptest-regressions` and run first.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
use common::smtp;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Africa::Johannesburg;
use proptest::prelude::*;
use quicket_followup::config::{Config, SendWindow, Transport};
use quicket_followup::domain::OrderState;
use quicket_followup::quicket::parse_hook;
use quicket_followup::reminders::Engine;
use quicket_followup::store::Store;
use smtp::SmtpServer;

const BUYERS: [&str; 3] = [
    "thandi@mail.co.za",
    "pieter@gmail.com",
    "lerato@webmail.co.za",
];
const ACTIONS: [&str; 4] = [
    "checkout_started",
    "checkout_cancelled",
    "eft_pending",
    "checkout_completed",
];

/// One step of a history.
#[derive(Debug, Clone)]
enum Op {
    /// A hook for reference `r` (its buyer and event are fixed by `r`), with an action.
    Hook { r: usize, action: usize },
    /// Time passes.
    Wait { minutes: i64 },
    /// A reminder pass now.
    Pass,
    /// The SMTP server refuses the next `n` transactions with 451.
    SmtpRefuses { n: usize },
    /// The process stops and starts again.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..6usize, 0..4usize).prop_map(|(r, action)| Op::Hook { r, action }),
        4 => prop_oneof![1..90i64, 90..1500i64, 1500..6000i64].prop_map(|minutes| Op::Wait { minutes }),
        4 => Just(Op::Pass),
        1 => (1..4usize).prop_map(|n| Op::SmtpRefuses { n }),
        1 => Just(Op::Restart),
    ]
}

/// The start of every history: a Monday 09:00 in Johannesburg.
fn start() -> DateTime<Utc> {
    Johannesburg
        .with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// Reference `r` belongs to buyer `r % 3` and event `r % 2`: event 0 is in four days (so
/// `last-chance` and `stop_before_event` come into play), event 1 in a month.
fn event_of(r: usize) -> (&'static str, &'static str) {
    if r.is_multiple_of(2) {
        ("100", "2026-12-04 19:00")
    } else {
        ("200", "2026-12-30 19:00")
    }
}

fn body(r: usize, action: usize) -> Vec<u8> {
    let (event, date) = event_of(r);
    serde_json::json!({
        "reference": format!("R{r}"), "event_id": event, "event_name": "Jazz", "amount": "150.00",
        "email": BUYERS[r % 3], "event_date": date, "action": ACTIONS[action],
        "tickets": [{"attendee_name": "A B", "attendee_email": BUYERS[r % 3], "ticket_type": "GA", "price": "150.00"}]
    })
    .to_string()
    .into_bytes()
}

/// The send windows a history may run under.
#[derive(Debug, Clone, Copy)]
enum Window {
    /// The default in Africa/Johannesburg: "za-cpa".
    Default,
    /// `{ mon-fri = "07:00-19:00", sat = "10:00-12:00" }` with `holidays = ["2026-12-02"]`.
    ByDay,
    /// "08:00-20:00" every day, and eft-1 with its own "06:00-22:00".
    StepOwn,
}

fn window() -> impl Strategy<Value = Window> {
    prop_oneof![
        Just(Window::Default),
        Just(Window::ByDay),
        Just(Window::StepOwn)
    ]
}

/// South Africa's public holidays over the span of these histories, as published.
const ZA_HOLIDAYS: [&str; 11] = [
    "2026-12-16",
    "2026-12-25",
    "2026-12-26",
    "2027-01-01",
    "2027-03-21",
    "2027-03-22",
    "2027-03-26",
    "2027-03-29",
    "2027-04-27",
    "2027-05-01",
    "2027-06-16",
];

impl Window {
    fn apply(self, config: &mut Config) {
        match self {
            Window::Default => {}
            Window::ByDay => {
                config.schedule.send_window = SendWindow::by_day(
                    [("mon-fri", "07:00-19:00"), ("sat", "10:00-12:00")]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
                .unwrap();
                config.schedule.holidays =
                    quicket_followup::send_rules::HolidayList::parse(["2026-12-02"]).unwrap();
            }
            Window::StepOwn => {
                config.schedule.send_window = SendWindow::parse("08:00-20:00").unwrap();
                let eft = config
                    .reminders
                    .iter_mut()
                    .find(|s| s.name == "eft-1")
                    .unwrap();
                eft.send_window = SendWindow::parse("06:00-22:00").unwrap();
            }
        }
    }

    /// Whether `step` may be sent at `at`, by the rules as the organiser reads them.
    fn allows(self, step: &str, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&Johannesburg);
        let (date, hour, minute) = (local.date_naive(), local.hour(), local.minute());
        let minutes = hour * 60 + minute;
        let between = |from: u32, to: u32| minutes >= from * 60 && minutes < to * 60;
        let listed = |dates: &[&str]| {
            dates
                .iter()
                .any(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap() == date)
        };
        match self {
            Window::Default => {
                !listed(&ZA_HOLIDAYS)
                    && match date.weekday() {
                        Weekday::Sun => false,
                        Weekday::Sat => between(9, 13),
                        _ => between(8, 20),
                    }
            }
            Window::ByDay => {
                !listed(&["2026-12-02"])
                    && match date.weekday() {
                        Weekday::Sun => false,
                        Weekday::Sat => between(10, 12),
                        _ => between(7, 19),
                    }
            }
            Window::StepOwn if step == "eft-1" => between(6, 22),
            Window::StepOwn => between(8, 20),
        }
    }
}

struct World {
    window: Window,
    dir: tempfile::TempDir,
    config: Arc<Config>,
    store: Store,
    engine: Engine,
    smtp: SmtpServer,
    now: DateTime<Utc>,
    /// References seen paid (they must stay paid).
    paid: BTreeSet<String>,
}

impl World {
    async fn new(window: Window) -> World {
        Self::with_holdout(window, "0%").await
    }

    async fn with_holdout(window: Window, share: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let smtp = SmtpServer::start();
        let mut config = common::test_config(dir.path());
        window.apply(&mut config);
        config.email.transport = Transport::Smtp;
        config.email.smtp_url = smtp.url();
        config.email.max_per_minute = 100_000;
        config.experiment.holdout = quicket_followup::experiment::Share::parse(share).unwrap();
        let config = Arc::new(config);
        let store = Store::open(&config.database.path).unwrap();
        let engine = Engine::new(config.clone(), store.clone()).await.unwrap();
        World {
            window,
            dir,
            config,
            store,
            engine,
            smtp,
            now: start(),
            paid: BTreeSet::new(),
        }
    }

    async fn restart(&mut self) {
        self.store.close().await;
        self.store = Store::open(&self.config.database.path).unwrap();
        self.engine = Engine::new(self.config.clone(), self.store.clone())
            .await
            .unwrap();
    }

    async fn apply(&mut self, op: &Op) {
        match op {
            Op::Hook { r, action } => {
                let raw = body(*r, *action);
                let parsed = parse_hook(&raw);
                self.store.ingest(raw, parsed, self.now).await.unwrap();
                self.now += Duration::seconds(1);
            }
            Op::Wait { minutes } => self.now += Duration::minutes(*minutes),
            Op::Pass => {
                self.engine.run_pass(self.now, false).await.unwrap();
                self.now += Duration::seconds(1);
            }
            Op::SmtpRefuses { n } => {
                for _ in 0..*n {
                    self.smtp.fail_next_transaction(451, "4.3.0 try later");
                }
            }
            Op::Restart => self.restart().await,
        }
    }

    /// Sent reminders: (email_key, event_id, step, sent_at, message_id).
    async fn sent(&self) -> Vec<(String, String, String, DateTime<Utc>, String)> {
        self.store
            .read(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT email_key, event_id, step, sent_at, message_id FROM reminders WHERE status = 'sent'",
                )?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?, r.get(4)?))
                    })?
                    .collect::<Result<Vec<(String, String, String, String, String)>, _>>()?;
                Ok(rows
                    .into_iter()
                    .map(|(k, e, s, at, id)| {
                        (k, e, s, quicket_followup::store::parse_timestamp(&at).unwrap(), id)
                    })
                    .collect())
            })
            .await
            .unwrap()
    }

    /// When each buyer-event was first paid, from the orders' own history.
    async fn paid_at(&self) -> BTreeMap<(String, String), DateTime<Utc>> {
        self.store
            .read(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT o.email_key, o.event_id, min(h.received_at) FROM orders o
                     JOIN order_history h ON h.reference = o.reference
                     WHERE h.action = 'checkout_completed' AND h.applied = 1
                     GROUP BY o.email_key, o.event_id",
                )?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)))?
                    .collect::<Result<Vec<(String, String, String)>, _>>()?;
                Ok(rows
                    .into_iter()
                    .map(|(k, e, at)| {
                        (
                            (k, e),
                            quicket_followup::store::parse_timestamp(&at).unwrap(),
                        )
                    })
                    .collect())
            })
            .await
            .unwrap()
    }

    async fn check_invariants(&mut self) -> Result<(), TestCaseError> {
        let sent = self.sent().await;
        let paid_at = self.paid_at().await;
        let rules = &self.config.schedule;
        let min_gap = Duration::from_std(rules.min_gap).unwrap();
        let stop = Duration::from_std(rules.stop_before_event).unwrap();
        let mut per_buyer_event: BTreeMap<(String, String), Vec<DateTime<Utc>>> = BTreeMap::new();
        let mut steps = BTreeSet::new();
        for (key, event, step, at, _) in &sent {
            if let Some(paid) = paid_at.get(&(key.clone(), event.clone())) {
                prop_assert!(
                    at < paid,
                    "{key} {event} {step} emailed at {at} after paying at {paid}"
                );
            }
            prop_assert!(
                steps.insert((key.clone(), event.clone(), step.clone())),
                "{step} twice to {key} {event}"
            );
            per_buyer_event
                .entry((key.clone(), event.clone()))
                .or_default()
                .push(*at);
            prop_assert!(
                self.window.allows(step, *at),
                "{step} sent at {} local, outside the window {:?}",
                at.with_timezone(&Johannesburg),
                self.window
            );
            let date = if event == "100" {
                "2026-12-04 19:00"
            } else {
                "2026-12-30 19:00"
            };
            let starts = Johannesburg
                .from_local_datetime(
                    &chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%d %H:%M").unwrap(),
                )
                .unwrap()
                .with_timezone(&Utc);
            prop_assert!(
                *at < starts - stop,
                "sent at {at}, within {stop} of the event at {starts}"
            );
        }
        for ((key, event), mut times) in per_buyer_event {
            times.sort();
            for pair in times.windows(2) {
                prop_assert!(
                    pair[1] - pair[0] >= min_gap,
                    "two emails to {key} {event} within min_gap: {pair:?}"
                );
            }
        }
        // What the SMTP server received matches what is recorded, each Message-ID once.
        let received = self.smtp.received();
        let ids: BTreeSet<String> = received
            .iter()
            .map(|m| m.header("Message-ID").unwrap())
            .collect();
        prop_assert_eq!(ids.len(), received.len(), "a Message-ID arrived twice");
        prop_assert_eq!(received.len(), sent.len());
        // A paid order never returns to another state.
        for r in 0..6 {
            let reference = format!("R{r}");
            if let Some(order) = self.store.order(&reference).await.unwrap() {
                if order.status == OrderState::Completed {
                    self.paid.insert(reference);
                } else {
                    prop_assert!(
                        !self.paid.contains(&reference),
                        "{reference} left checkout_completed"
                    );
                }
            }
        }
        Ok(())
    }
}

fn run_history(window: Window, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut world = World::new(window).await;
        for op in &ops {
            world.apply(op).await;
            world.check_invariants().await?;
        }
        // Liveness: the SMTP server answers again; a day of passes later nothing is left claimed.
        for _ in 0..48 {
            world.now += Duration::minutes(30);
            world.engine.run_pass(world.now, false).await.unwrap();
            world.check_invariants().await?;
        }
        // A send refused at the last pass above may still wait for its retry: keep passing (every
        // 30 minutes, at most a week) until every claim is sent or given up for good.
        let open_claims = |store: Store| async move {
            store
                .read(|conn| {
                    Ok(conn.query_row(
                        "SELECT count(*) FROM reminders WHERE status = 'claimed'",
                        [],
                        |r| r.get::<_, i64>(0),
                    )?)
                })
                .await
                .unwrap()
        };
        for _ in 0..336 {
            if open_claims(world.store.clone()).await == 0 {
                break;
            }
            world.now += Duration::minutes(30);
            world.engine.run_pass(world.now, false).await.unwrap();
            world.check_invariants().await?;
        }
        let open = open_claims(world.store.clone()).await;
        prop_assert_eq!(open, 0, "a claimed reminder was never sent");
        world.store.close().await;
        drop(world.dir);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Each case is a real database, engine and SMTP server; QF_PROPTEST_CASES runs more.
        cases: std::env::var("QF_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_histories_keep_every_promise(
        window in window(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        run_history(window, ops)?;
    }
}

/// The groups recorded so far: (email_key, event_id) -> held out.
async fn groups(store: &Store) -> BTreeMap<(String, String), bool> {
    store
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT email_key, event_id, held_out FROM experiment")?;
            let rows = stmt
                .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?
                .collect::<Result<BTreeMap<(String, String), bool>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap()
}

/// With any holdout share (changed by a reload halfway) and any history, a held-out buyer-event
/// is never sent anything, and a group once recorded never changes.
fn run_holdout_history(ops: Vec<Op>, first: u32, second: u32) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut world = World::with_holdout(Window::Default, &format!("{first}%")).await;
        let mut seen: BTreeMap<(String, String), bool> = BTreeMap::new();
        let tail = (0..24).map(|_| Op::Pass);
        for (i, op) in ops.iter().cloned().chain(tail).enumerate() {
            if i == ops.len() / 2 {
                let mut config = (*world.config).clone();
                config.experiment.holdout =
                    quicket_followup::experiment::Share::parse(&format!("{second}%")).unwrap();
                world.config = Arc::new(config);
                let settings =
                    quicket_followup::reminders::pass::Settings::load(world.config.clone())
                        .unwrap();
                world.engine.replace_settings(settings);
            }
            if matches!(op, Op::Pass) {
                world.now += Duration::minutes(45);
            }
            world.apply(&op).await;
            world.check_invariants().await?;
            let groups = groups(&world.store).await;
            for (key, held) in &seen {
                prop_assert_eq!(
                    groups.get(key),
                    Some(held),
                    "the group of {:?} changed",
                    key
                );
            }
            for (key, event, step, _, _) in world.sent().await {
                prop_assert!(
                    groups.get(&(key.clone(), event.clone())) == Some(&false),
                    "{} sent to {} {} whose group is {:?}",
                    step,
                    key,
                    event,
                    groups.get(&(key.clone(), event.clone()))
                );
            }
            seen = groups;
        }
        world.store.close().await;
        drop(world.dir);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("QF_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(12),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_held_out_buyer_event_is_never_emailed(
        ops in proptest::collection::vec(op(), 1..40),
        first in 0..=50u32,
        second in 0..=50u32,
    ) {
        run_holdout_history(ops, first, second)?;
    }
}

#[test]
fn the_clock_in_these_histories_starts_inside_the_send_window() {
    assert_eq!(start().with_timezone(&Johannesburg).hour(), 9);
    for window in [Window::Default, Window::ByDay, Window::StepOwn] {
        assert!(window.allows("abandoned-1", start()), "{window:?}");
    }
}

/// The oracle above agrees with the library's calendar (so that a history is checked against
/// the published holidays, and the library against the oracle).
#[test]
fn the_oracles_holidays_are_the_librarys() {
    let library: Vec<String> = [2026, 2027]
        .into_iter()
        .flat_map(quicket_followup::send_rules::za_public_holidays)
        .map(|(d, _)| d.to_string())
        .filter(|d| d.as_str() >= "2026-12-01" && d.as_str() <= "2027-06-30")
        .collect();
    assert_eq!(library, ZA_HOLIDAYS);
}
