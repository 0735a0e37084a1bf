//! The links in every email: signed tokens, one-click unsubscribe, the tracked event link, the
//! suppression list, retention and `forget`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;
use common::smtp;

use chrono::{Duration, Utc};
use common::{TestApp, hook};
use quicket_followup::config::{EventConfig, SendWindow, Transport};
use quicket_followup::links::{LinkTarget, LinkUrls};
use quicket_followup::store::privacy::SuppressionSource;
use serde_json::json;
use smtp::SmtpServer;

const BUYER: &str = "lerato@mail.co.za";

async fn app(smtp: Option<&SmtpServer>) -> TestApp {
    let url = smtp.map(SmtpServer::url);
    TestApp::spawn_with(move |c| {
        c.email.from = "Jazz Festival <tickets@shop.co.za>".into();
        c.schedule.send_window = SendWindow::parse("").unwrap();
        c.events.insert(
            "789".into(),
            EventConfig {
                url: Some("https://www.quicket.co.za/events/789-big-night/".into()),
                reminders: true,
            },
        );
        if let Some(url) = url {
            c.email.transport = Transport::Smtp;
            c.email.smtp_url = url;
        }
    })
    .await
}

fn target(event: &str) -> LinkTarget {
    LinkTarget {
        email_key: BUYER.into(),
        event_id: event.into(),
        step: "abandoned-1".into(),
    }
}

/// Real links for `target`, as an email about it carries.
async fn links_for(app: &TestApp, target: &LinkTarget) -> LinkUrls {
    app.service
        .engine
        .issue_links(target, None, Utc::now())
        .await
        .unwrap()
}

/// A token in the format the previous version put into emails (`base64(address\nevent\nstep)`
/// `.base64(HMAC-SHA256[..16])` under the secret kept in the database), made as it made them.
async fn legacy_token(app: &TestApp, target: &LinkTarget, secret: Option<&str>) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let secret = match secret {
        Some(s) => s.to_string(),
        None => app
            .store()
            .read(|c| {
                Ok(c.query_row(
                    "SELECT value FROM meta WHERE key = 'link_secret'",
                    [],
                    |r| r.get::<_, String>(0),
                )?)
            })
            .await
            .unwrap(),
    };
    let payload = format!("{}\n{}\n{}", target.email_key, target.event_id, target.step);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    let mac = mac.finalize().into_bytes();
    format!("{}.{}", b64.encode(payload), b64.encode(&mac[..16]))
}

/// Sends the first step to BUYER for event 456 through `smtp`; returns the email's raw data.
async fn send_one(app: &TestApp, smtp: &SmtpServer) -> String {
    app.post_ok(hook("REF1", "checkout_started")).await;
    let report = app.pass_at(Utc::now() + Duration::minutes(61)).await;
    assert_eq!(report.counts.sent, 1);
    smtp.received().last().unwrap().data.clone()
}

/// The event link and the unsubscribe link of a sent email.
fn links_in(data: &str) -> (String, String) {
    let text = text_part(data);
    let event = text.lines().find(|l| l.contains("/r/")).unwrap().trim();
    let unsubscribe = text
        .lines()
        .find(|l| l.contains("/unsubscribe/"))
        .unwrap()
        .trim();
    (event.to_string(), unsubscribe.to_string())
}

#[tokio::test]
async fn forged_altered_and_unknown_tokens_get_404_and_change_nothing() {
    let app = app(None).await;
    let client = common::no_redirects();
    let genuine = legacy_token(&app, &target("456"), None).await;
    let (payload, mac) = genuine.split_once('.').unwrap();
    let other = legacy_token(&app, &target("456"), Some("not the secret")).await;
    let mut flipped = mac.to_string();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let never_issued = quicket_followup::links::new_token();
    for token in [
        other.as_str(),
        &format!("{payload}.{flipped}"),
        payload,
        "nonsense",
        "a.b",
        &never_issued,
        // A genuine old-format token whose reminder was never sent: no such email exists.
        &genuine,
    ] {
        for (method, path) in [
            ("GET", "unsubscribe"),
            ("POST", "unsubscribe"),
            ("GET", "r"),
        ] {
            let url = format!("{}/{path}/{token}", app.base);
            let request = if method == "GET" {
                client.get(&url)
            } else {
                client.post(&url).body("List-Unsubscribe=One-Click")
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 404, "{method} {path} {token}");
            assert!(response.text().await.unwrap().contains("isn't recognised"));
        }
    }
    assert!(app.store().suppressions().await.unwrap().is_empty());
    assert!(app.store().clicks(BUYER, "456").await.unwrap().is_empty());
}

#[tokio::test]
async fn the_unsubscribe_page_shows_the_address_and_changes_nothing() {
    let app = app(None).await;
    let url = links_for(&app, &target("456")).await.unsubscribe;
    for _ in 0..3 {
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let page = response.text().await.unwrap();
        assert!(
            page.contains(BUYER) && page.contains("Jazz Festival"),
            "{page}"
        );
        assert!(page.contains("<form method=\"post\"") && page.contains("Unsubscribe</button>"));
    }
    assert!(app.store().suppressions().await.unwrap().is_empty());
}

#[tokio::test]
async fn one_click_post_unsubscribes_with_or_without_the_rfc_8058_body_and_is_idempotent() {
    let app = app(None).await;
    let url = links_for(&app, &target("456")).await.unsubscribe;
    let response = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You're unsubscribed")
    );
    assert!(
        app.store()
            .is_suppressed(" Lerato@Mail.CO.ZA")
            .await
            .unwrap()
    );
    // Again, and with no body at all (the page's button in a browser without forms data).
    for body in ["List-Unsubscribe=One-Click", ""] {
        assert_eq!(
            app.client
                .post(&url)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200
        );
    }
    let list = app.store().suppressions().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            list[0].source.as_str(),
            list[0].event_id.as_deref(),
            list[0].step.as_deref()
        ),
        ("unsubscribe", Some("456"), Some("abandoned-1"))
    );
    // The page now says so, and offers to undo; undoing takes an explicit POST.
    let page = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("already unsubscribed"));
    let undo = app
        .client
        .post(&url)
        .body("action=resubscribe")
        .send()
        .await
        .unwrap();
    assert!(undo.text().await.unwrap().contains("back on"));
    assert!(!app.store().is_suppressed(BUYER).await.unwrap());
}

#[tokio::test]
async fn the_event_link_redirects_to_the_event_page_and_counts_only_a_sent_reminder_once() {
    let smtp = SmtpServer::start();
    let app = app(Some(&smtp)).await;
    let client = common::no_redirects();
    // A link for which no reminder was sent (a test email): it leads on, and nothing is kept.
    let other = links_for(&app, &target("789")).await;
    let response = client.get(&other.event).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 302);
    assert_eq!(
        response.headers()["location"],
        "https://www.quicket.co.za/events/789-big-night/"
    );
    assert!(app.store().clicks(BUYER, "789").await.unwrap().is_empty());
    // The link of a sent reminder: counted, once, however often it is followed.
    let (event_link, _) = links_in(&send_one(&app, &smtp).await);
    for _ in 0..3 {
        let response = client.get(&event_link).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 302);
        assert_eq!(
            response.headers()["location"],
            "https://www.quicket.co.za/events/456/"
        );
    }
    let clicks = app.store().clicks(BUYER, "456").await.unwrap();
    assert_eq!(clicks.len(), 1);
    assert_eq!(clicks[0].0, "abandoned-1");
}

#[tokio::test]
async fn each_token_works_only_on_its_own_route() {
    let smtp = SmtpServer::start();
    let app = app(Some(&smtp)).await;
    let (event_link, unsubscribe_link) = links_in(&send_one(&app, &smtp).await);
    let event_token = event_link.rsplit('/').next().unwrap();
    let unsubscribe_token = unsubscribe_link.rsplit('/').next().unwrap();
    assert_ne!(event_token, unsubscribe_token);
    let client = common::no_redirects();
    // The event link, forwarded to a friend, can neither unsubscribe nor undo an unsubscribe.
    let url = format!("{}/unsubscribe/{event_token}", app.base);
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        404
    );
    for body in ["List-Unsubscribe=One-Click", "action=resubscribe", ""] {
        let response = client.post(&url).body(body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "{body}");
    }
    assert!(!app.store().is_suppressed(BUYER).await.unwrap());
    // And the unsubscribe link is no event link.
    let response = client
        .get(format!("{}/r/{unsubscribe_token}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert!(app.store().clicks(BUYER, "456").await.unwrap().is_empty());
}

#[tokio::test]
async fn an_old_format_link_from_an_earlier_version_still_unsubscribes_but_cannot_undo() {
    let smtp = SmtpServer::start();
    let app = app(Some(&smtp)).await;
    send_one(&app, &smtp).await;
    let old = legacy_token(&app, &target("456"), None).await;
    let url = format!("{}/unsubscribe/{old}", app.base);
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains(BUYER));
    assert!(
        !app.store().is_suppressed(BUYER).await.unwrap(),
        "a GET changes nothing"
    );
    let done = app
        .client
        .post(&url)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status().as_u16(), 200);
    let done = done.text().await.unwrap();
    assert!(done.contains("You're unsubscribed") && !done.contains("resubscribe"));
    assert!(app.store().is_suppressed(BUYER).await.unwrap());
    // The old token was in the event link too, which buyers forward: it cannot resubscribe.
    app.client
        .post(&url)
        .body("action=resubscribe")
        .send()
        .await
        .unwrap();
    assert!(app.store().is_suppressed(BUYER).await.unwrap());
    // Its event link still leads to the event, and counts the click.
    let response = common::no_redirects()
        .get(format!("{}/r/{old}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    assert_eq!(app.store().clicks(BUYER, "456").await.unwrap().len(), 1);
}

#[tokio::test]
async fn no_link_in_a_real_email_reveals_the_address_or_the_name() {
    let smtp = SmtpServer::start();
    let app = app(Some(&smtp)).await;
    let data = send_one(&app, &smtp).await;
    let text = text_part(&data);
    let mut urls: Vec<String> = text
        .split_whitespace()
        .filter(|w| w.starts_with("http"))
        .map(|w| w.trim_end_matches(['>', ')', '.', ',']).to_string())
        .collect();
    urls.push(
        smtp::Received {
            to: vec![],
            data: data.clone(),
        }
        .header("List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string(),
    );
    let ours: Vec<&String> = urls.iter().filter(|u| u.starts_with(&app.base)).collect();
    assert!(
        ours.len() >= 3,
        "event, unsubscribe, List-Unsubscribe: {urls:?}"
    );
    let secrets = ["lerato", "mail.co.za", "dlamini"];
    for url in ours {
        for segment in url.split(['/', '?', '&', '=', '.']) {
            for decoded in decodings(segment) {
                let decoded = decoded.to_lowercase();
                for secret in secrets {
                    assert!(
                        !decoded.contains(secret),
                        "{url}: segment {segment:?} reveals {secret:?}"
                    );
                }
            }
        }
    }
}

/// A path segment as plain text, percent-decoded, and decoded as base64 (every alphabet, with
/// and without padding) and hex, where it decodes.
fn decodings(segment: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = vec![segment.to_string()];
    out.push(
        url::form_urlencoded::parse(segment.as_bytes())
            .map(|(k, v)| format!("{k}{v}"))
            .collect(),
    );
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        if let Ok(bytes) = engine.decode(segment) {
            out.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    if segment.len().is_multiple_of(2) && segment.chars().all(|c| c.is_ascii_hexdigit()) {
        let bytes: Vec<u8> = (0..segment.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&segment[i..i + 2], 16).ok())
            .collect();
        out.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    out
}

#[tokio::test]
async fn an_event_link_expires_after_the_event_and_an_unsubscribe_link_lives_60_days() {
    let app = app(None).await;
    let client = common::no_redirects();
    let long_ago = Utc::now() - Duration::days(31);
    let links = app
        .service
        .engine
        .issue_links(&target("456"), Some(long_ago), Utc::now())
        .await
        .unwrap();
    let response = client.get(&links.event).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404, "30 days after the event");
    let response = client.get(&links.unsubscribe).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "sent today: works 60 days");
    // Sent 61 days ago, for an event long past: the unsubscribe link has expired too.
    let old = app
        .service
        .engine
        .issue_links(
            &target("789"),
            Some(Utc::now() - Duration::days(100)),
            Utc::now() - Duration::days(61),
        )
        .await
        .unwrap();
    let response = client.get(&old.unsubscribe).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[tokio::test]
async fn an_address_suppressed_between_claim_and_send_is_not_emailed() {
    let smtp = SmtpServer::start();
    let app = app(Some(&smtp)).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let at = Utc::now() + Duration::minutes(61);
    app.claim_without_sending(BUYER, "abandoned-1", "REF1", "<x@shop.co.za>", at)
        .await;
    app.store()
        .add_suppression(
            BUYER,
            SuppressionSource::Unsubscribe,
            None,
            None,
            Utc::now(),
        )
        .await
        .unwrap();
    let report = app.pass_at(at).await;
    assert_eq!(report.counts.sent, 0);
    assert!(
        report.lines[0].reason.contains("unsubscribed"),
        "{:?}",
        report.lines
    );
    assert!(smtp.received().is_empty());
}

/// The text part of a message, quoted-printable decoded.
fn text_part(data: &str) -> String {
    let message = smtp::Received {
        to: vec![],
        data: data.to_string(),
    };
    let content_type = message.header("Content-Type").unwrap();
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"');
    let start = data.find("Content-Type: text/plain").unwrap();
    let body_start = start + data[start..].find("\r\n\r\n").unwrap() + 4;
    let body_end = body_start
        + data[body_start..]
            .find(&format!("\r\n--{boundary}"))
            .unwrap();
    smtp::qp_decode(&data[body_start..body_end])
}

#[tokio::test]
async fn the_links_in_a_real_email_unsubscribe_the_buyer_and_record_a_click() {
    let smtp = SmtpServer::start();
    let app = app(Some(&smtp)).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    let report = app.pass_at(Utc::now() + Duration::minutes(61)).await;
    assert_eq!(report.counts.sent, 1);
    let mail = &smtp.received()[0];
    let text = text_part(&mail.data);
    let event_link = text
        .lines()
        .find(|l| l.contains("/r/"))
        .unwrap()
        .trim()
        .to_string();
    assert!(event_link.starts_with(&app.base), "{event_link}");
    let response = common::no_redirects()
        .get(&event_link)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    assert_eq!(app.store().clicks(BUYER, "456").await.unwrap().len(), 1);

    let header = mail.header("List-Unsubscribe").unwrap();
    let one_click = header.trim_matches(['<', '>']);
    assert!(one_click.starts_with(&app.base));
    let response = app
        .client
        .post(one_click)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(app.store().is_suppressed(BUYER).await.unwrap());
    // The text part's link leads to the same page.
    let page_link = text
        .lines()
        .find(|l| l.contains("/unsubscribe/"))
        .unwrap()
        .trim();
    assert_eq!(page_link, one_click);
}

#[tokio::test]
async fn retention_removes_personal_data_of_past_events_and_keeps_the_counts() {
    let smtp = SmtpServer::start();
    let app = app(Some(&smtp)).await;
    // An event two days from now, reminded; and one far away.
    let soon = (Utc::now() + Duration::days(2))
        .with_timezone(&chrono_tz::Africa::Johannesburg)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    app.post_ok(hook("REF1", "checkout_started").event_date(&soon))
        .await;
    let mut far: serde_json::Value = hook("REF2", "checkout_started").json();
    far["event_id"] = json!(789);
    app.post_ok(far.to_string()).await;
    let report = app.pass_at(Utc::now() + Duration::minutes(61)).await;
    assert_eq!(report.counts.sent, 2);
    app.store()
        .add_suppression(
            "someone@else.co.za",
            SuppressionSource::Cli,
            None,
            None,
            Utc::now(),
        )
        .await
        .unwrap();

    // 89 days after the first event nothing goes; at 91 days its buyer is pseudonymised.
    let store = app.store();
    let tz = chrono_tz::Africa::Johannesburg;
    let ninety = std::time::Duration::from_secs(90 * 86400);
    let removed = store
        .apply_retention(Utc::now() + Duration::days(2 + 89), ninety, tz)
        .await
        .unwrap();
    assert_eq!(removed.buyer_events, 0);
    let removed = store
        .apply_retention(Utc::now() + Duration::days(2 + 91), ninety, tz)
        .await
        .unwrap();
    assert_eq!((removed.buyer_events, removed.orders), (1, 1));

    let old = store.order("REF1").await.unwrap().unwrap();
    assert_eq!((old.email.as_str(), old.buyer_name.as_str()), ("", ""));
    assert_eq!(old.tickets[0].attendee_name, "");
    assert_eq!(old.tickets[0].ticket_type, "VIP", "what was bought stays");
    assert_eq!(
        old.amount,
        Some(450.0),
        "the amount stays for the statistics"
    );
    let deliveries = store.deliveries().await.unwrap();
    assert!(
        deliveries
            .iter()
            .filter(|d| d.reference.as_deref() == Some("REF1"))
            .all(|d| d.body.is_none())
    );
    assert!(
        deliveries
            .iter()
            .filter(|d| d.reference.as_deref() == Some("REF2"))
            .all(|d| d.body.is_some())
    );
    assert_eq!(store.order_count().await.unwrap(), 2, "the counts stay");
    let new = store.order("REF2").await.unwrap().unwrap();
    assert_eq!(new.email, BUYER, "the far event is untouched");
    // The reminder stays counted, under the pseudonym, without its address.
    let rows = store
        .read(|conn| {
            Ok(conn.query_row(
                "SELECT count(*), sum(email IS NULL), sum(email_key LIKE 'anon-%') FROM reminders WHERE status = 'sent'",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(rows, (2, 1, 1));
    assert!(
        store.is_suppressed("someone@else.co.za").await.unwrap(),
        "suppressions are kept"
    );
    // Retention "0" keeps everything.
    let removed = store
        .apply_retention(
            Utc::now() + Duration::days(3650),
            std::time::Duration::ZERO,
            tz,
        )
        .await
        .unwrap();
    assert_eq!(removed.buyer_events, 0);
}

#[tokio::test]
async fn forget_removes_everything_about_an_address_but_its_suppression() {
    let app = app(None).await;
    app.post_ok(hook("REF1", "checkout_started")).await;
    // A body that could not be read, mentioning the address: kept raw, with the error.
    let (status, _) = app
        .post_hook("{\"reference\": \"BROKEN lerato@mail.co.za\"")
        .await;
    assert_eq!(status, 400);
    let mut other: serde_json::Value = hook("REF9", "checkout_completed").json();
    other["email"] = json!("friend@mail.co.za");
    other["tickets"][0]["attendee_email"] = json!("Lerato@mail.co.za");
    app.post_ok(other.to_string()).await;
    app.store()
        .add_suppression(
            BUYER,
            SuppressionSource::Unsubscribe,
            None,
            None,
            Utc::now(),
        )
        .await
        .unwrap();
    app.store()
        .record_fetch(quicket_followup::store::clicks::Fetch {
            email_key: BUYER.into(),
            event_id: "456".into(),
            step: "abandoned-1".into(),
            link: quicket_followup::scanner::Link::Event,
            request: quicket_followup::scanner::Request::default(),
            at: Utc::now(),
            timing: Default::default(),
        })
        .await
        .unwrap();
    let links = links_for(&app, &target("456")).await;

    let (code, out, err) = app.cli(&["forget", " LERATO@mail.co.za"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("forgotten: 1 orders"), "{out}");

    let store = app.store();
    assert!(store.order("REF1").await.unwrap().is_none());
    let friend = store.order("REF9").await.unwrap().unwrap();
    assert_eq!(friend.tickets[0].attendee_email, "");
    assert_eq!(friend.tickets[0].attendee_name, "");
    let leftovers = store.deliveries().await.unwrap();
    assert!(
        leftovers.iter().all(|d| !d
            .body
            .as_deref()
            .unwrap_or_default()
            .to_lowercase()
            .contains(BUYER)),
        "no raw body mentions the address any more"
    );
    assert!(store.clicks(BUYER, "456").await.unwrap().is_empty());
    assert!(
        store.is_suppressed(BUYER).await.unwrap(),
        "the suppression entry is kept"
    );
    // Their links do nothing any more.
    for url in [&links.event, &links.unsubscribe] {
        let response = common::no_redirects().get(url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "{url}");
    }
}

#[test]
fn unsubscribe_and_resubscribe_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "");
    let config = config.to_str().unwrap();
    let run = |args: &[&str]| common::run_cli(&[&["--config", config], args].concat(), &[]);
    assert_eq!(
        run(&["unsubscribe", "Lerato@Mail.co.za "]).1.trim(),
        "unsubscribed"
    );
    assert_eq!(
        run(&["unsubscribe", "lerato@mail.co.za"]).1.trim(),
        "already unsubscribed"
    );
    assert_eq!(
        run(&["resubscribe", "LERATO@mail.co.za"]).1.trim(),
        "subscribed again"
    );
    assert_eq!(
        run(&["resubscribe", "lerato@mail.co.za"]).1.trim(),
        "was not unsubscribed"
    );
}
