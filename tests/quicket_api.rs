//! The optional lookup of events in Quicket's public API (`[quicket] api_key`). Quicket cannot be
//! reached from here, so a small local HTTP server answers like the API does; everything else is
//! real: the service, its SQLite file, the SMTP server receiving the reminders.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
use common::smtp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{TestApp, hook};
use quicket_followup::config::{Config, EventConfig, SendWindow, Transport};
use quicket_followup::reminders::PassReport;
use serde_json::{Value, json};
use smtp::SmtpServer;
use warp::Filter;

const KEY: &str = "test-api-key-123";
const BUYER: &str = "lerato@mail.co.za";
const PAGE: &str = "https://www.quicket.co.za/events/456-jazz-on-the-lawn/";
const PATTERN_PAGE: &str = "https://www.quicket.co.za/events/456/";

/// How the fake API answers for one event.
#[derive(Clone)]
enum Answer {
    /// A status, a body and extra headers.
    Reply(u16, String, Vec<(&'static str, String)>),
    /// Never answers.
    Hang,
}

/// A local stand-in for `api.quicket.co.za`.
struct FakeApi {
    addr: SocketAddr,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    /// Every request: (event id, api_key parameter).
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeApi {
    async fn start() -> FakeApi {
        let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let requests: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let (a, r) = (answers.clone(), requests.clone());
        let route = warp::path!("api" / "events" / String)
            .and(warp::get())
            .and(warp::query::<HashMap<String, String>>())
            .then(move |id: String, query: HashMap<String, String>| {
                let answer = a.lock().unwrap().get(&id).cloned();
                r.lock()
                    .unwrap()
                    .push((id, query.get("api_key").cloned().unwrap_or_default()));
                async move {
                    let (status, body, headers) = match answer {
                        Some(Answer::Reply(status, body, headers)) => (status, body, headers),
                        Some(Answer::Hang) => {
                            std::future::pending::<()>().await;
                            unreachable!()
                        }
                        None => (404, "{\"message\": \"not found\"}".into(), vec![]),
                    };
                    let mut response = warp::http::Response::builder()
                        .status(status)
                        .header("content-type", "application/json");
                    for (name, value) in headers {
                        response = response.header(name, value);
                    }
                    response.body(body).unwrap()
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(warp::serve(route).incoming(listener).run());
        FakeApi {
            addr,
            answers,
            requests,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn answer(&self, event: &str, answer: Answer) {
        self.answers.lock().unwrap().insert(event.into(), answer);
    }

    fn ok(&self, event: &str, body: Value) {
        self.answer(event, Answer::Reply(200, body.to_string(), vec![]));
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until the API has been asked `n` times: the lookup a hook starts runs
    /// in the background, so its arrival is a condition to wait for, not a time.
    async fn wait_for_requests(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.requests().len() < n {
            assert!(Instant::now() < deadline, "the API was never asked");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Event 456 as the API describes it, in the `{"results": [...]}` envelope of its list answers.
fn event_456(tickets: Value) -> Value {
    json!({"results": [{
        "id": 456,
        "name": "Jazz on the Lawn",
        "url": PAGE,
        "imageUrl": "//images.quicket.co.za/0456.jpg",
        "startDate": "2030-12-12T19:00:00",
        "endDate": "2030-12-12T23:00:00",
        "venue": {"id": 9, "name": "Kirstenbosch Gardens", "addressLine1": "Rhodes Dr"},
        "schedules": [],
        "tickets": tickets
    }], "statusCode": 200})
}

fn open_tickets() -> Value {
    json!([{"id": 1, "name": "VIP", "soldOut": false, "price": 450.0},
           {"id": 2, "name": "General", "soldOut": false, "price": 150.0}])
}

async fn app(smtp: &SmtpServer, api: &FakeApi, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let (smtp_url, api_url) = (smtp.url(), api.url());
    TestApp::spawn_with(move |c| {
        c.email.transport = Transport::Smtp;
        c.email.smtp_url = smtp_url;
        c.schedule.send_window = SendWindow::parse("").unwrap();
        c.quicket.api_key = KEY.into();
        c.quicket.api_url = api_url;
        c.quicket.timeout = Duration::from_secs(2);
        adjust(c);
    })
    .await
}

/// A pass an hour and a bit after the hooks, when the first step is due.
async fn due_pass(app: &TestApp) -> PassReport {
    app.pass_at(Utc::now() + chrono::Duration::minutes(61))
        .await
}

/// The whole message with quoted-printable and HTML's escaped slashes undone, to search in.
fn decoded(data: &str) -> String {
    // minijinja's HTML escaping writes '/' as an entity.
    smtp::qp_decode(data).replace("&#x2f;", "/")
}

async fn redirect_of_event_link(app: &TestApp) -> String {
    let target = quicket_followup::links::LinkTarget {
        email_key: BUYER.into(),
        event_id: "456".into(),
        step: "abandoned-1".into(),
    };
    let client = common::no_redirects();
    let response = client
        .get(
            app.service
                .engine
                .issue_links(&target, None, Utc::now())
                .await
                .unwrap()
                .event,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    response.headers()["location"].to_str().unwrap().to_string()
}

/// `/healthz` once it shows a failed lookup (up to 10 s).
async fn wait_for_failure(app: &TestApp) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = app.get_json("/healthz").await;
        if health["quicket_api"]["failing"].as_u64().unwrap_or(0) > 0 {
            return health;
        }
        assert!(Instant::now() < deadline, "no failure recorded: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_new_events_reminder_carries_its_real_page_image_venue_and_start() {
    let smtp = SmtpServer::start();
    let api = FakeApi::start().await;
    api.ok("456", event_456(open_tickets()));
    let app = app(&smtp, &api, |c| {
        c.server.admin_password = "admin-pass".into()
    })
    .await;

    app.post_ok(hook("REF1", "checkout_started")).await;
    // The first hook of an unknown event starts a lookup in the background, with the key.
    api.wait_for_requests(1).await;
    assert_eq!(api.requests()[0], ("456".to_string(), KEY.to_string()));
    // A second hook for the same event does not ask again.
    app.post_ok(hook("REF2", "checkout_started")).await;

    let report = due_pass(&app).await;
    assert_eq!(report.counts.sent, 1, "{:?}", report.lines);
    // Fresh in the cache: the pass did not ask again either.
    assert_eq!(api.requests().len(), 1, "{:?}", api.requests());

    let mail = decoded(&smtp.received()[0].data);
    // The protocol-relative image became https, and the shipped HTML shows it.
    assert!(
        mail.contains("<img src=\"https://images.quicket.co.za/0456.jpg\""),
        "{mail}"
    );
    assert!(mail.contains("Where: Kirstenbosch Gardens"), "{mail}");
    // The API's start (19:00) wins over the hook's (18:30) for a one-date event.
    assert!(mail.contains("at 19:00"), "{mail}");
    // The tracked link leads to the event's real page, without any per-event configuration.
    assert_eq!(redirect_of_event_link(&app).await, PAGE);

    let health = app.get_json("/healthz").await;
    assert_eq!(health["quicket_api"]["state"], "ok", "{health}");
    assert_eq!(health["quicket_api"]["events"], 1);

    // The operator's schedule page lists the event with its page and where it came from.
    let schedule = app
        .client
        .get(format!("{}/admin/schedule", app.base))
        .basic_auth("admin", Some("admin-pass"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(schedule.contains(PAGE), "{schedule}");
    assert!(schedule.contains("from Quicket"), "{schedule}");
    assert!(
        schedule.contains("image https://images.quicket.co.za/0456.jpg"),
        "{schedule}"
    );
}

#[tokio::test]
async fn a_configured_url_wins_over_the_api() {
    let smtp = SmtpServer::start();
    let api = FakeApi::start().await;
    api.ok("456", event_456(open_tickets()));
    let app = app(&smtp, &api, |c| {
        c.events.insert(
            "456".into(),
            EventConfig {
                url: Some("https://jazz.example.org/tickets".into()),
                reminders: true,
            },
        );
    })
    .await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let report = due_pass(&app).await;
    assert_eq!(report.counts.sent, 1, "{:?}", report.lines);
    assert_eq!(
        redirect_of_event_link(&app).await,
        "https://jazz.example.org/tickets"
    );
    // The image still comes from the API.
    let mail = decoded(&smtp.received()[0].data);
    assert!(mail.contains("https://images.quicket.co.za/0456.jpg"));
}

#[tokio::test]
async fn sold_out_tickets_skip_the_reminder_with_its_reason() {
    let smtp = SmtpServer::start();
    let api = FakeApi::start().await;
    api.ok(
        "456",
        event_456(json!([{"name": "VIP", "soldOut": true}, {"name": "General", "soldOut": false}])),
    );
    let app = app(&smtp, &api, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    // Another buyer chose a type that is still on sale.
    app.post_ok(
        hook("REF2", "checkout_started")
            .ticket_type("General")
            .email("thabo@mail.co.za"),
    )
    .await;

    let report = due_pass(&app).await;
    assert_eq!(report.counts.sent, 1, "{:?}", report.lines);
    assert_eq!(smtp.received()[0].to, ["thabo@mail.co.za"]);
    let skipped = report
        .lines
        .iter()
        .find(|l| l.email == BUYER)
        .expect("a line for the sold-out buyer");
    assert_eq!(skipped.decision, "skipped");
    assert_eq!(skipped.step.as_deref(), Some("abandoned-1"));
    assert!(skipped.reason.contains("sold out"), "{skipped:?}");

    // Recorded: the step is never sent later, even once tickets are back.
    api.ok("456", event_456(open_tickets()));
    let again = app.pass_at(Utc::now() + chrono::Duration::hours(8)).await;
    assert_eq!(again.counts.sent, 0, "{:?}", again.lines);
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_step_may_say_even_if_sold_out() {
    let smtp = SmtpServer::start();
    let api = FakeApi::start().await;
    api.ok("456", event_456(json!([{"name": "VIP", "soldOut": true}])));
    let app = app(&smtp, &api, |c| c.reminders[0].even_if_sold_out = true).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let report = due_pass(&app).await;
    assert_eq!(report.counts.sent, 1, "{:?}", report.lines);
}

#[tokio::test]
async fn ended_sales_count_as_sold_out() {
    let smtp = SmtpServer::start();
    let api = FakeApi::start().await;
    api.ok(
        "456",
        event_456(json!([{"name": "VIP", "soldOut": false, "salesEnd": "2020-01-01T00:00:00"}])),
    );
    let app = app(&smtp, &api, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let report = due_pass(&app).await;
    assert_eq!(report.counts.sent, 0, "{:?}", report.lines);
    assert!(report.lines[0].reason.contains("sold out"));
}

/// Every way the API can fail: the reminder still goes, to the configured URL pattern, and the
/// pass waits at most `quicket.timeout` for the API.
#[tokio::test]
async fn each_failure_falls_back_to_the_configured_url() {
    let cases: Vec<(&str, Answer, &str)> = vec![
        (
            "401",
            Answer::Reply(401, "{\"message\": \"bad key\"}".into(), vec![]),
            "API key",
        ),
        (
            "429",
            Answer::Reply(429, "{}".into(), vec![("retry-after", "120".into())]),
            "slow down",
        ),
        (
            "garbage",
            Answer::Reply(200, "<html>oops</html>".into(), vec![]),
            "not an event",
        ),
        ("500", Answer::Reply(500, "{}".into(), vec![]), "HTTP 500"),
        ("timeout", Answer::Hang, "no answer"),
    ];
    for (name, answer, error) in cases {
        let smtp = SmtpServer::start();
        let api = FakeApi::start().await;
        api.answer("456", answer);
        let app = app(&smtp, &api, |c| {
            c.server.admin_password = "admin-pass".into()
        })
        .await;
        app.post_ok(hook("REF1", "checkout_started")).await;
        if name == "timeout" {
            // The hook was answered while its event's lookup still hangs: ingest never waits.
            let health = app.get_json("/healthz").await;
            assert_eq!(health["quicket_api"]["events"], 0, "{health}");
        }
        api.wait_for_requests(1).await;

        let started = Instant::now();
        let report = due_pass(&app).await;
        let took = started.elapsed();
        assert_eq!(report.counts.sent, 1, "{name}: {:?}", report.lines);
        // Bounded by the 2 s timeout (plus slack for a slow machine), never the 30 s a hung
        // connection would otherwise take.
        assert!(
            took < Duration::from_secs(6),
            "{name}: the pass took {took:?}"
        );
        let mail = decoded(&smtp.received()[0].data);
        assert!(mail.contains("Get your tickets"), "{name}");
        assert!(!mail.contains("<img"), "{name}: no image without the API");
        assert_eq!(redirect_of_event_link(&app).await, PATTERN_PAGE, "{name}");

        // A lookup may still be finishing in the background: wait for its failure to be kept.
        let health = wait_for_failure(&app).await;
        assert_eq!(health["status"], "ok", "{name}: {health}");
        assert_eq!(
            health["quicket_api"]["state"], "failing",
            "{name}: {health}"
        );
        // /healthz is public: states and counts only; why it failed is on /admin.
        assert!(
            health["quicket_api"]["last_error"].is_null(),
            "{name}: {health}"
        );
        let overview = app
            .admin_get("/admin", "admin-pass")
            .await
            .text()
            .await
            .unwrap();
        assert!(overview.contains(error), "{name}: {overview}");
    }
}

#[tokio::test]
async fn after_a_429_the_api_is_left_alone_for_its_retry_after() {
    let smtp = SmtpServer::start();
    let api = FakeApi::start().await;
    api.answer(
        "456",
        Answer::Reply(429, "{}".into(), vec![("retry-after", "3600".into())]),
    );
    let app = app(&smtp, &api, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    api.wait_for_requests(1).await;
    // Another event's first hook, and passes: nothing is asked during the pause.
    app.post_ok(hook("REF2", "checkout_started").event_id(789))
        .await;
    due_pass(&app).await;
    due_pass(&app).await;
    assert_eq!(api.requests().len(), 1, "{:?}", api.requests());
}

#[tokio::test]
async fn an_event_quicket_does_not_know_falls_back_without_alarm() {
    // A "Send Test" hook's event, or one not public: 404.
    let smtp = SmtpServer::start();
    let api = FakeApi::start().await;
    let app = app(&smtp, &api, |_| {}).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    api.wait_for_requests(1).await;
    let report = due_pass(&app).await;
    assert_eq!(report.counts.sent, 1, "{:?}", report.lines);
    assert_eq!(redirect_of_event_link(&app).await, PATTERN_PAGE);
    let deadline = Instant::now() + Duration::from_secs(10);
    let health = loop {
        let health = app.get_json("/healthz").await;
        if health["quicket_api"]["unknown_to_quicket"] == 1 {
            break health;
        }
        assert!(Instant::now() < deadline, "{health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(health["quicket_api"]["state"], "ok", "{health}");
    assert_eq!(health["quicket_api"]["failing"], 0, "{health}");
}

#[tokio::test]
async fn without_a_key_nothing_is_asked() {
    let smtp = SmtpServer::start();
    let api = FakeApi::start().await;
    api.ok("456", event_456(open_tickets()));
    let app = app(&smtp, &api, |c| c.quicket.api_key = String::new()).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let report = due_pass(&app).await;
    assert_eq!(report.counts.sent, 1);
    assert!(api.requests().is_empty());
    assert_eq!(redirect_of_event_link(&app).await, PATTERN_PAGE);
    assert_eq!(
        app.get_json("/healthz").await["quicket_api"]["state"],
        "off"
    );
}

#[tokio::test]
async fn check_says_which_page_each_event_uses_and_where_it_came_from() {
    let api = FakeApi::start().await;
    api.ok("456", event_456(open_tickets()));
    api.answer("789", Answer::Reply(500, "{}".into(), vec![]));
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(
        dir.path(),
        &format!(
            "[quicket]\napi_url = \"{}\"\ntimeout = \"2s\"\n\n[events.\"123\"]\nurl = \"https://jazz.example.org/123\"\n",
            api.url()
        ),
    );
    let config = config.to_str().unwrap();
    // Orders for three events, stored by the service itself.
    let served = common::serve(std::path::Path::new(config), &[]);
    let client = reqwest::Client::new();
    for (reference, event) in [("REF1", 456), ("REF2", 789), ("REF3", 123)] {
        let body = hook(reference, "checkout_started").event_id(event);
        let (status, _) = common::post(&client, &served.webhook_url, body).await;
        assert_eq!(status, 200);
    }
    common::signal(&served.child, "TERM");
    let mut child = served.child;
    child.wait().unwrap();

    // The fake API runs on this test's runtime: wait for the CLI off it.
    let cli = |with_key: bool| {
        let config = config.to_string();
        tokio::task::spawn_blocking(move || {
            let envs: &[(&str, &str)] = if with_key {
                &[("QUICKET_FOLLOWUP_QUICKET_API_KEY", KEY)]
            } else {
                &[]
            };
            common::run_cli(&["--config", &config, "check"], envs)
        })
    };
    let (code, out, err) = cli(true).await.unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "event 456 (Jazz on the Lawn): {PAGE} from Quicket's API"
        )),
        "{out}"
    );
    assert!(
        out.contains(
            "event 123 (Jazz on the Lawn): https://jazz.example.org/123 from [events.\"123\"].url"
        ),
        "{out}"
    );
    assert!(
        out.contains("event 789 (Jazz on the Lawn): https://www.quicket.co.za/events/789/ from the email.event_url pattern"),
        "{out}"
    );
    assert!(out.contains("answered HTTP 500"), "{out}");
    // The key went to the API, and never into the output.
    assert!(api.requests().iter().any(|(_, key)| key == KEY));
    assert!(!out.contains(KEY) && !err.contains(KEY));

    // Without a key, check says so and uses the configuration alone.
    let (code, out, _) = cli(false).await.unwrap();
    assert_eq!(code, 0);
    assert!(out.contains("no quicket.api_key"), "{out}");
    // What was kept from the keyed run is not used (nor its errors shown) without a key.
    assert!(
        out.contains("event 456 (Jazz on the Lawn): https://www.quicket.co.za/events/456/ from the email.event_url pattern\n"),
        "{out}"
    );
    assert!(
        out.contains("event 789 (Jazz on the Lawn): https://www.quicket.co.za/events/789/ from the email.event_url pattern\n"),
        "{out}"
    );
}
