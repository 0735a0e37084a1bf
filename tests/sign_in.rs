//! Signing in like a web app: a browser without a session is sent to `/admin/sign-in`, signs in
//! with the password in force and holds a session cookie (a random token, HttpOnly,
//! SameSite=Strict, Secure over https, nothing of the password in it, only its hash kept); the
//! session ends when idle for eight hours, on signing out, or when the password is set again. A
//! script keeps basic auth and its 401 challenge. Wrong passwords by either way count toward one
//! throttle.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use base64::Engine as _;
use chrono::{TimeDelta, Utc};
use common::{TestApp, no_redirects};
use quicket_followup::config::Config;
use reqwest::header::HeaderMap;

const PASSWORD: &str = "Bo-Kaap-colours-in-June";

fn with_password(c: &mut Config) {
    c.server.admin_password = PASSWORD.into();
}

/// A browser opening `path` (no cookie, no credentials), without following the answer.
async fn navigate(app: &TestApp, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = no_redirects()
        .get(format!("{}{path}", app.base))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "none");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// The sign-in form posted from our own page (as Chromium says it: same-origin).
async fn sign_in(app: &TestApp, form: &[(&str, &str)], xff: Option<&str>) -> reqwest::Response {
    let mut request = no_redirects()
        .post(format!("{}/admin/sign-in", app.base))
        .header("sec-fetch-site", "same-origin")
        .header("origin", &app.base)
        .form(form);
    if let Some(xff) = xff {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.unwrap()
}

fn location(headers: &HeaderMap) -> &str {
    headers["location"].to_str().unwrap()
}

/// The `Set-Cookie` of an answer, and the `name=value` a browser sends back.
fn session_cookie(headers: &HeaderMap) -> (String, String) {
    let set = headers["set-cookie"].to_str().unwrap().to_string();
    let pair = set.split(';').next().unwrap().trim().to_string();
    (set, pair)
}

/// Signs in with the password; returns the cookie to send back.
async fn signed_in(app: &TestApp) -> String {
    let response = sign_in(app, &[("password", PASSWORD), ("next", "/admin")], None).await;
    assert_eq!(response.status().as_u16(), 303);
    session_cookie(response.headers()).1
}

#[tokio::test]
async fn a_browser_is_sent_to_sign_in_and_a_script_gets_the_basic_challenge() {
    let app = TestApp::spawn_with(with_password).await;

    // A browser opening a page: to the sign-in page, and back to the page asked for after.
    let response = navigate(&app, "/admin/buyer?email=a%40b.co.za&event=456", None).await;
    assert_eq!(response.status().as_u16(), 303);
    let to = location(response.headers()).to_string();
    assert!(to.starts_with("/admin/sign-in?next="), "{to}");
    let page = navigate(&app, &to, None).await;
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("name=\"password\""), "{page}");
    assert!(
        page.contains("value=\"/admin/buyer?email=a%40b.co.za&#38;event=456\""),
        "the page returns to where the browser was going: {page}"
    );
    // An older browser without Fetch Metadata, asking for HTML, is a browser too.
    let old = no_redirects()
        .get(format!("{}/admin/orders", app.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(old.status().as_u16(), 303);

    // A script: 401 with the challenge, as before.
    let script = app.get("/admin").await;
    assert_eq!(script.status().as_u16(), 401);
    assert!(
        script.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(
        app.admin_get("/admin", PASSWORD).await.status().as_u16(),
        200
    );
    // A page's own script whose session ended: 401 without a challenge (no password dialog).
    let fetch = app
        .client
        .get(format!("{}/admin/orders", app.base))
        .header("sec-fetch-mode", "cors")
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(fetch.status().as_u16(), 401);
    assert!(!fetch.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn signing_in_begins_a_session_that_carries_no_password_and_signing_out_ends_it() {
    let app = TestApp::spawn_with(with_password).await;
    let response = sign_in(
        &app,
        &[("password", PASSWORD), ("next", "/admin/orders?q=thandi")],
        None,
    )
    .await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(response.headers()), "/admin/orders?q=thandi");
    let (set, cookie) = session_cookie(response.headers());
    for part in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    // The cookie is a random token: nothing of the password, plain or encoded.
    let token = cookie.split_once('=').unwrap().1.to_string();
    assert!(token.len() >= 32, "{token}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
    for needle in [PASSWORD, "Bo-Kaap", basic.as_str()] {
        assert!(!set.contains(needle), "the cookie holds {needle:?}: {set}");
    }

    // With the cookie, every page; the sign-in page sends the browser on.
    let page = navigate(&app, "/admin", Some(&cookie)).await;
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Sign out"), "{page}");
    let again = navigate(&app, "/admin/sign-in?next=/admin/problems", Some(&cookie)).await;
    assert_eq!(again.status().as_u16(), 303);
    assert_eq!(location(again.headers()), "/admin/problems");
    // Forms posted with the session follow the same-origin rule.
    let cross = no_redirects()
        .post(format!("{}/admin/replay", app.base))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status().as_u16(), 403);
    let own = no_redirects()
        .post(format!("{}/admin/replay", app.base))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(own.status().as_u16(), 303);

    // The token is kept only as a hash: in no file in clear.
    app.store().checkpoint().await.unwrap();
    for entry in std::fs::read_dir(app.dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "{} holds the session token",
                path.display()
            );
        }
    }

    // Signing out from another site does nothing.
    let forged = no_redirects()
        .post(format!("{}/admin/sign-out", app.base))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert_eq!(
        navigate(&app, "/admin", Some(&cookie))
            .await
            .status()
            .as_u16(),
        200
    );
    // From our page it ends the session, here and for whoever copied the cookie.
    let out = no_redirects()
        .post(format!("{}/admin/sign-out", app.base))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 303);
    assert_eq!(
        location(out.headers()),
        "/admin/sign-in?signed_out=1",
        "back to signing in"
    );
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = navigate(&app, "/admin", Some(&cookie)).await;
    assert_eq!(after.status().as_u16(), 303);
    assert_eq!(app.store().session_count().await.unwrap(), 0);
    let page = navigate(&app, "/admin/sign-in?signed_out=1", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("You are signed out"), "{page}");
}

#[tokio::test]
async fn over_https_the_cookie_is_secure() {
    let app = TestApp::spawn_with(|c| {
        with_password(c);
        c.server.public_url = "https://tickets.example.co.za".into();
    })
    .await;
    let response = sign_in(&app, &[("password", PASSWORD)], None).await;
    assert_eq!(response.status().as_u16(), 303);
    let (set, _) = session_cookie(response.headers());
    assert!(set.contains("; Secure"), "{set}");
}

#[tokio::test]
async fn wrong_passwords_at_sign_in_and_in_basic_auth_count_toward_one_throttle() {
    let app = TestApp::spawn_with(with_password).await;
    let guesser = "203.0.113.50";
    for i in 0..5 {
        let response = sign_in(&app, &[("password", "a wrong guess")], Some(guesser)).await;
        assert_eq!(response.status().as_u16(), 403, "guess {i}");
        let page = response.text().await.unwrap();
        assert!(page.contains("not the password"), "{page}");
        assert!(
            !page.contains("a wrong guess"),
            "the guess is not shown back"
        );
    }
    for i in 0..4 {
        let response = app
            .client
            .get(format!("{}/admin", app.base))
            .basic_auth("admin", Some("another guess"))
            .header("x-forwarded-for", guesser)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "basic guess {i}");
    }
    // The tenth failure is answered 429 at once, with when to try again.
    let response = sign_in(&app, &[("password", "the last guess")], Some(guesser)).await;
    assert_eq!(response.status().as_u16(), 429);
    // Even the right password, by either way, until the ten minutes have passed.
    let response = sign_in(&app, &[("password", PASSWORD)], Some(guesser)).await;
    assert_eq!(response.status().as_u16(), 429);
    assert!(!response.headers().contains_key("set-cookie"));
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 500 && wait <= 600, "Retry-After {wait}");
    let page = response.text().await.unwrap();
    assert!(page.contains("Too many wrong passwords"), "{page}");
    let response = app
        .client
        .get(format!("{}/admin", app.base))
        .basic_auth("admin", Some(PASSWORD))
        .header("x-forwarded-for", guesser)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    // Another client signs in.
    let response = sign_in(&app, &[("password", PASSWORD)], Some("198.51.100.7")).await;
    assert_eq!(response.status().as_u16(), 303);
}

#[tokio::test]
async fn sign_in_refuses_other_sites_big_bodies_bad_forms_and_other_destinations() {
    let app = TestApp::spawn_with(with_password).await;
    let good = [("password", PASSWORD)];
    // Login CSRF: posted from another site, or saying nothing of where it comes from.
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let response = no_redirects()
            .post(format!("{}/admin/sign-in", app.base))
            .header(name, value)
            .form(&good)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403, "{name}: {value}");
        assert!(!response.headers().contains_key("set-cookie"));
    }
    let response = no_redirects()
        .post(format!("{}/admin/sign-in", app.base))
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);

    // A body of 10 MB.
    let response = no_redirects()
        .post(format!("{}/admin/sign-in", app.base))
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
    // No password field; an empty one; quotes and line breaks.
    let response = sign_in(&app, &[("secret", PASSWORD)], None).await;
    assert_eq!(response.status().as_u16(), 400);
    let response = sign_in(&app, &[("password", "")], None).await;
    assert_eq!(response.status().as_u16(), 403);
    let response = sign_in(&app, &[("password", "\"quoted\"\r\nSet-Cookie: x=1")], None).await;
    assert_eq!(response.status().as_u16(), 403);
    assert!(!response.headers().contains_key("set-cookie"));

    // After signing in, only our own pages are a destination.
    for next in [
        "https://evil.example/",
        "//evil.example/admin",
        "/admin\r\nSet-Cookie: x=1",
    ] {
        let response = sign_in(&app, &[("password", PASSWORD), ("next", next)], None).await;
        assert_eq!(response.status().as_u16(), 303, "{next:?}");
        assert_eq!(location(response.headers()), "/admin", "{next:?}");
    }
    // A made-up or malformed cookie is no session, and no failure either.
    for cookie in [
        "qf_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "qf_session=\"quoted\"",
        "qf_session=",
    ] {
        let response = navigate(&app, "/admin", Some(cookie)).await;
        assert_eq!(response.status().as_u16(), 303, "{cookie}");
    }
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
}

#[tokio::test]
async fn a_session_ends_after_eight_idle_hours_however_long_it_was_used_before() {
    let app = TestApp::spawn_with(with_password).await;
    let cookie = signed_in(&app).await;
    let token = cookie.split_once('=').unwrap().1.to_string();
    let live = |at| {
        let store = app.store().clone();
        let token = token.clone();
        async move {
            quicket_followup::web::session_live(&store, &token, at)
                .await
                .unwrap()
        }
    };
    assert_eq!(quicket_followup::web::SESSION_IDLE, TimeDelta::hours(8));
    let start = Utc::now();
    // Used every 7 hours for a day: still signed in; idle is counted from the last use.
    for hours in [7, 14, 21] {
        assert!(
            live(start + TimeDelta::hours(hours)).await,
            "used at +{hours} h"
        );
    }
    // Then 8 hours without use: ended, and forgotten.
    assert!(!live(start + TimeDelta::hours(29) + TimeDelta::seconds(1)).await);
    assert_eq!(app.store().session_count().await.unwrap(), 0);
    assert_eq!(
        navigate(&app, "/admin", Some(&cookie))
            .await
            .status()
            .as_u16(),
        303,
        "the browser is asked to sign in again"
    );

    // However busy, a session lasts a week at most.
    let cookie = signed_in(&app).await;
    let token = cookie.split_once('=').unwrap().1.to_string();
    let start = Utc::now();
    let mut at = start;
    while at + TimeDelta::hours(6) < start + TimeDelta::days(7) {
        at += TimeDelta::hours(6);
        assert!(
            quicket_followup::web::session_live(app.store(), &token, at)
                .await
                .unwrap(),
            "used at +{} h",
            (at - start).num_hours()
        );
    }
    assert!(
        !quicket_followup::web::session_live(
            app.store(),
            &token,
            start + TimeDelta::days(7) + TimeDelta::minutes(1)
        )
        .await
        .unwrap()
    );
}

#[tokio::test]
async fn setting_the_password_again_through_a_setup_link_ends_every_session() {
    let app = TestApp::spawn().await;
    let link = quicket_followup::web::new_setup_link(app.store(), &app.base, Utc::now())
        .await
        .unwrap();
    let set = |link: String, password: &'static str| async move {
        let response = no_redirects()
            .post(&link)
            .header("sec-fetch-site", "same-origin")
            .form(&[("password", password), ("confirm", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    };
    set(link, PASSWORD).await;
    let cookie = signed_in(&app).await;
    assert_eq!(
        navigate(&app, "/admin", Some(&cookie))
            .await
            .status()
            .as_u16(),
        200
    );
    // Forgotten, or someone else knew it: a new link from the server sets a new one.
    let link = quicket_followup::web::new_setup_link(app.store(), &app.base, Utc::now())
        .await
        .unwrap();
    set(link, "a-new-password-for-a-new-season").await;
    assert_eq!(
        navigate(&app, "/admin", Some(&cookie))
            .await
            .status()
            .as_u16(),
        303,
        "the old session ended"
    );
    let old = sign_in(&app, &[("password", PASSWORD)], None).await;
    assert_eq!(old.status().as_u16(), 403);
    let new = sign_in(
        &app,
        &[("password", "a-new-password-for-a-new-season")],
        None,
    )
    .await;
    assert_eq!(new.status().as_u16(), 303);
}

#[tokio::test]
async fn without_a_password_admin_says_in_words_how_to_finish_setup() {
    let app = TestApp::spawn().await;
    for path in ["/admin", "/admin/orders", "/admin/sign-in"] {
        let response = navigate(&app, path, None).await;
        assert_eq!(response.status().as_u16(), 404, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains("Not set up yet"), "{page}");
        assert!(page.contains("Finish setting up"), "{page}");
        assert!(page.contains("setup-link"), "{page}");
    }
    // A script is told the same, not in JSON.
    let response = app.get("/admin").await;
    assert_eq!(response.status().as_u16(), 404);
    let body = response.text().await.unwrap();
    assert!(!body.trim_start().starts_with('{'), "{body}");
    assert!(body.contains("setup-link"), "{body}");
}
