//! Shared test helpers: a real service on a free port with its SQLite file in a temp dir, a way to
//! run the real binary as a child process, the hook the tests post ([`hooks`]) and a real SMTP
//! server ([`smtp`]).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use quicket_followup::config::{Config, ReminderStep, SendWindow, Transport};
use quicket_followup::domain::OrderState;
use quicket_followup::reminders::PassReport;
use quicket_followup::server::Service;
use quicket_followup::store::Store;
use serde_json::Value;

pub mod hooks;
pub mod smtp;
pub mod week;

#[allow(unused_imports)]
pub use hooks::{Hook, hook};

/// The token tests configure.
pub const TOKEN: &str = "test-token-0123456789abcdef";

/// Quicket's sample hooks (kept in tests/samples), compiled in.
pub const SAMPLE_STARTED: &str = include_str!("../samples/checkout_started.json");
pub const SAMPLE_COMPLETED: &str = include_str!("../samples/checkout_completed.json");
pub const SAMPLE_EFT_STRINGS: &str = include_str!("../samples/eft_pending_strings.json");

/// A config that keeps everything inside `dir` and listens on a free port.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.webhook_token = TOKEN.into();
    config.database.path = dir.join("data/followup.sqlite");
    config.email.outbox_dir = dir.join("data/outbox");
    config.templates.dir = Some(templates_dir());
    // Tests follow links the moment an email is sent, which only link scanners do in real life.
    config.experiment.scanner_after_delivery = std::time::Duration::ZERO;
    config.experiment.scanner_links_within = std::time::Duration::ZERO;
    config
}

/// What a person's browser says it is (a client without one is taken for a link scanner).
pub const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// A browser that does not follow redirects, to see where a link leads.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(BROWSER)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The subject of each email in `app`'s outbox, oldest first.
pub fn outbox_subjects(app: &TestApp) -> Vec<String> {
    let outbox = app.dir.path().join("data/outbox");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).unwrap());
    files
        .iter()
        .filter_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect()
}

/// A copy of the shipped templates in a temp dir, for a test that edits them.
pub fn copy_of_shipped_templates() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&templates_dir(), dir.path());
    dir
}

/// The shipped templates.
pub fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/emails")
}

/// A service running in this process.
pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub service: Service,
    pub client: reqwest::Client,
    pub base: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        adjust(&mut config);
        // Passes run only when a test asks: time is driven, never waited for.
        let service = Service::start_with(config, false).await.unwrap();
        let base = format!("http://{}", service.addr);
        TestApp {
            dir,
            service,
            client: reqwest::Client::builder()
                .user_agent(BROWSER)
                .build()
                .unwrap(),
            base,
        }
    }

    pub fn store(&self) -> &Store {
        &self.service.store
    }

    pub fn hook_url(&self) -> String {
        format!("{}/webhooks/quicket/{TOKEN}", self.base)
    }

    /// A config file for CLI commands against this app's database; returns its path.
    pub fn cli_config(&self) -> PathBuf {
        let path = self.dir.path().join("cli.toml");
        let db = self.service.store.path().to_path_buf();
        std::fs::write(
            &path,
            format!(
                "[database]\npath = {db:?}\n[templates]\ndir = {:?}\n",
                templates_dir()
            ),
        )
        .unwrap();
        path
    }

    /// Claims `step` for `email` at event 456 about `reference`, as a pass does before sending:
    /// what a pass killed between claiming and sending leaves behind.
    pub async fn claim_without_sending(
        &self,
        email: &str,
        step: &str,
        reference: &str,
        message_id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let claim = quicket_followup::store::reminders::Claim {
            email_key: email.into(),
            event_id: "456".into(),
            step: step.into(),
            skip: vec![],
            reference: reference.into(),
            email: email.into(),
            message_id: message_id.into(),
            now: at,
            min_gap: chrono::Duration::hours(12),
            template: String::new(),
            share: Default::default(),
        };
        let claimed = self.service.store.claim(claim).await.unwrap();
        assert!(claimed.is_ok(), "the claim was refused: {claimed:?}");
    }

    /// Posts a body to the webhook with the right token; returns the status and the JSON answer.
    pub async fn post_hook(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        post(&self.client, &self.hook_url(), body).await
    }

    /// Posts a hook that must be answered 200 (recorded, duplicate or ignored).
    pub async fn post_ok(&self, body: impl Into<reqwest::Body>) {
        post_ok(&self.client, &self.hook_url(), body).await;
    }

    /// Runs one reminder pass at `at`, sending for real.
    pub async fn pass_at(&self, at: chrono::DateTime<chrono::Utc>) -> PassReport {
        self.service.engine.run_pass(at, false).await.unwrap()
    }

    /// GET `path` (e.g. `/healthz`).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// GET `path` (e.g. `/healthz`); returns the body.
    pub async fn get_text(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    /// GET `path` under `/admin` signed in as "admin" with `password`.
    pub async fn admin_get(&self, path: &str, password: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .basic_auth("admin", Some(password))
            .send()
            .await
            .unwrap()
    }

    /// GET `path` and read the answer as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        get_json(&self.client, &format!("{}{path}", self.base)).await
    }

    /// Runs a command of the binary against this app's database (see [`TestApp::cli_config`]);
    /// returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let config = self.cli_config();
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        run_cli(&all, &[])
    }
}

/// GET `url` and read the answer as JSON.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.unwrap();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url} is not JSON ({e}): {text}"))
}

/// The webhook URL of a service listening on `addr`, with the test token.
pub fn hook_url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}/webhooks/quicket/{TOKEN}")
}

/// Posts a hook that must be answered 200 (recorded, duplicate or ignored), showing the answer
/// when it is not.
pub async fn post_ok(client: &reqwest::Client, url: &str, body: impl Into<reqwest::Body>) {
    let (status, answer) = post(client, url, body).await;
    assert_eq!(status, 200, "{answer}");
}

/// Sends through `smtp` (a real SMTP server) as "Jazz on the Lawn <tickets@shop.co.za>".
pub fn via_smtp(c: &mut Config, smtp: &smtp::SmtpServer) {
    c.email.transport = Transport::Smtp;
    c.email.smtp_url = smtp.url();
    c.email.from = "Jazz on the Lawn <tickets@shop.co.za>".into();
}

/// Only the first default step, due as soon as a checkout arrives, at any hour: a pass at the
/// wall clock's now sends it.
pub fn send_at_once(c: &mut Config) {
    c.schedule.send_window = SendWindow::parse("").unwrap();
    c.schedule.dormant_after = std::time::Duration::ZERO;
    c.reminders.truncate(1);
    c.reminders[0].after = Some(std::time::Duration::ZERO);
}

/// `at`, or when the default send window ("za-cpa": weekdays 08:00-20:00, Saturday mornings, no
/// public holidays) next opens after it: a pass there sends whatever the hour the tests run at.
pub fn in_default_window(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    let schedule = Config::default().schedule;
    match schedule.send_rule().closed_at(at, schedule.timezone) {
        Some(closed) => closed
            .opens
            .expect("the default window opens within a year"),
        None => at,
    }
}

/// A reminder step sent `after_minutes` after the checkout's latest change, in the schedule's
/// window.
pub fn step(name: &str, after_minutes: u64, when: &[OrderState], template: &str) -> ReminderStep {
    ReminderStep {
        name: name.into(),
        after: Some(std::time::Duration::from_secs(after_minutes * 60)),
        before_event: None,
        when: when.to_vec(),
        template: template.into(),
        variants: Vec::new(),
        arms: Vec::new(),
        even_if_sold_out: false,
        send_window: SendWindow::Unset,
        paused: false,
        from: None,
        label: None,
    }
}

pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

/// The binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quicket-followup"))
}

/// Writes a config file for the binary into `dir` and returns its path.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("quicket-followup.toml");
    let db = dir.join("data/followup.sqlite");
    let outbox = dir.join("data/outbox");
    let templates = templates_dir();
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[database]\npath = {db:?}\n\n[email]\noutbox_dir = {outbox:?}\n\n[templates]\ndir = {templates:?}\n\n{extra}"
        ),
    )
    .unwrap();
    path
}

/// `serve` running as a child process.
pub struct Served {
    pub child: Child,
    pub base: String,
    pub webhook_url: String,
    /// The first-run link, printed while no admin password is in force.
    pub setup_link: Option<String>,
}

/// Starts `quicket-followup --config FILE serve` and waits for it to print its addresses.
pub fn serve(config: &Path, envs: &[(&str, &str)]) -> Served {
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(config)
        .arg("serve")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut base = None;
    let mut webhook_url = None;
    let mut setup_link = None;
    while base.is_none() || webhook_url.is_none() {
        let line = lines
            .next()
            .expect("serve exited before printing its URLs")
            .unwrap();
        if let Some(rest) = line.strip_prefix("Listening on ") {
            base = Some(rest.trim().to_string());
        } else if let Some(link) = line.strip_prefix("Finish setting up: ") {
            setup_link = Some(link.trim().to_string());
        } else if let Some((_, url)) = line.split_once("Webhooks): ") {
            webhook_url = Some(url.trim().to_string());
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let base = base.unwrap();
    // The printed webhook URL uses public_url; point it at the port actually bound.
    let path = webhook_url.unwrap();
    let path = &path[path.find("/webhooks/").unwrap()..];
    Served {
        webhook_url: format!("{base}{path}"),
        setup_link,
        child,
        base,
    }
}

/// Sends a signal to a child by name (`TERM`, `KILL`) with the system's `kill`.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs the binary with arguments and returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(binary())
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
