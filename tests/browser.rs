//! One end-to-end test in headless Chromium: an organiser signs in to /admin, reads the overview,
//! finds a buyer and reads their timeline. It saves screenshots under `target/screenshots/` so a
//! person can look at what the pages really look like with realistic data.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without
//! `chromedriver` the test says it skipped and passes. fantoccini is built without TLS (chromedriver
//! is plain HTTP on 127.0.0.1), so it is given hyper-util's plain `HttpConnector` (dev-dependency).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::TestApp;
use fantoccini::{Client, ClientBuilder, Locator};
use quicket_followup::config::{Config, EventConfig, SendWindow};
use quicket_followup::links::LinkTarget;
use serde_json::{Value, json};

const PASSWORD: &str = "Kirstenbosch-Summer-2030";

struct Event {
    id: u32,
    name: &'static str,
    date: &'static str,
    slug: &'static str,
}

const JAZZ: Event = Event {
    id: 456,
    name: "Jazz on the Lawn",
    date: "2030-12-12 18:30",
    slug: "jazz-on-the-lawn",
};
const COMEDY: Event = Event {
    id: 512,
    name: "Cape Town Comedy Night",
    date: "2030-11-21 20:00",
    slug: "cape-town-comedy-night",
};
const WINE: Event = Event {
    id: 618,
    name: "Stellenbosch Wine & Food Festival",
    date: "2031-02-14 11:00",
    slug: "stellenbosch-wine-food-festival",
};

/// One buyer's checkout: who, for what, which tickets (type, price in rand).
struct Sale {
    reference: &'static str,
    name: &'static str,
    email: &'static str,
    event: &'static Event,
    tickets: &'static [(&'static str, u32)],
}

impl Sale {
    /// The hook Quicket would POST for this checkout and action.
    fn hook(&self, action: &str) -> String {
        let paid = action == "checkout_completed";
        let tickets: Vec<Value> = self
            .tickets
            .iter()
            .enumerate()
            .map(|(i, (kind, price))| {
                // Quicket fills in attendees and barcodes once the order is paid.
                let (name, email) = if i == 0 || paid {
                    (self.name, self.email)
                } else {
                    ("", "")
                };
                json!({"id": 9100 + i, "attendee_name": name, "attendee_email": email,
                       "ticket_type": kind, "price": f64::from(*price),
                       "barcode": if paid { 48_213_500 + i } else { 0 }})
            })
            .collect();
        let amount: u32 = self.tickets.iter().map(|(_, price)| price).sum();
        json!({"reference": self.reference, "event_id": self.event.id, "event_name": self.event.name,
               "amount": f64::from(amount), "email": self.email, "event_date": self.event.date,
               "action": action, "tickets": tickets})
        .to_string()
    }

    fn target(&self) -> LinkTarget {
        LinkTarget {
            email_key: self.email.to_lowercase(),
            event_id: self.event.id.to_string(),
            step: "abandoned-1".into(),
        }
    }
}

const THANDI: Sale = Sale {
    reference: "REF00418213",
    name: "Thandi Mokoena",
    email: "thandi.mokoena@gmail.com",
    event: &JAZZ,
    tickets: &[("VIP", 450), ("VIP", 450)],
};
const PIETER: Sale = Sale {
    reference: "REF00418227",
    name: "Pieter van Wyk",
    email: "pieter.vanwyk@mweb.co.za",
    event: &COMEDY,
    tickets: &[("Front row", 380), ("Front row", 380)],
};
const LERATO: Sale = Sale {
    reference: "REF00418240",
    name: "Lerato Dlamini",
    email: "lerato.dlamini@mail.co.za",
    event: &WINE,
    tickets: &[("Weekend pass", 600), ("Weekend pass", 600)],
};
const SIPHO: Sale = Sale {
    reference: "REF00418252",
    name: "Sipho Ndlovu",
    email: "sipho.ndlovu@webmail.co.za",
    event: &JAZZ,
    tickets: &[("General", 250)],
};
const AISHA: Sale = Sale {
    reference: "REF00418266",
    name: "Aisha Patel",
    email: "aisha.patel@gmail.com",
    event: &COMEDY,
    tickets: &[("General", 280), ("General", 280)],
};
const JOHAN: Sale = Sale {
    reference: "REF00418271",
    name: "Johan Botha",
    email: "johan.botha@telkomsa.net",
    event: &WINE,
    tickets: &[("Weekend pass", 600)],
};
const NOMVULA: Sale = Sale {
    reference: "REF00418289",
    name: "Nomvula Khumalo",
    email: "nomvula.khumalo@icloud.com",
    event: &JAZZ,
    tickets: &[
        ("General", 250),
        ("General", 250),
        ("General", 250),
        ("General", 250),
    ],
};
const RUAN: Sale = Sale {
    reference: "REF00418293",
    name: "Ruan Pretorius",
    email: "ruan.pretorius@outlook.com",
    event: &WINE,
    tickets: &[("Day pass", 350)],
};
const ZANELE: Sale = Sale {
    reference: "REF00418305",
    name: "Zanele Mthembu",
    email: "zanele.mthembu@vodamail.co.za",
    event: &COMEDY,
    tickets: &[("General", 280)],
};
const FATIMA: Sale = Sale {
    reference: "REF00418316",
    name: "Fatima Adams",
    email: "fatima.adams@gmail.com",
    event: &JAZZ,
    tickets: &[("VIP", 450)],
};
const KAGISO: Sale = Sale {
    reference: "REF00418324",
    name: "Kagiso Molefe",
    email: "kagiso.molefe@yahoo.com",
    event: &WINE,
    tickets: &[("Day pass", 350), ("Day pass", 350)],
};

/// Reminders go out as soon as a pass sees a still checkout, at any hour; emails land in the
/// temp outbox as .eml files.
fn organiser(c: &mut Config) {
    c.server.admin_password = PASSWORD.into();
    c.email.from = "Cape Live Events <tickets@capelive.co.za>".into();
    c.schedule.send_window = SendWindow::parse("").unwrap();
    c.schedule.dormant_after = Duration::ZERO;
    for step in &mut c.reminders {
        if step.after.is_some() {
            step.after = Some(Duration::ZERO);
        }
    }
    for event in [&JAZZ, &COMEDY, &WINE] {
        c.events.insert(
            event.id.to_string(),
            EventConfig {
                url: Some(format!(
                    "https://www.quicket.co.za/events/{}-{}/",
                    event.id, event.slug
                )),
                reminders: true,
            },
        );
    }
}

async fn post(app: &TestApp, sale: &Sale, action: &str) {
    let (status, answer) = app.post_hook(sale.hook(action)).await;
    assert_eq!(status, 200, "{} {action}: {answer}", sale.reference);
}

/// A realistic day: eleven buyers, three events, every kind of ending.
async fn a_day_of_checkouts(app: &TestApp) {
    for sale in [&THANDI, &PIETER, &SIPHO, &NOMVULA, &FATIMA] {
        post(app, sale, "checkout_started").await;
    }
    for sale in [&AISHA, &ZANELE] {
        post(app, sale, "checkout_started").await;
        post(app, sale, "checkout_cancelled").await;
    }
    post(app, &JOHAN, "checkout_started").await;
    post(app, &JOHAN, "eft_pending").await;
    // Two buyers pay straight away: nothing to win back.
    for sale in [&LERATO, &RUAN] {
        post(app, sale, "checkout_started").await;
        post(app, sale, "checkout_completed").await;
    }

    let engine = &app.service.engine;
    let report = engine.run_pass(Utc::now(), false).await.unwrap();
    assert_eq!(report.counts.sent, 8, "seven abandoned, one EFT");

    // Thandi and Nomvula follow the link in the email, then pay; Pieter and Fatima pay without
    // clicking; Aisha unsubscribes from the email.
    let no_redirects = common::no_redirects();
    for sale in [&THANDI, &NOMVULA] {
        let response = no_redirects
            .get(
                engine
                    .issue_links(&sale.target(), None, Utc::now())
                    .await
                    .unwrap()
                    .event,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 302);
    }
    for sale in [&THANDI, &NOMVULA, &PIETER, &FATIMA] {
        post(app, sale, "checkout_completed").await;
    }
    let response = app
        .client
        .post(
            engine
                .issue_links(&AISHA.target(), None, Utc::now())
                .await
                .unwrap()
                .unsubscribe,
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // The next pass finds nothing new to send; then one more buyer walks away.
    let report = engine.run_pass(Utc::now(), false).await.unwrap();
    assert_eq!(report.counts.sent, 0);
    post(app, &KAGISO, "checkout_started").await;
}

/// `chromedriver` when installed: Debian's path, else the PATH. Missing, the test says it skipped,
/// except under CI, where it fails.
fn chromedriver() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin/chromedriver");
    let found = if debian.is_file() {
        Some(debian)
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("chromedriver"))
            .find(|p| p.is_file())
    };
    if found.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI needs chromedriver (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipped: chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
    }
    found
}

/// chromedriver running as a child. Dropping it ends the browser session (so Chromium quits even
/// when the test failed half-way) and then chromedriver itself, by its pid.
struct Driver {
    child: Child,
    port: u16,
    url: String,
    session: Option<String>,
}

impl Driver {
    async fn start(binary: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut driver = Driver {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            session: None,
        };
        let status = format!("{}/status", driver.url);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(response) = reqwest::get(&status).await
                && let Ok(body) = response.text().await
                && serde_json::from_str::<Value>(&body)
                    .is_ok_and(|v| v["value"]["ready"] == Value::Bool(true))
            {
                return driver;
            }
            assert!(
                driver.child.try_wait().unwrap().is_none(),
                "chromedriver exited at start"
            );
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer {status} within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `DELETE /session/{id}`, blocking: Drop cannot await.
    fn end_session(&self, session: &str) -> std::io::Result<()> {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        stream.read_to_end(&mut Vec::new())?;
        Ok(())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = self.end_session(&session);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let binary = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("chromium");
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": binary,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                "--hide-scrollbars", "--lang=en-ZA",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// Signs in as a person does: `/admin` sends the browser to the sign-in page, the password is
/// typed, and the browser lands on the overview with a session.
async fn sign_in(client: &Client, addr: SocketAddr) {
    client.goto(&format!("http://{addr}/admin")).await.unwrap();
    let password = wait_for(client, Locator::Css("input[name=password]")).await;
    password.send_keys(PASSWORD).await.unwrap();
    client
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Only the organiser's pages have the navigation.
    wait_for(client, Locator::Css("header nav")).await;
}

/// Waits (bounded) for an element that only the next page has.
async fn wait_for(client: &Client, what: Locator<'_>) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(what)
        .await
        .unwrap_or_else(|e| panic!("no {what:?} within 10 s: {e}"))
}

async fn body_text(client: &Client) -> String {
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A screenshot of the whole page at `width` CSS pixels: the window is made as tall as the page.
async fn screenshot(client: &Client, width: u32, path: &Path) {
    client.set_window_size(width, 1000).await.unwrap();
    let measured = client
        .execute(
            "return [window.innerWidth, window.outerHeight - window.innerHeight, \
             document.documentElement.scrollHeight];",
            vec![],
        )
        .await
        .unwrap();
    let [inner_width, chrome, height] = [0, 1, 2].map(|i| measured[i].as_u64().unwrap());
    assert_eq!(
        inner_width,
        u64::from(width),
        "the window could not be made {width} px wide"
    );
    let total = u32::try_from(height + chrome).unwrap().min(8000);
    client.set_window_size(width, total).await.unwrap();
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", path.display());
    std::fs::write(path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

#[tokio::test]
async fn an_organiser_signs_in_finds_a_buyer_and_reads_the_timeline() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let started = Instant::now();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let app = TestApp::spawn_with(organiser).await;
    a_day_of_checkouts(&app).await;
    let addr: SocketAddr = app.service.addr;

    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    driver.session = client.session_id().await.unwrap();

    // Sign in on the page /admin sends a browser to.
    sign_in(&client, addr).await;
    let heading = wait_for(&client, Locator::Css("main h1"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        heading,
        "Overview",
        "signed in: {}",
        body_text(&client).await
    );
    let revenue = client
        .find(Locator::XPath(
            "//div[@class='card'][div[normalize-space()='Attributed revenue']]/div[@class='big']",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Thandi R900 + Nomvula R1,000 (clicked) + Pieter R760 + Fatima R450.
    assert_eq!(revenue, "R3,110.00");
    let overview = body_text(&client).await;
    assert!(overview.contains("Attributed revenue"));
    assert!(client.find(Locator::Css("main svg rect")).await.is_ok());
    screenshot(&client, 1280, &shots.join("admin-overview.png")).await;
    screenshot(&client, 390, &shots.join("admin-overview-phone.png")).await;
    client.set_window_size(1280, 1000).await.unwrap();

    // Orders: search a buyer by part of her address, open her timeline.
    client
        .find(Locator::LinkText("Orders"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let search = wait_for(&client, Locator::Css("input[name=q]")).await;
    let latest = body_text(&client).await;
    assert!(
        [&THANDI, &KAGISO, &AISHA, &JOHAN]
            .iter()
            .all(|sale| latest.contains(sale.email)),
        "the latest buyers are listed: {latest}"
    );
    screenshot(&client, 1280, &shots.join("admin-orders.png")).await;
    search.send_keys("thandi").await.unwrap();
    client
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The page before the search lists the latest buyers too: wait for the results' heading.
    wait_for(
        &client,
        Locator::XPath("//main/h2[starts-with(normalize-space(), 'Matching')]"),
    )
    .await;
    let link = client
        .find(Locator::Css("table a[href^='/admin/buyer']"))
        .await
        .unwrap();
    let results = body_text(&client).await;
    assert!(results.contains("Matching “thandi”"), "{results}");
    assert_eq!(link.text().await.unwrap(), THANDI.name);
    assert!(
        results.contains(THANDI.email),
        "the address is shown under the name"
    );
    assert!(
        !results.contains(SIPHO.email),
        "only Thandi matches: {results}"
    );
    link.click().await.unwrap();
    wait_for(&client, Locator::Css("ol.timeline")).await;
    let timeline = body_text(&client).await;
    for needle in [
        "thandi.mokoena@gmail.com · Jazz on the Lawn (456)",
        "Started a checkout (REF00418213)",
        "First reminder: sent",
        "Email: Abandoned checkout email",
        "followed the link in the First reminder",
        "Completed the purchase (REF00418213)",
        "paid",
    ] {
        assert!(
            timeline.contains(needle),
            "the timeline lacks {needle:?}:\n{timeline}"
        );
    }
    // The raw body Quicket sent is there, folded away until asked for.
    let details = client
        .find(Locator::Css("ol.timeline details"))
        .await
        .unwrap();
    assert!(details.attr("open").await.unwrap().is_none());
    details
        .find(Locator::Css("summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(details.attr("open").await.unwrap().is_some());
    let raw = details.find(Locator::Css("pre")).await.unwrap();
    assert!(raw.text().await.unwrap().contains("Thandi Mokoena"));
    screenshot(&client, 1280, &shots.join("admin-timeline.png")).await;

    client.close().await.unwrap();
    driver.session = None;
    drop(driver);
    eprintln!("browser test took {:.1} s", started.elapsed().as_secs_f64());
}

/// The control group on the overview: 400 dormant buyers, half held out; the emailed buyers buy
/// more often. Screenshots under `target/screenshots/admin-experiment*.png`.
#[tokio::test]
async fn the_overview_leads_with_what_the_reminders_added_against_the_control_group() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let app = TestApp::spawn_with(|c| {
        organiser(c);
        c.experiment.holdout = quicket_followup::experiment::Share::parse("50%").unwrap();
        c.reminders[0].template.clear();
        c.reminders[0].variants = vec!["abandoned".into(), "last_chance".into()];
    })
    .await;
    let hook = |i: usize, action: &str| {
        json!({"reference": format!("X{i}"), "event_id": JAZZ.id, "event_name": JAZZ.name,
               "amount": "350.00", "email": format!("buyer{i}@mail.co.za"),
               "event_date": JAZZ.date, "action": action})
        .to_string()
    };
    for i in 0..400 {
        assert_eq!(app.post_hook(hook(i, "checkout_started")).await.0, 200);
    }
    let report = app.pass_at(Utc::now()).await;
    assert!(report.counts.sent > 100);
    let groups: Vec<(String, bool)> = app
        .store()
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT email_key, held_out FROM experiment")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<(String, bool)>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap();
    // Three in ten emailed buyers pay, one in ten held out.
    let (mut e, mut h) = (0, 0);
    for (key, held) in &groups {
        let i: usize = key
            .trim_start_matches("buyer")
            .trim_end_matches("@mail.co.za")
            .parse()
            .unwrap();
        let n = if *held { &mut h } else { &mut e };
        *n += 1;
        if (*held && *n % 10 == 0) || (!*held && *n % 10 < 3) {
            assert_eq!(app.post_hook(hook(i, "checkout_completed")).await.0, 200);
        }
    }
    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    driver.session = client.session_id().await.unwrap();
    sign_in(&client, app.service.addr).await;
    wait_for(&client, Locator::Css("main h1")).await;
    let text = body_text(&client).await;
    assert!(
        text.contains("Reminders brought in about")
            && text.contains("that would not have come otherwise"),
        "{text}"
    );
    assert!(text.contains("Held out"), "{text}");
    assert!(
        text.contains("Last-chance email") && text.contains("Abandoned checkout email"),
        "{text}"
    );
    assert!(client.find(Locator::Css("main svg polyline")).await.is_ok());
    screenshot(&client, 1280, &shots.join("admin-experiment.png")).await;
    screenshot(&client, 390, &shots.join("admin-experiment-phone.png")).await;
    client.close().await.unwrap();
    driver.session = None;
    drop(driver);
}

/// Waits (bounded) until the element `css` says exactly `text`.
async fn wait_for_text(client: &Client, css: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = match client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if now.contains(text) {
            return;
        }
        if Instant::now() >= deadline {
            let url = client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            panic!(
                "{css} did not say {text:?} within 10 s; it says {now:?}; at {url}: {}",
                body_text(client).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The email editor: change the subject and watch the preview follow, save, and the next pass's
/// email has it; a misspelt name shows its error and is not saved; restoring the first version from
/// the history brings the old email back. Screenshots `admin-email-editor*.png`,
/// `admin-history*.png`.
#[tokio::test]
async fn an_organiser_edits_an_email_in_the_browser_saves_it_and_restores_it_from_the_history() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let templates = common::copy_of_shipped_templates();
    let dir = templates.path().to_path_buf();
    let app = TestApp::spawn_with(move |c| {
        organiser(c);
        c.templates.dir = Some(dir);
    })
    .await;
    let subject_file = templates.path().join("abandoned/subject.txt");
    let original = std::fs::read_to_string(&subject_file).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    driver.session = client.session_id().await.unwrap();
    let addr = app.service.addr;
    sign_in(&client, addr).await;
    wait_for(&client, Locator::Css("main h1")).await;
    // The overview links the step to its email.
    client
        .find(Locator::Css("#steps a[href='/admin/emails/abandoned']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Simple mode opens first; this test edits the template code.
    wait_for(&client, Locator::Css("#to-code"))
        .await
        .click()
        .await
        .unwrap();
    let subject = wait_for(&client, Locator::Css("textarea#subject")).await;
    wait_for_text(
        &client,
        "#preview-subject",
        "Your Jazz on the Lawn tickets are still waiting",
    )
    .await;
    assert!(body_text(&client).await.contains("47 of 60 characters"));
    screenshot(&client, 1280, &shots.join("admin-email-editor.png")).await;
    screenshot(&client, 390, &shots.join("admin-email-editor-phone.png")).await;
    client.set_window_size(1280, 1000).await.unwrap();

    // Type a new subject: the preview follows without a click.
    subject.clear().await.unwrap();
    subject
        .send_keys("Seats for {{ event.name }} are waiting")
        .await
        .unwrap();
    wait_for_text(
        &client,
        "#preview-subject",
        "Seats for Jazz on the Lawn are waiting",
    )
    .await;
    wait_for_text(&client, "#subject-length", "38 of 60 characters").await;
    client
        .find(Locator::Css("#save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "main .notice", "Saved. The next emails use it.").await;
    assert_eq!(
        std::fs::read_to_string(&subject_file).unwrap(),
        "Seats for {{ event.name }} are waiting"
    );
    post(&app, &THANDI, "checkout_started").await;
    let report = app
        .service
        .engine
        .run_pass(Utc::now(), false)
        .await
        .unwrap();
    assert_eq!(report.counts.sent, 1);
    assert_eq!(
        common::outbox_subjects(&app),
        vec!["Seats for Jazz on the Lawn are waiting".to_string()]
    );

    // A misspelt name: the error shows beside the preview, and Save is refused.
    let subject = wait_for(&client, Locator::Css("textarea#subject")).await;
    subject.send_keys(" {{ buyer.frist_name }}").await.unwrap();
    // The error is shown at the subject; the body previews still render.
    wait_for_text(&client, "#subject-error", "buyer.frist_name").await;
    wait_for_text(&client, "#preview-text", "Hi Lerato,").await;
    let errors = client
        .find(Locator::Css("#subject-error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(errors.contains("abandoned/subject.txt, line 1"), "{errors}");
    client
        .find(Locator::Css("#save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "#problem", "Not saved").await;
    assert_eq!(
        std::fs::read_to_string(&subject_file).unwrap(),
        "Seats for {{ event.name }} are waiting",
        "the file is unchanged"
    );

    // History: restore what was there before the save.
    client
        .find(Locator::LinkText("History"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "ul.history", "abandoned: subject changed").await;
    screenshot(&client, 1280, &shots.join("admin-history.png")).await;
    screenshot(&client, 390, &shots.join("admin-history-phone.png")).await;
    client.set_window_size(1280, 1000).await.unwrap();
    client
        .find(Locator::Css("ul.history li button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "main .notice", "Restored what was there before").await;
    assert_eq!(std::fs::read_to_string(&subject_file).unwrap(), original);
    post(&app, &PIETER, "checkout_started").await;
    let report = app
        .service
        .engine
        .run_pass(Utc::now(), false)
        .await
        .unwrap();
    assert_eq!(report.counts.sent, 1);
    assert_eq!(
        common::outbox_subjects(&app).last().unwrap(),
        "Your Cape Town Comedy Night tickets are still waiting"
    );
    client.close().await.unwrap();
    driver.session = None;
    drop(driver);
}

/// The words of a received email's text part and HTML part (decoded, whitespace collapsed).
fn parts_of(mail: &common::smtp::Received) -> (String, String) {
    let decoded = common::smtp::qp_decode(&mail.data).replace("&#x2f;", "/");
    let plain = decoded.find("Content-Type: text/plain").unwrap();
    let html = decoded.find("Content-Type: text/html").unwrap();
    let (text, html) = if plain < html {
        (&decoded[plain..html], &decoded[html..])
    } else {
        (&decoded[plain..], &decoded[html..plain])
    };
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    (words(text), words(html))
}

/// Simple mode: an organiser changes the opening sentence and the button's label in words, puts
/// the buyer's first name in from the Insert menu and saves; the next pass's email, received by a
/// real SMTP server, has the new words in both parts. A misspelt detail is named with the one
/// meant, Save is refused and the previews still show; in code mode, an email without its
/// unsubscribe link is refused with the reason. Screenshots `admin-email-words*.png`.
#[tokio::test]
async fn an_organiser_changes_an_email_in_words_and_both_parts_of_the_next_email_say_it() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let smtp = common::smtp::SmtpServer::start();
    let templates = common::copy_of_shipped_templates();
    let dir = templates.path().to_path_buf();
    let app = TestApp::spawn_with(|c| {
        c.server.admin_password = PASSWORD.into();
        common::via_smtp(c, &smtp);
        c.schedule.dormant_after = Duration::ZERO;
        c.reminders.truncate(1);
        c.reminders[0].after = Some(Duration::ZERO);
        c.templates.dir = Some(dir);
    })
    .await;
    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    driver.session = client.session_id().await.unwrap();
    let addr = app.service.addr;
    sign_in(&client, addr).await;
    client
        .goto(&format!("http://{addr}/admin/emails/abandoned"))
        .await
        .unwrap();
    let opening = wait_for(&client, Locator::Css("textarea#w-opening")).await;
    wait_for_text(
        &client,
        "#preview-text",
        "Your checkout for Jazz on the Lawn didn't quite finish",
    )
    .await;
    screenshot(&client, 1280, &shots.join("admin-email-words.png")).await;
    screenshot(&client, 390, &shots.join("admin-email-words-phone.png")).await;
    client.set_window_size(1280, 1000).await.unwrap();

    // A new opening, typed once; the first name from the Insert menu at the cursor.
    opening.clear().await.unwrap();
    opening
        .send_keys("Good news, ! Your seats for [event] are still held for you <3 {{ x }}.")
        .await
        .unwrap();
    client
        .execute(
            "var a = document.getElementById('w-opening'); a.focus(); a.setSelectionRange(11, 11);",
            vec![],
        )
        .await
        .unwrap();
    client
        .find(Locator::Css("#insert"))
        .await
        .unwrap()
        .select_by_value("first name")
        .await
        .unwrap();
    let button = client.find(Locator::Css("input#w-button")).await.unwrap();
    button.clear().await.unwrap();
    button.send_keys("Finish my booking").await.unwrap();
    wait_for_text(&client, "#preview-text", "Finish my booking:").await;
    wait_for_text(
        &client,
        "#preview-text",
        "Good news, Lerato! Your seats for Jazz on the Lawn are still held for",
    )
    .await;
    assert_eq!(
        opening.prop("value").await.unwrap().unwrap(),
        "Good news, [first name]! Your seats for [event] are still held for you <3 {{ x }}."
    );
    client
        .find(Locator::Css("#save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "main .notice", "Saved. The next emails use it.").await;
    assert!(
        std::fs::read_to_string(templates.path().join("abandoned/words.toml"))
            .unwrap()
            .contains("Finish my booking")
    );

    // The next pass, at a time the default send window is open.
    post(&app, &THANDI, "checkout_started").await;
    let at = common::in_default_window(Utc::now() + chrono::Duration::minutes(1));
    let report = app.pass_at(at).await;
    assert_eq!(report.counts.sent, 1, "{report:?}");
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    let (text, html) = parts_of(&received[0]);
    for (part, body) in [("text", &text), ("html", &html)] {
        assert!(
            body.contains(
                "Good news, Thandi! Your seats for Jazz on the Lawn are still held for you"
            ),
            "{part}: {body}"
        );
        assert!(body.contains("Finish my booking"), "{part}: {body}");
        assert!(
            !body.contains("didn't quite finish, so here"),
            "{part}: {body}"
        );
    }
    assert!(
        text.contains("<3 {{ x }}."),
        "typed text stays text: {text}"
    );
    assert!(html.contains("&lt;3 {{ x }}."), "escaped in HTML: {html}");

    // A misspelt detail: named with the one meant; Save refused; the previews still show.
    let subject = wait_for(&client, Locator::Css("input#w-subject")).await;
    subject.send_keys(" [evnet date]").await.unwrap();
    wait_for_text(&client, "#error-subject", "Did you mean [event date]?").await;
    wait_for_text(&client, "#preview-text", "Good news, Lerato!").await;
    client
        .find(Locator::Css("#save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "#problem", "Not saved").await;
    wait_for_text(&client, "#error-subject", "Did you mean [event date]?").await;
    wait_for_text(&client, "#preview-subject", "[evnet date]").await;
    let frame = client
        .find(Locator::Css("#preview-frame"))
        .await
        .unwrap()
        .attr("srcdoc")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        frame.contains("Finish my booking"),
        "the HTML preview still shows"
    );
    screenshot(&client, 1280, &shots.join("admin-email-words-refused.png")).await;
    screenshot(
        &client,
        390,
        &shots.join("admin-email-words-refused-phone.png"),
    )
    .await;
    client.set_window_size(1280, 1000).await.unwrap();

    // Code mode: a misspelt value in the subject leaves the body previews working.
    client
        .find(Locator::Css("#to-code"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let code_subject = wait_for(&client, Locator::Css("textarea#subject")).await;
    code_subject.send_keys(" {{ event.nmae }}").await.unwrap();
    wait_for_text(
        &client,
        "#subject-error",
        "Did you mean `event.name` (the event's name)?",
    )
    .await;
    wait_for_text(&client, "#preview-text", "Finish my booking:").await;
    code_subject.clear().await.unwrap();
    code_subject
        .send_keys("Your {{ event.name }} tickets are still waiting")
        .await
        .unwrap();
    // Without the unsubscribe link: refused with the reason.
    client
        .execute(
            "var t = document.getElementById('text'); \
             t.value = t.value.replace('{% include \"_shared/footer.txt\" %}', ''); \
             t.dispatchEvent(new Event('input', {bubbles: true}));",
            vec![],
        )
        .await
        .unwrap();
    wait_for_text(&client, "#text-error", "the unsubscribe link is missing").await;
    client
        .find(Locator::Css("#save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "#problem", "POPIA").await;
    assert!(
        std::fs::read_to_string(templates.path().join("abandoned/body.txt"))
            .unwrap()
            .contains("_shared/footer.txt"),
        "nothing written"
    );
    screenshot(&client, 1280, &shots.join("admin-email-code-refused.png")).await;
    screenshot(
        &client,
        390,
        &shots.join("admin-email-code-refused-phone.png"),
    )
    .await;
    client.close().await.unwrap();
    driver.session = None;
    drop(driver);
}

/// The schedule editor in the browser: a step added and its wait typed, the plan in words and
/// "What would this send?" update as you type (the page's own script), then Save puts it in force.
/// Screenshots `target/screenshots/admin-schedule*.png`, at desktop and phone width.
#[tokio::test]
async fn the_schedule_editor_shows_what_an_edit_would_send_before_it_is_saved() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    // The split layout, as `init` and the package write it: the schedule in a file of its own.
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("quicket-followup.toml");
    let schedule = dir.path().join("schedule.toml");
    std::fs::write(
        &main,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nwebhook_token = \"{}\"\nadmin_password = \"{PASSWORD}\"\n\
             [database]\npath = {:?}\n[email]\noutbox_dir = {:?}\n[templates]\ndir = {:?}\n\
             [schedule]\nfile = \"schedule.toml\"\n",
            common::TOKEN,
            dir.path().join("data/followup.sqlite"),
            dir.path().join("data/outbox"),
            common::templates_dir(),
        ),
    )
    .unwrap();
    std::fs::write(
        &schedule,
        "# Cape Live Events: our reminders.\n[schedule]\nsend_window = \"za-cpa\"\n\n\
         [[reminders]]\nname = \"abandoned-1\"\nafter = \"1h\"\nwhen = [\"checkout_started\", \"checkout_cancelled\"]\n\
         template = \"abandoned\"\n\n[[reminders]]\nname = \"eft-1\"\nafter = \"1d\"\nwhen = [\"eft_pending\"]\n\
         template = \"eft_pending\"\n",
    )
    .unwrap();
    let config = Config::load(Some(&main)).unwrap();
    let service = quicket_followup::server::Service::start_from(config, Some(main.clone()), false)
        .await
        .unwrap();
    let addr: SocketAddr = service.addr;
    let app = TestApp {
        base: format!("http://{addr}"),
        dir,
        service,
        client: reqwest::Client::builder()
            .user_agent(common::BROWSER)
            .build()
            .unwrap(),
    };
    // The day's checkouts, none emailed yet: what the dry run has to work with.
    for sale in [&THANDI, &PIETER, &SIPHO, &NOMVULA, &FATIMA, &KAGISO] {
        post(&app, sale, "checkout_started").await;
    }
    for sale in [&AISHA, &ZANELE] {
        post(&app, sale, "checkout_started").await;
        post(&app, sale, "checkout_cancelled").await;
    }
    post(&app, &JOHAN, "checkout_started").await;
    post(&app, &JOHAN, "eft_pending").await;

    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    driver.session = client.session_id().await.unwrap();
    // Signed in on the sign-in page, then at the schedule's own address.
    sign_in(&client, addr).await;
    wait_for(&client, Locator::Css("main h1")).await;
    client
        .goto(&format!("http://{addr}/admin/schedule"))
        .await
        .unwrap();
    wait_for(&client, Locator::Id("forecast-days")).await;
    let before = body_text(&client).await;
    assert!(before.contains("What would this send?"), "{before}");

    // Add a step (a button: the page comes back with a new row), then type its name and wait.
    client
        .find(Locator::Css("button[value=add_step]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let name = wait_for(&client, Locator::Css("input[name='s2.name']")).await;
    name.clear().await.unwrap();
    name.send_keys("second-nudge").await.unwrap();
    let wait = client
        .find(Locator::Css("input[name='s2.wait.n']"))
        .await
        .unwrap();
    wait.clear().await.unwrap();
    wait.send_keys("3").await.unwrap();
    client
        .find(Locator::Css("select[name='s2.wait.unit']"))
        .await
        .unwrap()
        .select_by_value("days")
        .await
        .unwrap();
    // The script asks again as you type: the plan names the new step without a click.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let plan = client
            .find(Locator::Id("plan"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if plan.contains("second-nudge: 3 days after") {
            break;
        }
        assert!(Instant::now() < deadline, "the plan never updated: {plan}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let table = client
        .find(Locator::Id("forecast-days"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // (The table's headings are upper-cased by the page's style.)
    assert!(table.to_lowercase().contains("second-nudge"), "{table}");
    screenshot(&client, 1280, &shots.join("admin-schedule.png")).await;
    screenshot(&client, 390, &shots.join("admin-schedule-phone.png")).await;
    client.set_window_size(1280, 1000).await.unwrap();

    // Save: it says first what it will do; confirmed, in force at once, and the file keeps its
    // comment.
    client
        .find(Locator::Id("save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&client, Locator::Id("confirm-save"))
        .await
        .find(Locator::Id("confirm-save-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = wait_for(&client, Locator::Id("notice"))
        .await
        .text()
        .await
        .unwrap();
    assert!(notice.starts_with("Saved"), "{notice}");
    assert_eq!(
        app.service.engine.settings().config.step_names(),
        ["abandoned-1", "eft-1", "second-nudge"]
    );
    let saved = std::fs::read_to_string(&schedule).unwrap();
    assert!(
        saved.contains("# Cape Live Events: our reminders."),
        "{saved}"
    );
    client.close().await.unwrap();
    driver.session = None;
    drop(driver);
}

/// The two pages a browser finds without a link from an email: `/` and the webhook address. Each
/// fits a phone and a desktop without sideways scrolling. Screenshots `door-*.png`.
#[tokio::test]
async fn the_front_page_and_the_webhook_address_read_well_on_a_phone_and_a_desktop() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let app = TestApp::spawn_with(organiser).await;
    common::post_ok(&app.client, &app.hook_url(), common::SAMPLE_STARTED).await;

    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    driver.session = client.session_id().await.unwrap();

    for (name, url, heading) in [
        ("door-home", format!("{}/", app.base), "Quicket follow-up"),
        (
            "door-webhook-address",
            app.hook_url(),
            "Your Quicket webhook address",
        ),
    ] {
        client.goto(&url).await.unwrap();
        let h1 = wait_for(&client, Locator::Css("main h1"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(h1, heading, "{url}");
        for width in [390, 1280] {
            screenshot(&client, width, &shots.join(format!("{name}-{width}.png"))).await;
            let fits = client
                .execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(fits, Value::Bool(true), "{name} is wider than {width} px");
        }
    }
    let text = body_text(&client).await;
    assert!(text.contains("Last message from Quicket"), "{text}");
    assert!(text.contains(&app.hook_url()), "{text}");
}

/// `serve` of the binary started in an empty directory with every key at its default but the port
/// (8080 may be taken here): its base URL, the setup link it printed (pointed at the port bound;
/// the printed one uses the default `public_url`), and the child.
fn serve_from_defaults(work: &Path) -> (Child, String, String) {
    use std::io::{BufRead, BufReader};
    let config = work.join("quicket-followup.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let mut child = Command::new(common::binary())
        .current_dir(work)
        .env_remove("QUICKET_FOLLOWUP_CONFIG")
        .env_remove("QUICKET_FOLLOWUP_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut link) = (None, None);
    while base.is_none() || link.is_none() {
        let line = lines
            .next()
            .expect("serve exited before printing its addresses")
            .unwrap();
        if let Some(rest) = line.strip_prefix("Listening on ") {
            base = Some(rest.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("Finish setting up: ") {
            link = Some(rest.trim().to_string());
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let (base, link) = (base.unwrap(), link.unwrap());
    let path = &link[link.find("/setup/").expect("a setup link")..];
    let link = format!("{base}{path}");
    (child, base, link)
}

/// Both widths of the page in view, each fitting without sideways scrolling.
async fn screenshots(client: &Client, shots: &Path, name: &str) {
    for width in [390, 1280] {
        screenshot(client, width, &shots.join(format!("{name}-{width}.png"))).await;
        let fits = client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, Value::Bool(true), "{name} is wider than {width} px");
    }
    client.set_window_size(1280, 1000).await.unwrap();
}

/// The organiser's first minutes, from the binary's defaults: `/admin` says how to finish setup,
/// the printed link sets the password, the browser signs in on a page (a session cookie that
/// scripts cannot read and that holds no password), signs out, is refused a wrong password, and
/// signs in again. The password is in no file. Screenshots `first-*-{390,1280}.png`.
#[tokio::test]
async fn from_the_defaults_an_organiser_sets_a_password_signs_out_and_signs_in_again() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    const CHOSEN: &str = "Muizenberg-surf-at-six";
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let work = tempfile::tempdir().unwrap();
    let (mut child, base, link) = serve_from_defaults(work.path());

    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    driver.session = client.session_id().await.unwrap();
    let heading = |client: &Client| {
        let client = client.clone();
        async move {
            wait_for(&client, Locator::Css("main h1"))
                .await
                .text()
                .await
                .unwrap()
        }
    };

    // Before setup: /admin says in words how to finish it.
    client.goto(&format!("{base}/admin")).await.unwrap();
    assert_eq!(heading(&client).await, "Not set up yet");
    let text = body_text(&client).await;
    assert!(text.contains("setup-link"), "{text}");
    screenshots(&client, &shots, "first-not-set-up").await;

    // The printed link: choose the password.
    client.goto(&link).await.unwrap();
    assert_eq!(heading(&client).await, "Finish setting up");
    screenshots(&client, &shots, "first-setup").await;
    for field in ["password", "confirm"] {
        client
            .find(Locator::Css(&format!("input[name={field}]")))
            .await
            .unwrap()
            .send_keys(CHOSEN)
            .await
            .unwrap();
    }
    client
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &client,
        Locator::XPath("//h1[normalize-space()='Your password is set']"),
    )
    .await;
    client
        .find(Locator::LinkText("Sign in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // /admin sends the browser to the sign-in page.
    let password = wait_for(&client, Locator::Css("input[name=password]")).await;
    assert_eq!(heading(&client).await, "Sign in");
    assert_eq!(client.current_url().await.unwrap().path(), "/admin/sign-in");
    screenshots(&client, &shots, "first-sign-in").await;
    password.send_keys(CHOSEN).await.unwrap();
    client
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&client, Locator::Css("header nav")).await;
    assert_eq!(client.current_url().await.unwrap().path(), "/admin");
    // The session cookie: out of scripts' reach, strict, and no password in it.
    let cookies = client.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name() == "qf_session")
        .expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    assert!(
        !session.value().contains("Muizenberg"),
        "{}",
        session.value()
    );
    let seen = client
        .execute("return document.cookie;", vec![])
        .await
        .unwrap();
    assert_eq!(seen, Value::String(String::new()), "scripts see no cookie");
    screenshots(&client, &shots, "first-overview").await;
    // The overview links the setup checklist until every item is done.
    client
        .find(Locator::Css("main a[href='/admin/setup']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(heading(&client).await, "Setup");
    let text = body_text(&client).await;
    assert!(text.contains("No message from Quicket yet"), "{text}");
    screenshots(&client, &shots, "first-checklist").await;

    // Sign out: back to the sign-in page, and /admin asks again.
    client
        .find(Locator::Css("header form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &client,
        Locator::XPath("//p[normalize-space()='You are signed out.']"),
    )
    .await;
    screenshots(&client, &shots, "first-signed-out").await;
    client.goto(&format!("{base}/admin/orders")).await.unwrap();
    assert_eq!(heading(&client).await, "Sign in");

    // A wrong password: said so, and the form again.
    let password = wait_for(&client, Locator::Css("input[name=password]")).await;
    password.send_keys("Muizenberg-surf-at-five").await.unwrap();
    client
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = wait_for(&client, Locator::Css("p.error")).await;
    assert!(
        error.text().await.unwrap().contains("not the password"),
        "{}",
        body_text(&client).await
    );
    screenshots(&client, &shots, "first-wrong-password").await;

    // The right one: on to the page asked for.
    let password = wait_for(&client, Locator::Css("input[name=password]")).await;
    password.send_keys(CHOSEN).await.unwrap();
    client
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&client, Locator::Css("header nav")).await;
    assert_eq!(client.current_url().await.unwrap().path(), "/admin/orders");

    client.close().await.unwrap();
    driver.session = None;
    drop(driver);
    common::signal(&child, "TERM");
    child.wait().unwrap();
    // The password is in no file in clear (the database, its WAL, anything beside it).
    let mut files = vec![work.path().to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(CHOSEN.len()).any(|w| w == CHOSEN.as_bytes()),
                "{} holds the password in clear",
                path.display()
            );
        }
    }
    assert!(work.path().join("data/followup.sqlite").is_file());
}

/// The weekly report's HTML, from a database with a known week, as an email client shows it: its
/// figures readable, its chart decoded, no buyer named. Screenshots
/// `target/screenshots/weekly-report*.png` at desktop and phone width.
#[tokio::test]
async fn the_weekly_report_reads_well_in_a_browser_with_its_chart() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    use base64::Engine as _;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let app = TestApp::spawn().await;
    common::week::seed(app.store()).await;
    let config = app.service.engine.settings().config.clone();
    let end: chrono::DateTime<Utc> = common::week::WEEK_END.parse().unwrap();
    let report = quicket_followup::notify::report::Report::gather(app.store(), &config, end)
        .await
        .unwrap();
    // The email refers to its chart as cid:chart; a browser gets the same PNG inline.
    let png = quicket_followup::notify::chart::png(&report.figures.daily).unwrap();
    let src = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    );
    let page = app.dir.path().join("weekly-report.html");
    std::fs::write(&page, report.html(&src)).unwrap();

    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    client
        .goto(&format!("file://{}", page.display()))
        .await
        .unwrap();
    let text = body_text(&client).await;
    assert!(text.contains("Your week with quicket-followup"), "{text}");
    assert!(
        text.contains("Reminders sent\n6") || text.contains("Reminders sent 6"),
        "{text}"
    );
    assert!(text.contains("too early to tell"), "{text}");
    assert!(text.contains("Emails cannot be sent: from"), "{text}");
    assert!(!text.contains("mail.co.za") && !text.contains(common::week::NAME));
    let width = client
        .execute(
            "const i = document.querySelector('img'); return i.complete ? i.naturalWidth : 0;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(width.as_u64(), Some(560), "the chart was not decoded");
    screenshot(&client, 1280, &shots.join("weekly-report.png")).await;
    screenshot(&client, 390, &shots.join("weekly-report-phone.png")).await;
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow,
        Value::Bool(false),
        "the report is wider than a phone"
    );
    client.close().await.unwrap();
    driver.session = None;
    drop(driver);
    app.service.stop().await;
}

/// What sticks out at the window's width: the page wider than the window, or a box that hides
/// part of its content behind a sideways scroll (code text areas aside). Empty: it all fits.
async fn sticking_out(client: &Client) -> String {
    let found = client
        .execute(
            "const out = [];\
             if (document.documentElement.scrollWidth > window.innerWidth) out.push('the page: ' + document.documentElement.scrollWidth);\
             for (const e of document.querySelectorAll('main *')) {\
               if (e.tagName === 'TEXTAREA' || e.closest('pre')) continue;\
               const r = e.getBoundingClientRect();\
               if (r.width > 0 && r.right > window.innerWidth + 1) out.push(e.tagName + '.' + e.className + ' ' + (e.name || e.id || '') + ' ends at ' + Math.round(r.right));\
               const s = getComputedStyle(e).overflowX;\
               if ((s === 'auto' || s === 'scroll' || s === 'hidden') && e.scrollWidth > e.clientWidth + 1) out.push(e.tagName + '.' + e.className + ' ' + (e.id || '') + ' hides ' + (e.scrollWidth - e.clientWidth) + ' px');\
             }\
             return out.slice(0, 10).join('; ');",
            vec![],
        )
        .await
        .unwrap();
    found.as_str().unwrap_or_default().to_string()
}

/// Taking an address off the suppression list in the browser: Remove asks first, with a reason;
/// for a buyer who unsubscribed through the link, only their own request (ticked) allows it; the
/// reason is kept in the list of removals. Screenshots `admin-suppressions*.png` at 390 and 1280.
#[tokio::test]
async fn an_address_comes_off_the_suppression_list_only_after_a_confirmation_with_a_reason() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let app = TestApp::spawn_with(organiser).await;
    // Aisha unsubscribes through the link in her email.
    a_day_of_checkouts(&app).await;
    assert!(app.store().is_suppressed(AISHA.email).await.unwrap());
    let addr = app.service.addr;
    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    driver.session = client.session_id().await.unwrap();
    sign_in(&client, addr).await;
    wait_for(&client, Locator::Css("main h1")).await;
    client
        .goto(&format!("http://{addr}/admin/suppressions"))
        .await
        .unwrap();
    wait_for(&client, Locator::Id("suppressed")).await;
    for width in [390, 1280] {
        screenshot(
            &client,
            width,
            &shots.join(format!("admin-suppressions-{width}.png")),
        )
        .await;
        let out = sticking_out(&client).await;
        assert!(out.is_empty(), "at {width} px: {out}");
    }
    client.set_window_size(1280, 1000).await.unwrap();
    // One click asks; nothing is changed yet.
    client
        .find(Locator::Css("#suppressed button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let confirm = wait_for(&client, Locator::Id("confirm-removal")).await;
    let text = confirm.text().await.unwrap();
    assert!(
        text.contains(AISHA.email) && text.contains("unsubscribed through the link"),
        "{text}"
    );
    assert!(app.store().is_suppressed(AISHA.email).await.unwrap());
    // A reason, but the buyer's own request not ticked: refused, the box marked.
    client
        .find(Locator::Id("reason"))
        .await
        .unwrap()
        .send_keys("she might like the next show")
        .await
        .unwrap();
    client
        .find(Locator::Id("confirm-remove"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = wait_for(&client, Locator::Id("asked-error")).await;
    assert!(
        error
            .text()
            .await
            .unwrap()
            .contains("Only their own request"),
        "the refusal is beside the box"
    );
    let invalid = client
        .find(Locator::Id("asked"))
        .await
        .unwrap()
        .attr("aria-invalid")
        .await
        .unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    for width in [390, 1280] {
        screenshot(
            &client,
            width,
            &shots.join(format!("admin-suppressions-confirm-{width}.png")),
        )
        .await;
        let out = sticking_out(&client).await;
        assert!(out.is_empty(), "at {width} px: {out}");
    }
    client.set_window_size(1280, 1000).await.unwrap();
    assert!(app.store().is_suppressed(AISHA.email).await.unwrap());
    // Ticked, with the reason: taken off, and the reason is kept.
    client
        .find(Locator::Id("asked"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Id("confirm-remove"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&client, Locator::Css(".notice")).await;
    assert!(!app.store().is_suppressed(AISHA.email).await.unwrap());
    let removals = client
        .find(Locator::Id("removals"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        removals.contains(AISHA.email) && removals.contains("she might like the next show"),
        "{removals}"
    );
    client.close().await.unwrap();
    driver.session = None;
    drop(driver);
}

/// What breaks a page on a screen `width` px wide: any element reaching past the viewport, any
/// box hiding content sideways (scrolled or clipped; text areas for code and a field's own text
/// aside), and the page
/// itself scrolling sideways. Empty when it fits.
async fn what_does_not_fit(client: &Client) -> Vec<String> {
    let found = client
        .execute(
            r#"
            const vw = document.documentElement.clientWidth;
            const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '')
                + ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
            const bad = [];
            for (const el of document.querySelectorAll('body *')) {
                if (el.closest('textarea')) continue;
                const r = el.getBoundingClientRect();
                if (r.width === 0 && r.height === 0) continue;
                if (r.right > vw + 0.5 || r.left < -0.5) {
                    bad.push(name(el) + ' spans ' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + vw);
                }
                const s = getComputedStyle(el);
                if (!['TEXTAREA', 'INPUT'].includes(el.tagName) && ['auto', 'scroll', 'hidden', 'clip'].includes(s.overflowX)
                    && el.scrollWidth > el.clientWidth + 1) {
                    bad.push(name(el) + ' hides ' + (el.scrollWidth - el.clientWidth) + ' px sideways');
                }
            }
            if (document.documentElement.scrollWidth > vw) bad.push('the page scrolls sideways');
            return bad.slice(0, 15);
            "#,
            vec![],
        )
        .await
        .unwrap();
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The overview, Orders, a timeline, Problems and History at 390 px (a phone) and 1280 px: no
/// element wider than the screen, nothing hidden in a sideways-scrolling box, every figure of a
/// table still there on the phone (as a card). Screenshots `fit-*.png`.
#[tokio::test]
async fn every_organiser_page_fits_a_phone_and_a_desktop() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let app = TestApp::spawn_with(organiser).await;
    a_day_of_checkouts(&app).await;
    let addr = app.service.addr;
    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    driver.session = client.session_id().await.unwrap();
    sign_in(&client, addr).await;
    let timeline = format!(
        "/admin/buyer?email={}&event={}",
        THANDI.email, THANDI.event.id
    );
    let pages = [
        ("overview", "/admin".to_string()),
        ("orders", "/admin/orders".into()),
        ("timeline", timeline),
        ("problems", "/admin/problems".into()),
        ("history", "/admin/history".into()),
        ("emails", "/admin/emails".into()),
        ("suppressions", "/admin/suppressions".into()),
        ("timing", "/admin/timing".into()),
    ];
    let mut failures = Vec::new();
    for (name, path) in &pages {
        for width in [390u32, 1280] {
            client.set_window_size(width, 1000).await.unwrap();
            client.goto(&format!("http://{addr}{path}")).await.unwrap();
            wait_for(&client, Locator::Css("main h1")).await;
            for problem in what_does_not_fit(&client).await {
                failures.push(format!("{name} at {width} px: {problem}"));
            }
            let suffix = if width == 390 { "-phone" } else { "" };
            screenshot(
                &client,
                width,
                &shots.join(format!("fit-{name}{suffix}.png")),
            )
            .await;
        }
    }
    // On the phone Orders is a card per buyer that keeps every figure: amount, state, decision.
    client.set_window_size(390, 1000).await.unwrap();
    client
        .goto(&format!("http://{addr}/admin/orders"))
        .await
        .unwrap();
    let card = client
        .find(Locator::XPath(&format!(
            "//tr[td//a[normalize-space()='{}']]",
            JOHAN.name
        )))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for figure in [JOHAN.event.name, "R600.00", "Awaiting EFT", "Emailed"] {
        assert!(card.contains(figure), "{figure:?} not on the card:\n{card}");
    }
    // Each figure is named beside it (the table's headings are hidden on a phone).
    let labels = client
        .execute(
            "return [...document.querySelectorAll('table.stack tr:nth-child(2) td[data-label]')]\
             .map(td => getComputedStyle(td, '::before').content);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        labels,
        json!([
            "\"Event\"",
            "\"Amount\"",
            "\"State\"",
            "\"Last change\"",
            "\"Latest decision\""
        ])
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    client.close().await.unwrap();
    driver.session = None;
    drop(driver);
}

/// The addresses in the `td.address` cells of the table `css`.
async fn addresses_in(client: &Client, css: &str) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    for cell in client
        .find_all(Locator::Css(&format!("{css} td.address")))
        .await
        .unwrap()
    {
        found.insert(cell.text().await.unwrap().trim().to_string());
    }
    found
}

/// Clicks Save… and waits for the confirmation; returns what it says will happen.
async fn save_asks_first(client: &Client) -> String {
    client
        .find(Locator::Id("save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(client, Locator::Id("confirm-save"))
        .await
        .text()
        .await
        .unwrap()
}

/// Confirms the save shown and waits for the notice.
async fn confirm_save(client: &Client) -> String {
    client
        .find(Locator::Id("confirm-save-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(client, Locator::Id("notice"))
        .await
        .text()
        .await
        .unwrap()
}

/// A schedule change says what it will do before it goes live: a step added in the browser, and
/// Save names the buyers the dry run named, within the hour, and asks to confirm; with "only
/// checkouts from now on" none of them is emailed at the next pass (a new checkout is). A step
/// paused sends to nobody; resumed, it goes on. Screenshots `admin-schedule-confirm-*.png` at
/// 390 and 1280 wide, where nothing sticks out.
#[tokio::test]
async fn a_schedule_change_names_whom_it_will_email_and_can_leave_waiting_buyers_alone() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("quicket-followup.toml");
    let schedule = dir.path().join("schedule.toml");
    std::fs::write(
        &main,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nwebhook_token = \"{}\"\nadmin_password = \"{PASSWORD}\"\n\
             [database]\npath = {:?}\n[email]\noutbox_dir = {:?}\n[templates]\ndir = {:?}\n\
             [schedule]\nfile = \"schedule.toml\"\n",
            common::TOKEN,
            dir.path().join("data/followup.sqlite"),
            dir.path().join("data/outbox"),
            common::templates_dir(),
        ),
    )
    .unwrap();
    // Any hour: what "within the next hour" names does not depend on when the test runs.
    std::fs::write(
        &schedule,
        "[schedule]\nsend_window = \"\"\ndormant_after = \"0s\"\n\n\
         [[reminders]]\nname = \"abandoned-1\"\nafter = \"2d\"\nwhen = [\"checkout_started\", \"checkout_cancelled\"]\n\
         template = \"abandoned\"\n",
    )
    .unwrap();
    let config = Config::load(Some(&main)).unwrap();
    let service = quicket_followup::server::Service::start_from(config, Some(main.clone()), false)
        .await
        .unwrap();
    let addr: SocketAddr = service.addr;
    let app = TestApp {
        base: format!("http://{addr}"),
        dir,
        service,
        client: reqwest::Client::builder()
            .user_agent(common::BROWSER)
            .build()
            .unwrap(),
    };
    let waiting = [&THANDI, &PIETER, &SIPHO];
    for sale in waiting {
        post(&app, sale, "checkout_started").await;
    }
    let waiting_emails: std::collections::BTreeSet<String> =
        waiting.iter().map(|s| s.email.to_string()).collect();

    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    driver.session = client.session_id().await.unwrap();
    sign_in(&client, addr).await;
    client
        .goto(&format!("http://{addr}/admin/schedule"))
        .await
        .unwrap();
    wait_for(&client, Locator::Id("forecast-days")).await;
    wait_for_text(
        &client,
        "#consequence",
        "Saving will email no buyer within the next hour",
    )
    .await;

    // A step at once after the checkout. Its email is at first the first step's: a warning.
    client
        .find(Locator::Css("button[value=add_step]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let name = wait_for(&client, Locator::Css("input[name='s1.name']")).await;
    name.clear().await.unwrap();
    name.send_keys("right-away").await.unwrap();
    let wait = client
        .find(Locator::Css("input[name='s1.wait.n']"))
        .await
        .unwrap();
    wait.clear().await.unwrap();
    wait.send_keys("0").await.unwrap();
    wait_for_text(
        &client,
        "#schedule-warnings",
        "abandoned-1 and right-away both send abandoned",
    )
    .await;
    client
        .find(Locator::Css("select[name='s1.template']"))
        .await
        .unwrap()
        .select_by_value("last_chance")
        .await
        .unwrap();
    wait_for_text(
        &client,
        "#consequence",
        "Saving will email 3 buyers within the next hour",
    )
    .await;
    // Another email: the warning goes (the script asks again as the form changes).
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.find(Locator::Id("schedule-warnings")).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the warning stayed with another email"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dry_run = addresses_in(&client, "#soon").await;
    assert_eq!(dry_run, waiting_emails);

    // Save: first the confirmation, naming the buyers the dry run named; nothing saved yet.
    let said = save_asks_first(&client).await;
    assert!(
        said.contains("Saving will email 3 buyers within the next hour"),
        "{said}"
    );
    assert_eq!(addresses_in(&client, "#confirm-buyers").await, dry_run);
    assert_eq!(
        app.service.engine.settings().config.step_names(),
        ["abandoned-1"]
    );
    for width in [390, 1280] {
        screenshot(
            &client,
            width,
            &shots.join(format!("admin-schedule-confirm-{width}.png")),
        )
        .await;
        let out = sticking_out(&client).await;
        assert!(out.is_empty(), "at {width} px: {out}");
    }
    client.set_window_size(1280, 1000).await.unwrap();

    // Only checkouts from now on: the confirmation now names nobody; confirmed, it is in force.
    client
        .find(Locator::Css("select[name='s1.applies']"))
        .await
        .unwrap()
        .select_by_value("now")
        .await
        .unwrap();
    let said = save_asks_first(&client).await;
    assert!(
        said.contains("Saving will email no buyer within the next hour"),
        "{said}"
    );
    let notice = confirm_save(&client).await;
    assert!(notice.starts_with("Saved"), "{notice}");
    let config = app.service.engine.settings().config.clone();
    assert_eq!(config.step_names(), ["abandoned-1", "right-away"]);
    assert!(config.reminders[1].from.is_some());
    let saved = std::fs::read_to_string(&schedule).unwrap();
    assert!(saved.contains("from = \""), "{saved}");

    // The next pass (at a fixed time) emails none of the buyers already waiting; a checkout
    // that starts after the save gets the new step.
    post(&app, &KAGISO, "checkout_started").await;
    let engine = &app.service.engine;
    let soon = Utc::now() + chrono::TimeDelta::minutes(5);
    let report = engine.run_pass(soon, false).await.unwrap();
    assert_eq!(report.counts.sent, 1, "only the new checkout");
    let outbox = app.dir.path().join("data/outbox");
    let to: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .map(|eml| {
            eml.lines()
                .find(|l| l.starts_with("To: "))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(to.len(), 1, "{to:?}");
    assert!(to[0].contains(KAGISO.email), "{to:?}");

    // Pause the first step: the pass after its delay sends nothing.
    client
        .goto(&format!("http://{addr}/admin/schedule"))
        .await
        .unwrap();
    client
        .find(Locator::Id("s0-paused"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    save_asks_first(&client).await;
    let notice = confirm_save(&client).await;
    assert!(notice.starts_with("Saved"), "{notice}");
    assert!(engine.settings().config.reminders[0].paused);
    let later = Utc::now() + chrono::TimeDelta::days(3);
    let report = engine.run_pass(later, false).await.unwrap();
    assert_eq!(report.counts.sent, 0, "a paused step sends nothing");
    let text = std::fs::read_to_string(&schedule).unwrap();
    assert!(text.contains("paused = true"), "{text}");
    let plan = client
        .find(Locator::Id("plan"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(plan.contains("PAUSED"), "{plan}");

    // Resume: the next pass sends it to the four buyers who waited.
    client
        .find(Locator::Id("s0-paused"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    save_asks_first(&client).await;
    let notice = confirm_save(&client).await;
    assert!(notice.starts_with("Saved"), "{notice}");
    assert!(!engine.settings().config.reminders[0].paused);
    let report = engine
        .run_pass(later + chrono::TimeDelta::minutes(1), false)
        .await
        .unwrap();
    assert_eq!(report.counts.sent, 4, "resumed: each buyer who waited");
    let history = app.store().history(10).await.unwrap();
    let summaries: Vec<&str> = history.iter().map(|c| c.summary.as_str()).collect();
    assert!(
        summaries.contains(&"schedule: step abandoned-1 paused")
            && summaries.contains(&"schedule: step abandoned-1 resumed"),
        "{summaries:?}"
    );
    client.close().await.unwrap();
    driver.session = None;
    drop(driver);
}

/// The first step as a timing experiment (an hour against a day).
fn timing_organiser(c: &mut Config) {
    organiser(c);
    let first = &mut c.reminders[0];
    first.after = Some(Duration::from_secs(3600));
    first.arms = vec![Duration::from_secs(3600), Duration::from_secs(86_400)];
}

/// `/admin/timing` with a running experiment (120 buyers, the day's arm buying more) reads and fits
/// at 390 and 1280 px. Screenshots `timing-*.png`.
#[tokio::test]
async fn the_timing_experiments_page_reads_on_a_phone_and_a_desktop() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let app = TestApp::spawn_with(timing_organiser).await;
    let t0 = Utc::now();
    let buyer = |i: usize| {
        common::hook(&format!("T{i}"), "checkout_started")
            .email(&format!("buyer{i}@capelive.co.za"))
            .amount("250.00")
    };
    for i in 0..120 {
        let (status, _) = app.post_hook(buyer(i)).await;
        assert_eq!(status, 200);
    }
    app.service
        .engine
        .run_pass(t0 + chrono::TimeDelta::minutes(61), false)
        .await
        .unwrap();
    for i in (0..120).step_by(3) {
        let (status, _) = app
            .post_hook(
                common::hook(&format!("T{i}"), "checkout_completed")
                    .email(&format!("buyer{i}@capelive.co.za"))
                    .amount("250.00"),
            )
            .await;
        assert_eq!(status, 200);
    }
    let addr = app.service.addr;
    let profile = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(&chromedriver).await;
    let client = browser(&driver, profile.path()).await;
    driver.session = client.session_id().await.unwrap();
    sign_in(&client, addr).await;
    let mut failures = Vec::new();
    for width in [390u32, 1280] {
        client.set_window_size(width, 1000).await.unwrap();
        client
            .goto(&format!("http://{addr}/admin/timing"))
            .await
            .unwrap();
        wait_for(&client, Locator::Css("main h1")).await;
        let text = body_text(&client).await;
        for words in ["1h after", "1d after", "buyers", "1h against 1d"] {
            assert!(text.contains(words), "{words:?} not on the page:\n{text}");
        }
        for problem in what_does_not_fit(&client).await {
            failures.push(format!("timing at {width} px: {problem}"));
        }
        let suffix = if width == 390 { "-phone" } else { "" };
        screenshot(&client, width, &shots.join(format!("timing{suffix}.png"))).await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    client.close().await.unwrap();
    driver.session = None;
    drop(driver);
}
