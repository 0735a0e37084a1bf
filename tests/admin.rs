//! The operator's pages over HTTP: auth, key content, hostile names escaped, and the forms.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use chrono::Utc;
use common::TestApp;
use quicket_followup::config::Config;

const PASSWORD: &str = "correct horse battery staple";

fn setup(c: &mut Config) {
    c.server.admin_password = PASSWORD.into();
    common::send_at_once(c);
}

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let response = app.admin_get(path, PASSWORD).await;
    (response.status().as_u16(), response.text().await.unwrap())
}

fn hostile_hook(reference: &str, action: &str) -> common::Hook {
    common::hook(reference, action)
        .event_name("Jazz <script>alert('x')</script>")
        .attendee_name("<img src=x onerror=alert(1)>")
}

#[tokio::test]
async fn admin_is_off_without_a_password() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!("{}/admin", app.base))
        .basic_auth("admin", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[tokio::test]
async fn admin_refuses_no_and_wrong_credentials() {
    let app = TestApp::spawn_with(setup).await;
    for path in ["/admin", "/admin/orders", "/admin/problems"] {
        let none = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(none.status().as_u16(), 401, "{path}");
        assert!(
            none.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        let wrong = app
            .client
            .get(format!("{}{path}", app.base))
            .basic_auth("admin", Some("guess"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401, "{path}");
        let other_user = app
            .client
            .get(format!("{}{path}", app.base))
            .basic_auth("root", Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(other_user.status().as_u16(), 401, "{path}");
    }
    let post = app
        .client
        .post(format!("{}/admin/replay", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 401);
}

#[tokio::test]
async fn the_pages_show_the_story_and_escape_hostile_names() {
    let app = TestApp::spawn_with(setup).await;
    app.post_hook(hostile_hook("REF1", "checkout_started"))
        .await;
    app.post_hook("{not json").await;
    let report = app.pass_at(Utc::now()).await;
    assert_eq!(report.counts.sent, 1);
    app.post_hook(hostile_hook("REF1", "checkout_completed"))
        .await;

    let (status, overview) = get(&app, "/admin").await;
    assert_eq!(status, 200);
    assert!(
        overview.contains("Attributed revenue") && overview.contains("R450.00"),
        "the purchase after the reminder is recovered"
    );
    assert!(overview.contains("<svg"));

    let (_, orders) = get(&app, "/admin/orders?q=REF1").await;
    assert!(orders.contains("lerato@mail.co.za"));
    assert!(!orders.contains("<script>alert"), "escaped");
    assert!(
        orders.contains("&lt;script&gt;")
            || orders.contains("&#60;script&#62;")
            || orders.contains("&lt;script")
    );

    let (status, timeline) = get(&app, "/admin/buyer?email=lerato%40mail.co.za&event=456").await;
    assert_eq!(status, 200);
    for needle in [
        "Started a checkout (REF1)",
        "First reminder: sent",
        "Abandoned checkout email",
        "paid",
        "What Quicket sent",
    ] {
        assert!(timeline.contains(needle), "timeline lacks {needle:?}");
    }
    for jargon in ["Raw body", ">hook<", "abandoned-1"] {
        assert!(!timeline.contains(jargon), "the timeline says {jargon:?}");
    }
    assert!(
        !timeline.contains("<img src=x"),
        "raw bodies are escaped too"
    );

    let (_, problems) = get(&app, "/admin/problems").await;
    assert!(problems.contains("not valid JSON"));
    let (_, schedule) = get(&app, "/admin/schedule").await;
    assert!(schedule.contains("abandoned-1:"));
    let (status, emails) = get(&app, "/admin/emails?step=abandoned-1&reference=REF1").await;
    assert_eq!(status, 200);
    assert!(emails.contains("<iframe sandbox"));
    let (status, frame) = get(&app, "/admin/emails/render?step=abandoned-1&reference=REF1").await;
    assert_eq!(status, 200);
    assert!(frame.contains("<!DOCTYPE html>") && !frame.contains("<script>alert"));
}

#[tokio::test]
async fn suppressions_can_be_added_and_removed_from_the_page_but_not_from_another_site() {
    let app = TestApp::spawn_with(setup).await;
    let client = common::no_redirects();
    let url = format!("{}/admin/suppressions", app.base);
    let cross = client
        .post(&url)
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", "https://evil.example")
        .form(&[("email", "a@mail.co.za")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status().as_u16(), 403);
    // A POST that says nowhere where it comes from (no Origin, no Sec-Fetch-Site, no Referer) is
    // refused too, and so is one the browser says is cross-site whatever its Origin.
    let silent = client
        .post(&url)
        .basic_auth("admin", Some(PASSWORD))
        .form(&[("email", "a@mail.co.za")])
        .send()
        .await
        .unwrap();
    assert_eq!(silent.status().as_u16(), 403);
    let cross_site = client
        .post(&url)
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", app.base.clone())
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", "a@mail.co.za")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status().as_u16(), 403);
    assert!(!app.store().is_suppressed("a@mail.co.za").await.unwrap());
    let ours = client
        .post(&url)
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", app.base.clone())
        .form(&[("email", "A@mail.co.za ")])
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status().as_u16(), 303);
    assert!(app.store().is_suppressed("a@mail.co.za").await.unwrap());
    let (_, page) = get(&app, "/admin/suppressions").await;
    assert!(page.contains("a@mail.co.za") && page.contains("added here by hand"));
    let remove = |form: Vec<(&'static str, &'static str)>| {
        client
            .post(format!("{url}/remove"))
            .basic_auth("admin", Some(PASSWORD))
            .header("sec-fetch-site", "same-origin")
            .form(&form)
            .send()
    };
    // Remove asks first: a confirmation with the reason to give; nothing changed yet.
    let asked = remove(vec![("email", "a@mail.co.za")]).await.unwrap();
    assert_eq!(asked.status().as_u16(), 200);
    let html = asked.text().await.unwrap();
    assert!(
        html.contains("id=\"confirm-removal\"") && html.contains("name=\"reason\""),
        "{html}"
    );
    assert!(app.store().is_suppressed("a@mail.co.za").await.unwrap());
    // Confirmed without a reason, or with one that is not a line: refused beside the field.
    for reason in ["", "   ", "one\r\nSet-Cookie: x=y"] {
        let refused = remove(vec![
            ("email", "a@mail.co.za"),
            ("confirm", "yes"),
            ("reason", reason),
        ])
        .await
        .unwrap();
        assert_eq!(refused.status().as_u16(), 422, "{reason:?}");
        let html = refused.text().await.unwrap();
        assert!(
            html.contains("aria-invalid=\"true\" aria-describedby=\"reason-error\""),
            "{html}"
        );
        assert!(app.store().is_suppressed("a@mail.co.za").await.unwrap());
    }
    let huge: &'static str = Box::leak("x".repeat(600).into_boxed_str());
    let refused = remove(vec![
        ("email", "a@mail.co.za"),
        ("confirm", "yes"),
        ("reason", huge),
    ])
    .await
    .unwrap();
    assert_eq!(refused.status().as_u16(), 422);
    assert!(app.store().is_suppressed("a@mail.co.za").await.unwrap());
    let done = remove(vec![
        ("email", "a@mail.co.za"),
        ("confirm", "yes"),
        ("reason", "added by mistake"),
    ])
    .await
    .unwrap();
    assert_eq!(done.status().as_u16(), 303);
    let location = done.headers()["location"].to_str().unwrap().to_string();
    assert!(
        !location.contains("mail.co.za"),
        "no address in a URL: {location}"
    );
    assert!(!app.store().is_suppressed("a@mail.co.za").await.unwrap());
    // The history of removals keeps who, how it had come on, and why.
    let removals = app.store().suppression_removals(10).await.unwrap();
    assert_eq!(removals.len(), 1);
    assert_eq!(removals[0].email, "a@mail.co.za");
    assert_eq!(removals[0].reason, "added by mistake");
    assert_eq!(removals[0].source, "admin");
    let (_, page) = get(&app, "/admin/suppressions").await;
    assert!(page.contains("added by mistake"), "{page}");
}

/// An address the buyer unsubscribed through the link comes off the list only with the buyer's
/// own request ticked and a reason: never by one click, and the reason is kept.
#[tokio::test]
async fn an_unsubscribed_address_comes_off_the_list_only_at_the_buyers_own_request() {
    let app = TestApp::spawn_with(setup).await;
    let client = common::no_redirects();
    let url = format!("{}/admin/suppressions/remove", app.base);
    app.store()
        .add_suppression(
            "Lindiwe@mail.co.za",
            quicket_followup::store::privacy::SuppressionSource::Unsubscribe,
            Some("456".into()),
            Some("abandoned-1".into()),
            Utc::now(),
        )
        .await
        .unwrap();
    let post = |form: Vec<(&'static str, &'static str)>| {
        client
            .post(&url)
            .basic_auth("admin", Some(PASSWORD))
            .header("sec-fetch-site", "same-origin")
            .form(&form)
            .send()
    };
    let html = post(vec![("email", "lindiwe@mail.co.za")])
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("unsubscribed through the link") && html.contains("name=\"asked\""),
        "{html}"
    );
    // A reason alone is not enough: the buyer's own request must be confirmed.
    let refused = post(vec![
        ("email", "lindiwe@mail.co.za"),
        ("confirm", "yes"),
        ("reason", "they probably want tickets"),
    ])
    .await
    .unwrap();
    assert_eq!(refused.status().as_u16(), 422);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("asked-error") && html.contains("Only their own request"),
        "{html}"
    );
    assert!(
        app.store()
            .is_suppressed("lindiwe@mail.co.za")
            .await
            .unwrap()
    );
    // Ticked without a reason: still refused.
    let refused = post(vec![
        ("email", "lindiwe@mail.co.za"),
        ("confirm", "yes"),
        ("asked", "yes"),
    ])
    .await
    .unwrap();
    assert_eq!(refused.status().as_u16(), 422);
    assert!(
        app.store()
            .is_suppressed("lindiwe@mail.co.za")
            .await
            .unwrap()
    );
    let done = post(vec![
        ("email", "lindiwe@mail.co.za"),
        ("confirm", "yes"),
        ("asked", "yes"),
        ("reason", "phoned on 8 Dec asking for the jazz news"),
    ])
    .await
    .unwrap();
    assert_eq!(done.status().as_u16(), 303);
    assert!(
        !app.store()
            .is_suppressed("lindiwe@mail.co.za")
            .await
            .unwrap()
    );
    let removals = app.store().suppression_removals(10).await.unwrap();
    assert_eq!(removals[0].source, "unsubscribe");
    assert_eq!(removals[0].by, "admin");
    assert!(
        removals[0]
            .reason
            .contains("the buyer asked to be emailed again")
            && removals[0].reason.contains("phoned on 8 Dec"),
        "{:?}",
        removals[0]
    );
    // forget leaves nothing of the address in the removals either.
    app.store().forget("lindiwe@mail.co.za").await.unwrap();
    assert!(
        app.store()
            .suppression_removals(10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn replay_from_the_problems_page() {
    let app = TestApp::spawn_with(setup).await;
    let client = common::no_redirects();
    let response = client
        .post(format!("{}/admin/replay", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .header("origin", app.base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert!(
        response.headers()["location"]
            .to_str()
            .unwrap()
            .contains("Replayed+0+deliveries")
    );
}

/// A GET of /admin with a password, from `forwarded_for` (an `X-Forwarded-For` value) if given.
async fn login(app: &TestApp, password: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .get(format!("{}/admin", app.base))
        .basic_auth("admin", Some(password));
    if let Some(xff) = forwarded_for {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn ten_failed_logins_from_one_client_behind_the_proxy_get_429_and_others_are_unaffected() {
    // The test connects from 127.0.0.1, a trusted proxy by default: X-Forwarded-For's last hop
    // is the client.
    let app = TestApp::spawn_with(setup).await;
    let attacker = Some("10.9.9.9, 203.0.113.7");
    for i in 0..10 {
        let response = login(&app, "wrong guess", attacker).await;
        assert_eq!(response.status().as_u16(), 401, "failure {i}");
    }
    for password in ["wrong guess", PASSWORD] {
        let response = login(&app, password, attacker).await;
        assert_eq!(
            response.status().as_u16(),
            429,
            "refused, even with the password"
        );
        let wait: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(wait > 500 && wait <= 600, "Retry-After {wait}");
    }
    // Only the last hop counts: an earlier one is whatever the client sent.
    let response = login(&app, PASSWORD, Some("203.0.113.7, 203.0.113.8")).await;
    assert_eq!(response.status().as_u16(), 200, "another client");
    let response = login(&app, PASSWORD, None).await;
    assert_eq!(response.status().as_u16(), 200, "the proxy itself");
    // A browser's first request, without credentials, is no failure.
    for _ in 0..12 {
        let response = app
            .client
            .get(format!("{}/admin", app.base))
            .header("x-forwarded-for", "198.51.100.4")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
    }
    assert_eq!(
        login(&app, PASSWORD, Some("198.51.100.4"))
            .await
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::spawn_with(|c| {
        setup(c);
        c.server.trusted_proxies =
            vec![quicket_followup::proxies::ProxyNet::parse("192.0.2.0/24").unwrap()];
    })
    .await;
    // Each guess claims another client; all come from 127.0.0.1, which is not trusted now.
    for i in 0..10 {
        let xff = format!("203.0.113.{i}");
        let response = login(&app, "wrong guess", Some(&xff)).await;
        assert_eq!(response.status().as_u16(), 401);
    }
    let response = login(&app, PASSWORD, Some("198.51.100.1")).await;
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().contains_key("retry-after"));
}

#[test]
fn a_failed_login_is_logged_at_warn_with_the_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "");
    let log = dir.path().join("stderr.log");
    let mut child = std::process::Command::new(common::binary())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("QUICKET_FOLLOWUP_ADMIN_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let base = loop {
        let line = lines.next().expect("serve exited").unwrap();
        if let Some(rest) = line.strip_prefix("Listening on ") {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("{base}/admin"))
            .basic_auth("admin", Some("not the password"))
            .header("x-forwarded-for", "203.0.113.77")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 401);
    // The line is written before the answer is sent; give the file a moment under load.
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log).unwrap();
        if text.contains("failed /admin login") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    common::signal(&child, "TERM");
    child.wait().unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("failed /admin login"))
        .unwrap_or_else(|| panic!("no failed login logged: {text}"));
    assert!(
        line.contains("WARN") && line.contains("203.0.113.77"),
        "{line}"
    );
    assert!(
        !text.contains("not the password"),
        "the guess itself is never logged"
    );
}

#[tokio::test]
async fn every_page_sends_the_security_headers() {
    let app = TestApp::spawn_with(setup).await;
    app.post_hook(hostile_hook("REF1", "checkout_started"))
        .await;
    for path in [
        "/admin",
        "/admin/orders",
        "/admin/buyer?email=lerato%40mail.co.za&event=456",
        "/admin/emails",
        "/admin/schedule",
        "/admin/suppressions",
        "/admin/problems",
        "/unsubscribe/not-a-token",
    ] {
        let response = app.admin_get(path, PASSWORD).await;
        let h = response.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with("text/html"),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
    }
    // The email preview is framed by the emails page only, and sandboxed on its own too.
    let response = app
        .client
        .get(format!("{}/admin/emails/render?step=abandoned-1", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let h = response.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("sandbox") && csp.contains("frame-ancestors 'self'"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    // JSON answers are not sniffed either.
    let health = app.get("/healthz").await;
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");
}

/// POSTs the setup form from our own page (as Chromium says: `Sec-Fetch-Site: same-origin`).
async fn post_setup(app: &TestApp, link: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = app
        .client
        .post(link)
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn setup_link(app: &TestApp) -> String {
    quicket_followup::web::new_setup_link(app.store(), &app.base, Utc::now())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_setup_link_sets_the_admin_password_once_kept_only_as_a_hash() {
    const CHOSEN: &str = "Table-Mountain-at-dawn";
    let app = TestApp::spawn().await;
    let link = setup_link(&app).await;
    assert!(link.starts_with(&format!("{}/setup/", app.base)), "{link}");

    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("name=\"password\""), "{page}");

    // Too short: refused with the reason; the link still works.
    let (status, body) = post_setup(&app, &link, &[("password", "short-one")]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("too short"), "{body}");
    let (status, body) = post_setup(
        &app,
        &link,
        &[("password", CHOSEN), ("confirm", "Table-Mountain-at-dusk")],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("not the same"), "{body}");

    let (status, body) =
        post_setup(&app, &link, &[("password", CHOSEN), ("confirm", CHOSEN)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Your password is set"), "{body}");

    // Signed in with it; not with anything else.
    assert_eq!(app.admin_get("/admin", CHOSEN).await.status().as_u16(), 200);
    assert_eq!(
        app.admin_get("/admin", "Table-Mountain-at-dusk")
            .await
            .status()
            .as_u16(),
        401
    );
    let front = app.get_text("/").await;
    assert!(front.contains("set up and running"), "{front}");

    // The link is spent: a second setup cannot change the password.
    let (status, body) = post_setup(&app, &link, &[("password", "someone-else-entirely")]).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(app.admin_get("/admin", CHOSEN).await.status().as_u16(), 200);

    // Only a hash is kept, in no file in clear.
    let hash = app.store().admin_password_hash().await.unwrap().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    app.store().checkpoint().await.unwrap();
    for entry in std::fs::read_dir(app.dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(CHOSEN.len()).any(|w| w == CHOSEN.as_bytes()),
                "{} holds the password in clear",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn a_setup_link_refuses_other_sites_made_up_links_big_bodies_and_guessers() {
    let app = TestApp::spawn().await;
    let link = setup_link(&app).await;
    let good = [("password", "a-perfectly-long-password")];

    // Posted from another site, or saying nothing of where it comes from.
    let response = app
        .client
        .post(&link)
        .header("sec-fetch-site", "cross-site")
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let response = app
        .client
        .post(&link)
        .header("origin", "https://evil.example")
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let response = app.client.post(&link).form(&good).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);

    // A body of 10 MB.
    let response = app
        .client
        .post(&link)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 10 * 1024 * 1024])
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert!(
        matches!(response, Ok(413) | Err(_)),
        "a 10 MB body: {response:?}"
    );

    // A made-up link.
    let made_up = format!("{}/setup/{}", app.base, "A".repeat(32));
    let (status, body) = post_setup(&app, &made_up, &good).await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains(&link), "{body}");

    // Guessing is throttled like /admin logins: after 10 failures, 429 even for the right link.
    for _ in 0..10 {
        let _ = post_setup(&app, &made_up, &good).await;
    }
    let (status, _) = post_setup(&app, &link, &good).await;
    assert_eq!(status, 429);
    assert!(
        !app.admin_get("/admin", good[0].1)
            .await
            .status()
            .is_success()
    );
    // Nothing was set, and the service still answers.
    assert_eq!(app.store().admin_password_hash().await.unwrap(), None);
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
}

#[tokio::test]
async fn a_newer_setup_link_ends_the_older_one_and_a_configured_password_disables_them() {
    let app = TestApp::spawn().await;
    let first = setup_link(&app).await;
    let second = setup_link(&app).await;
    assert_ne!(first, second);
    assert_eq!(
        app.client
            .get(&first)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let password = "quotes \" and\r\nnew lines are fine";
    let (status, body) = post_setup(&app, &second, &[("password", password)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        app.admin_get("/admin", password).await.status().as_u16(),
        200
    );

    // With the password in the config, setup links do nothing and the command says why.
    let app = TestApp::spawn_with(setup).await;
    let link = setup_link(&app).await;
    let (status, body) = post_setup(&app, &link, &[("password", "an-override-attempt")]).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("configuration file"), "{body}");
    assert_eq!(
        app.admin_get("/admin", PASSWORD).await.status().as_u16(),
        200
    );
}

#[test]
fn serve_prints_a_new_setup_link_at_each_start_until_setup_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "");
    let mut first = common::serve(&config, &[]);
    let link = first.setup_link.clone().expect("a setup link is printed");
    assert!(link.contains("/setup/"), "{link}");
    common::signal(&first.child, "TERM");
    first.child.wait().unwrap();
    let mut second = common::serve(&config, &[]);
    let again = second.setup_link.clone().expect("printed again");
    assert_ne!(link, again, "a new link at each start");
    common::signal(&second.child, "TERM");
    second.child.wait().unwrap();
    // The command prints one too (for the package: quicket-followup-admin setup-link).
    let (code, stdout, stderr) =
        common::run_cli(&["--config", config.to_str().unwrap(), "setup-link"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("Finish setting up: http://"), "{stdout}");
    // With a password set, nothing is printed, and the command says why it prints none.
    let (code, _, stderr) = common::run_cli(
        &["--config", config.to_str().unwrap(), "setup-link"],
        &[("QUICKET_FOLLOWUP_ADMIN_PASSWORD", PASSWORD)],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("server.admin_password"), "{stderr}");
    let mut served = common::serve(&config, &[("QUICKET_FOLLOWUP_ADMIN_PASSWORD", PASSWORD)]);
    assert_eq!(served.setup_link, None);
    common::signal(&served.child, "TERM");
    served.child.wait().unwrap();
}

#[tokio::test]
async fn every_x_forwarded_for_line_is_read_so_a_line_of_the_clients_own_changes_nothing() {
    // A proxy that adds its own X-Forwarded-For line after the one the client sent: the client is
    // the last hop of all the lines, not of the first.
    let app = TestApp::spawn_with(setup).await;
    for i in 0..10 {
        let response = app
            .client
            .get(format!("{}/admin", app.base))
            .basic_auth("admin", Some("wrong guess"))
            .header("x-forwarded-for", format!("10.0.0.{i}"))
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "failure {i}");
    }
    let response = app
        .client
        .get(format!("{}/admin", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .header("x-forwarded-for", "10.0.0.99")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        429,
        "one client, whatever its own line says"
    );
    assert_eq!(
        login(&app, PASSWORD, Some("203.0.113.10"))
            .await
            .status()
            .as_u16(),
        200,
        "another client"
    );
}
