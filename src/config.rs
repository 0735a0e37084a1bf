//! The service's configuration: built-in defaults, then the TOML file, then secrets from the
//! environment; validated once at start so that a mistake is reported with the key that holds it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::domain::OrderState;
use crate::proxies::ProxyNet;
use crate::send_rules::{HolidayList, SendRule};

mod schedule_file;
pub use schedule_file::{SCHEDULE_FILE_KEY, SCHEDULE_FILE_SECTIONS, ScheduleText};

/// Fewest characters of `server.admin_password` (it guards every buyer's data).
pub const MIN_ADMIN_PASSWORD: usize = 12;
/// The send window as written (`[schedule] send_window`, or a step's own).
pub use crate::send_rules::SendWindow;

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "QUICKET_FOLLOWUP_CONFIG";
/// Config file read from the working directory when it exists and nothing else names one.
pub const DEFAULT_CONFIG_FILE: &str = "quicket-followup.toml";

/// Environment variables that may carry secrets instead of the file, and the key each one sets.
const SECRET_ENV: &[(&str, &str)] = &[
    ("QUICKET_FOLLOWUP_WEBHOOK_TOKEN", "server.webhook_token"),
    ("QUICKET_FOLLOWUP_ADMIN_PASSWORD", "server.admin_password"),
    ("QUICKET_FOLLOWUP_SMTP_URL", "email.smtp_url"),
    ("QUICKET_FOLLOWUP_QUICKET_API_KEY", "quicket.api_key"),
    (
        "QUICKET_FOLLOWUP_MAILGUN_SIGNING_KEY",
        "email.mailgun_signing_key",
    ),
];

/// The whole configuration (`quicket-followup.example.toml` shows every key). Every key is optional.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[database]`
    pub database: DatabaseConfig,
    /// `[email]`
    pub email: EmailConfig,
    /// `[schedule]`
    pub schedule: ScheduleConfig,
    /// `[[reminders]]`: the steps, in the order written.
    pub reminders: Vec<ReminderStep>,
    /// `[templates]`
    pub templates: TemplatesConfig,
    /// `[events."ID"]`: per-event overrides keyed by Quicket's event id.
    pub events: BTreeMap<String, EventConfig>,
    /// `[quicket]`: the optional lookup of events in Quicket's public API.
    pub quicket: QuicketConfig,
    /// `[experiment]`: the control group.
    pub experiment: ExperimentConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            email: EmailConfig::default(),
            schedule: ScheduleConfig::default(),
            reminders: default_reminders(),
            templates: TemplatesConfig::default(),
            events: BTreeMap::new(),
            quicket: QuicketConfig::default(),
            experiment: ExperimentConfig::default(),
        }
    }
}

/// `[server]`
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Base of every link put into emails and of the printed webhook URL; empty: the address
    /// the server listens on (see [`Config::public_url`]).
    pub public_url: String,
    /// Secret path part of the webhook URL; empty: generated once and kept in the database.
    pub webhook_token: String,
    /// Basic-auth password for `/admin`; empty turns `/admin` off.
    pub admin_password: String,
    /// `text` (readable lines) or `json`.
    pub log_format: LogFormat,
    /// Proxies whose `X-Forwarded-For` names the real client (CIDR blocks or addresses).
    pub trusted_proxies: Vec<ProxyNet>,
    /// A connection whose request headers have not all arrived within this is closed (also an
    /// idle keep-alive connection waiting this long for its next request).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request body must all arrive within this, counted from its headers; else 408.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// A connection on which nothing is read or written for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the kernel's backlog until one closes.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: String::new(),
            webhook_token: String::new(),
            admin_password: String::new(),
            log_format: LogFormat::Text,
            trusted_proxies: crate::proxies::loopback(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// The SQLite file; its directory is created when missing.
    pub path: PathBuf,
    /// Personal data of a buyer-event is removed this long after its event; zero keeps everything.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/followup.sqlite"),
            retention: days(90),
        }
    }
}

/// `[email]`
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// The From header, `Name <address>`.
    pub from: String,
    /// The Reply-To header; empty leaves it out.
    pub reply_to: String,
    /// Where emails go.
    pub transport: Transport,
    /// Directory of `.eml` files for the outbox transport.
    pub outbox_dir: PathBuf,
    /// SMTP server URL as lettre reads it.
    pub smtp_url: String,
    /// Upper bound on emails sent per minute.
    pub max_per_minute: u32,
    /// How long one SMTP exchange may take before it counts as a temporary failure.
    #[serde(with = "humantime_serde")]
    pub smtp_timeout: Duration,
    /// Event page pattern used when `[events."ID"].url` is unset; `{event_id}` is replaced.
    pub event_url: String,
    /// With `dkim_key`: sign every email with DKIM under `selector._domainkey.<From domain>`.
    pub dkim_selector: String,
    /// A PEM private key (RSA 2048+ or Ed25519) for DKIM signing; `dkim-keygen` makes one.
    pub dkim_key: PathBuf,
    /// Mailgun's HTTP webhook signing key, for `/webhooks/email-events/mailgun` (a secret).
    pub mailgun_signing_key: String,
    /// SendGrid's Event Webhook verification key (base64), for `/webhooks/email-events/sendgrid`.
    pub sendgrid_public_key: String,
    /// Tests only (never read from the file): trust `http://127.0.0.1` as SNS, to stand in for it.
    #[serde(skip)]
    pub sns_trust_localhost: bool,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            from: "Tickets <tickets@localhost>".into(),
            reply_to: String::new(),
            transport: Transport::Outbox,
            outbox_dir: PathBuf::from("data/outbox"),
            smtp_url: String::new(),
            max_per_minute: 120,
            smtp_timeout: Duration::from_secs(30),
            event_url: "https://www.quicket.co.za/events/{event_id}/".into(),
            dkim_selector: String::new(),
            dkim_key: PathBuf::new(),
            mailgun_signing_key: String::new(),
            sendgrid_public_key: String::new(),
            sns_trust_localhost: false,
        }
    }
}

/// Where emails go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Written as `.eml` files into `outbox_dir`.
    Outbox,
    /// Sent through `smtp_url`.
    Smtp,
}

/// `email.smtp_url` read as a URL (`url::Url`): what messages and `check`'s warnings need of it.
/// No `Debug`: it holds the password.
pub struct SmtpUrl(url::Url);

impl SmtpUrl {
    /// Reads the URL; `None` when the text is not one with a host (`user:secret@host` reads as
    /// the scheme `user`, the password in its path).
    pub fn parse(text: &str) -> Option<SmtpUrl> {
        let url = url::Url::parse(text.trim()).ok()?;
        url.has_host().then_some(SmtpUrl(url))
    }

    /// The server's host name or address (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        self.0
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
    }

    /// Whether the server is this machine: `localhost` or a loopback address.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether the URL carries a password.
    pub fn has_password(&self) -> bool {
        self.0.password().is_some()
    }

    /// Whether the connection is unencrypted: `smtp://` without `?tls=required`.
    pub fn is_plain(&self) -> bool {
        self.0.scheme() == "smtp"
            && !self
                .0
                .query_pairs()
                .any(|(key, value)| key == "tls" && value == "required")
    }

    /// The URL with its password replaced by `***`, for messages.
    pub fn redacted(&self) -> String {
        let mut url = self.0.clone();
        if url.password().is_some() {
            // Only a URL without a host refuses a password, and this one has one.
            let _ = url.set_password(Some("***"));
        }
        url.to_string()
    }
}

/// `text` (an SMTP URL) without its password, for messages; a text that is not a URL is not shown,
/// since it may hold the password anywhere.
pub fn redact_smtp_url(text: &str) -> String {
    SmtpUrl::parse(text).map_or_else(|| "not a URL".to_string(), |url| url.redacted())
}

/// `[schedule]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// The schedule file (only in the main configuration): `[schedule]`, `[[reminders]]` and
    /// `[events]` are read from it too. Relative: to the main file's directory. After loading,
    /// the resolved path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Cron expression with a seconds field: when reminder passes run.
    pub scan: String,
    /// The zone Quicket's offset-less `event_date` and the send window are read in.
    pub timezone: Tz,
    /// When reminders may go out, in local time: `"08:00-20:00"`, hours by day, `"za-cpa"`, or
    /// `""` for any hour. Unset: `"za-cpa"` in Africa/Johannesburg, else `"08:00-20:00"`.
    #[serde(skip_serializing_if = "SendWindow::is_unset")]
    pub send_window: SendWindow,
    /// Public holidays, which take Sunday's hours: `"ZA"` and/or dates (`"za-cpa"` implies "ZA").
    pub holidays: HolidayList,
    /// A checkout is dormant once it has been this long without a change.
    #[serde(with = "humantime_serde")]
    pub dormant_after: Duration,
    /// At most one email per buyer and event within this span.
    #[serde(with = "humantime_serde")]
    pub min_gap: Duration,
    /// Never remind about a checkout whose last change is older than this.
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
    /// No reminder this close to the event's start, nor after it.
    #[serde(with = "humantime_serde")]
    pub stop_before_event: Duration,
    /// A purchase completed this long after a reminder counts as recovered.
    #[serde(with = "humantime_serde")]
    pub attribution_window: Duration,
}

impl ScheduleConfig {
    /// The send window in force for steps without their own.
    pub fn send_rule(&self) -> SendRule {
        SendRule::new(
            &self.send_window,
            self.timezone,
            self.holidays.holidays(),
            "schedule.send_window",
        )
    }

    /// The send window in force for `step`: its own when it has one, else the schedule's.
    pub fn step_send_rule(&self, step: &ReminderStep) -> SendRule {
        if step.send_window.is_unset() {
            return self.send_rule();
        }
        SendRule::new(
            &step.send_window,
            self.timezone,
            self.holidays.holidays(),
            format!("reminders.{}.send_window", step.name),
        )
    }
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            file: None,
            scan: "0 * * * * *".into(),
            timezone: chrono_tz::Africa::Johannesburg,
            send_window: SendWindow::Unset,
            holidays: HolidayList::default(),
            dormant_after: minutes(30),
            min_gap: hours(12),
            give_up_after: days(14),
            stop_before_event: hours(2),
            attribution_window: days(7),
        }
    }
}

/// One `[[reminders]]` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderStep {
    /// Unique name; also part of the Message-ID, so renaming a step makes it a new step.
    pub name: String,
    /// Sent this long after the buyer's latest checkout change for the event.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub after: Option<Duration>,
    /// Sent once the event is this close.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub before_event: Option<Duration>,
    /// The checkout states this step applies to.
    pub when: Vec<OrderState>,
    /// Directory name under `[templates].dir` (or give `variants`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template: String,
    /// Instead of `template`: A/B variants, each buyer-event gets one, evenly, and keeps it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
    /// Send this step even when Quicket's API says the buyer's tickets are sold out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub even_if_sold_out: bool,
    /// The step's own send window (same forms as `[schedule]`); unset: the schedule's.
    #[serde(default, skip_serializing_if = "SendWindow::is_unset")]
    pub send_window: SendWindow,
}

/// When a step becomes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepTiming {
    /// This long after the latest checkout change.
    After(Duration),
    /// Once the event is this close.
    BeforeEvent(Duration),
}

impl ReminderStep {
    /// The templates the step may be rendered from: its variants, or its one template.
    pub fn templates(&self) -> Vec<&str> {
        if self.variants.is_empty() {
            vec![self.template.as_str()]
        } else {
            self.variants.iter().map(String::as_str).collect()
        }
    }

    /// The step's timing; validation guarantees exactly one of `after` and `before_event`.
    pub fn timing(&self) -> StepTiming {
        match (self.after, self.before_event) {
            (_, Some(before)) => StepTiming::BeforeEvent(before),
            (Some(after), None) => StepTiming::After(after),
            (None, None) => StepTiming::After(Duration::ZERO),
        }
    }
}

fn default_reminders() -> Vec<ReminderStep> {
    use OrderState::{Cancelled, EftPending, Started};
    vec![
        ReminderStep {
            name: "abandoned-1".into(),
            after: Some(hours(1)),
            before_event: None,
            when: vec![Started, Cancelled],
            template: "abandoned".into(),
            variants: Vec::new(),
            even_if_sold_out: false,
            send_window: SendWindow::Unset,
        },
        ReminderStep {
            name: "eft-1".into(),
            after: Some(hours(24)),
            before_event: None,
            when: vec![EftPending],
            template: "eft_pending".into(),
            variants: Vec::new(),
            even_if_sold_out: false,
            send_window: SendWindow::Unset,
        },
        ReminderStep {
            name: "last-chance".into(),
            after: None,
            before_event: Some(days(3)),
            when: vec![Started, Cancelled],
            template: "last_chance".into(),
            variants: Vec::new(),
            even_if_sold_out: false,
            send_window: SendWindow::Unset,
        },
    ]
}

/// `[templates]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesConfig {
    /// Directory holding one sub-directory per email template; unset: [`DEFAULT_TEMPLATES_DIR`]
    /// when it exists, else the templates built into the binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

/// The templates directory read when `templates.dir` is unset and it exists (relative to the
/// working directory; `init` writes it).
pub const DEFAULT_TEMPLATES_DIR: &str = "templates/emails";

/// Where the email templates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// The shipped templates, built into the binary.
    BuiltIn,
    /// A directory of the organiser's files.
    Dir(PathBuf),
}

impl std::fmt::Display for TemplateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateSource::BuiltIn => f.write_str("built-in"),
            TemplateSource::Dir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

impl TemplatesConfig {
    /// `dir` when set (an error naming it when it is not a directory), else
    /// [`DEFAULT_TEMPLATES_DIR`] when it exists, else the built-in templates.
    pub fn source(&self) -> Result<TemplateSource, ConfigError> {
        match &self.dir {
            Some(dir) if dir.is_dir() => Ok(TemplateSource::Dir(dir.clone())),
            Some(dir) => Err(invalid(
                "templates.dir",
                format!(
                    "{} is not a directory; create it (quicket-followup init writes the shipped templates), or leave templates.dir unset to use the built-in templates",
                    dir.display()
                ),
            )),
            None if Path::new(DEFAULT_TEMPLATES_DIR).is_dir() => {
                Ok(TemplateSource::Dir(PathBuf::from(DEFAULT_TEMPLATES_DIR)))
            }
            None => Ok(TemplateSource::BuiltIn),
        }
    }
}

/// `[events."ID"]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventConfig {
    /// The event's page; overrides `[email].event_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `false` sends no reminders for this event.
    pub reminders: bool,
}

impl Default for EventConfig {
    fn default() -> Self {
        Self {
            url: None,
            reminders: true,
        }
    }
}

/// `[quicket]`: Quicket's public API, asked for each event's page, image, venue, start and sold-out
/// ticket types. Optional: without a key nothing is looked up.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuicketConfig {
    /// The API key (or `QUICKET_FOLLOWUP_QUICKET_API_KEY`); empty turns lookups off.
    pub api_key: String,
    /// Base URL of the API (changed only for tests and proxies).
    pub api_url: String,
    /// Another name for `api_url` (the issue that asked for the lookup called it the base URL);
    /// wins when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// An event's details are looked up again once they are this old.
    #[serde(with = "humantime_serde")]
    pub refresh: Duration,
    /// How long one lookup may take; a pass never waits longer than this for the API.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for QuicketConfig {
    fn default() -> Self {
        Self {
            api_key: String::new(),
            api_url: "https://api.quicket.co.za".into(),
            base_url: None,
            refresh: hours(6),
            timeout: Duration::from_secs(5),
        }
    }
}

impl QuicketConfig {
    /// The API's base URL: `base_url` when set, else `api_url`, with no trailing `/` or `/api`
    /// (both `https://api.quicket.co.za` and `.../api` name the same API).
    pub fn base(&self) -> String {
        let base = self
            .base_url
            .as_deref()
            .unwrap_or(&self.api_url)
            .trim()
            .trim_end_matches('/');
        base.strip_suffix("/api").unwrap_or(base).to_string()
    }
}

/// `[experiment]`: the control group that measures what the reminders really add, and the
/// timing rules that tell link scanners' clicks from people's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentConfig {
    /// This share of buyer-events (0% to 50%) is never emailed; see [`crate::experiment`].
    pub holdout: crate::experiment::Share,
    /// A click this soon after the email was sent is a link scanner's.
    #[serde(with = "humantime_serde")]
    pub scanner_after_delivery: Duration,
    /// Two different links of one email fetched this close together are a link scanner's.
    #[serde(with = "humantime_serde")]
    pub scanner_links_within: Duration,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        let timing = crate::scanner::Timing::default();
        Self {
            holdout: crate::experiment::Share::default(),
            scanner_after_delivery: timing.after_delivery.to_std().unwrap_or_default(),
            scanner_links_within: timing.together.to_std().unwrap_or_default(),
        }
    }
}

impl ExperimentConfig {
    /// The scanner rules' timing.
    pub fn scanner_timing(&self) -> crate::scanner::Timing {
        let delta = |d: Duration| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
        crate::scanner::Timing {
            after_delivery: delta(self.scanner_after_delivery),
            together: delta(self.scanner_links_within),
        }
    }
}

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` or the environment does not exist or cannot be read.
    #[error("cannot read config file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A key has a value of the wrong shape, or is not a known key.
    #[error("{0}")]
    Parse(String),
    /// A key has a value that parses but cannot be used.
    #[error("config key {key}: {reason}")]
    Invalid {
        /// The dotted key, e.g. `schedule.scan`.
        key: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl Config {
    /// Which file to read: `--config`, else `$QUICKET_FOLLOWUP_CONFIG`, else `./quicket-followup.toml`
    /// when it exists, else none (built-in defaults).
    pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
        if let Some(path) = explicit {
            return Some(path.to_path_buf());
        }
        if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let local = PathBuf::from(DEFAULT_CONFIG_FILE);
        local.exists().then_some(local)
    }

    /// Loads defaults, then `file` (if any), then secrets from the environment, and validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match file {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })?,
                )
            }
            None => None,
        };
        Self::from_toml(text.as_deref(), file)
    }

    /// Defaults, then `text` (the file's contents; `origin` names it in errors), then the schedule
    /// file it names (if any, read from disk), then secrets from the environment, validated.
    pub fn from_toml(text: Option<&str>, origin: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(text, origin, None)
    }

    /// Like [`Config::from_toml`], with `schedule` standing in for the schedule file's contents
    /// (what `/admin/schedule` would write: validated exactly as `check` and a reload will read
    /// it). A `schedule` given when the main file names no schedule file is an error.
    pub fn from_sources(
        text: Option<&str>,
        origin: Option<&Path>,
        schedule: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let main_name = origin
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the configuration".into());
        // The layering needs the main file parsed; when it is not TOML, figment says why below.
        let main_doc = match text.map(|t| schedule_file::parse(t, &main_name)) {
            Some(Ok(doc)) => Some(doc),
            Some(Err(e)) => {
                Self::from_layers(text, origin, None)?;
                return Err(e);
            }
            None => None,
        };
        let path = match &main_doc {
            Some(doc) => schedule_file::named_by(doc, origin)?,
            None => None,
        };
        let layer = match (path, schedule) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(invalid(
                    SCHEDULE_FILE_KEY,
                    format!(
                        "{main_name} names no schedule file, so there is nothing to save the schedule into"
                    ),
                ));
            }
            (Some(path), Some(text)) => Some(ScheduleText {
                path,
                text: text.to_string(),
            }),
            (Some(path), None) => Some(schedule_file::read(&path)?),
        };
        if let (Some(main), Some(layer)) = (&main_doc, &layer) {
            let name = layer.path.display().to_string();
            let doc = schedule_file::parse(&layer.text, &name)?;
            schedule_file::check_layers(main, &main_name, &doc, &name)?;
            let mut config = Self::from_layers(text, origin, Some((&doc, layer)))?;
            config.schedule.file = Some(layer.path.clone());
            return Ok(config);
        }
        Self::from_layers(text, origin, None)
    }

    fn from_layers(
        text: Option<&str>,
        origin: Option<&Path>,
        schedule: Option<(&toml_edit::DocumentMut, &ScheduleText)>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(text) = text {
            // `merge` replaces arrays, so a `[[reminders]]` list in the file replaces the built-in
            // steps instead of adding to them.
            figment = figment.merge(Toml::string(text));
        }
        if let Some((_, layer)) = schedule {
            // No key is in both files (checked before), so the order only matters for defaults.
            figment = figment.merge(Toml::string(&layer.text));
        }
        for (var, key) in SECRET_ENV {
            if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
                figment = figment.merge(Env::raw().only(&[var]).map(move |_| (*key).into()));
            }
        }
        let config: Config = figment.extract().map_err(|e| {
            ConfigError::Parse(
                e.into_iter()
                    .map(|e| {
                        let file = match schedule {
                            Some((doc, layer)) if schedule_file::holds(doc, &e.path) => {
                                Some(layer.path.as_path())
                            }
                            _ => origin,
                        };
                        let where_ = file
                            .map(|p| format!("{}: ", p.display()))
                            .unwrap_or_default();
                        format!("{where_}{}", describe_figment_error(&e))
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        if let Err(e) = config.validate() {
            return Err(match (e, schedule) {
                (ConfigError::Invalid { key, reason }, Some((doc, layer)))
                    if schedule_file::holds_key(doc, &key) =>
                {
                    ConfigError::Invalid {
                        reason: format!("{reason} (in {})", layer.path.display()),
                        key,
                    }
                }
                (e, _) => e,
            });
        }
        Ok(config)
    }

    /// Checks what serde cannot: cron syntax, step consistency, URLs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        parse_cron(&self.schedule.scan).map_err(|e| invalid("schedule.scan", e))?;
        let public = self.server.public_url.trim();
        let scheme = public.starts_with("http://") || public.starts_with("https://");
        if !public.is_empty() && !scheme {
            return Err(invalid(
                "server.public_url",
                format!("{public:?} must start with http:// or https://"),
            ));
        }
        let token = &self.server.webhook_token;
        if !token.is_empty()
            && (token.len() < 16
                || !token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(invalid(
                "server.webhook_token",
                "use at least 16 characters from A-Z, a-z, 0-9, '-' and '_' (or leave it empty to have one generated)",
            ));
        }
        let password = &self.server.admin_password;
        if !password.is_empty() && password.chars().count() < MIN_ADMIN_PASSWORD {
            return Err(invalid(
                "server.admin_password",
                format!(
                    "use at least {MIN_ADMIN_PASSWORD} characters (make one with `openssl rand -base64 18`), \
                     or leave it empty to keep /admin off"
                ),
            ));
        }
        if self.email.transport == Transport::Smtp && self.email.smtp_url.trim().is_empty() {
            return Err(invalid(
                "email.smtp_url",
                "transport is \"smtp\" but no smtp_url is set (set it, or QUICKET_FOLLOWUP_SMTP_URL)",
            ));
        }
        if self.email.max_per_minute == 0 {
            return Err(invalid("email.max_per_minute", "must be at least 1"));
        }
        if !self.email.event_url.contains("{event_id}") {
            return Err(invalid(
                "email.event_url",
                "must contain {event_id}, which is replaced by Quicket's event id",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, step) in self.reminders.iter().enumerate() {
            let key = |field: &str| format!("reminders[{i}].{field}");
            if step.name.trim().is_empty() {
                return Err(invalid(key("name"), "every step needs a name"));
            }
            if !names.insert(step.name.as_str()) {
                return Err(invalid(
                    key("name"),
                    format!("{:?} is used by two steps; names must be unique", step.name),
                ));
            }
            match (step.after, step.before_event) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        key("after"),
                        format!(
                            "step {:?} has both after and before_event; give one",
                            step.name
                        ),
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        key("after"),
                        format!(
                            "step {:?} needs after (time since the checkout changed) or before_event",
                            step.name
                        ),
                    ));
                }
                _ => {}
            }
            if step.when.is_empty() {
                return Err(invalid(key("when"), "list at least one checkout state"));
            }
            if step.when.contains(&OrderState::Completed) {
                return Err(invalid(
                    key("when"),
                    "checkout_completed buyers have paid and are never reminded",
                ));
            }
            match (step.template.trim().is_empty(), step.variants.is_empty()) {
                (false, false) => {
                    return Err(invalid(
                        key("variants"),
                        format!(
                            "step {:?} has both template and variants; give one",
                            step.name
                        ),
                    ));
                }
                (true, true) => {
                    return Err(invalid(
                        key("template"),
                        format!(
                            "step {:?} needs a template (or variants = [...])",
                            step.name
                        ),
                    ));
                }
                _ => {}
            }
            let field = if step.variants.is_empty() {
                "template"
            } else {
                "variants"
            };
            let mut seen = std::collections::BTreeSet::new();
            for name in step.templates() {
                if name.trim().is_empty() || name.contains(['/', '\\', '.']) {
                    return Err(invalid(
                        key(field),
                        format!("{name:?} must be the name of a directory under templates.dir"),
                    ));
                }
                if !seen.insert(name) {
                    return Err(invalid(
                        key(field),
                        format!("{name:?} is listed twice; each variant once"),
                    ));
                }
            }
        }
        let (key, api) = match &self.quicket.base_url {
            Some(base) => ("quicket.base_url", base.trim()),
            None => ("quicket.api_url", self.quicket.api_url.trim()),
        };
        if !(api.starts_with("http://") || api.starts_with("https://")) {
            return Err(invalid(
                key,
                format!("{api:?} must start with http:// or https://"),
            ));
        }
        if self.quicket.timeout.is_zero() {
            return Err(invalid(
                "quicket.timeout",
                "must be more than zero (e.g. \"5s\")",
            ));
        }
        if self.quicket.refresh < Duration::from_secs(60) {
            return Err(invalid(
                "quicket.refresh",
                "must be at least 1m, so that the API is not asked before every pass",
            ));
        }
        self.templates.source()?;
        for (key, value) in [
            ("server.header_timeout", self.server.header_timeout),
            ("server.body_timeout", self.server.body_timeout),
            ("server.idle_timeout", self.server.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be more than zero (e.g. \"10s\")"));
            }
        }
        if self.server.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        for (id, event) in &self.events {
            if let Some(url) = &event.url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(invalid(
                    format!("events.\"{id}\".url"),
                    format!("{url:?} must start with http:// or https://"),
                ));
            }
        }
        Ok(())
    }

    /// The base of links: `server.public_url`, else `http://` and the listen address (an
    /// unspecified address such as 0.0.0.0 is shown as 127.0.0.1).
    pub fn public_url(&self) -> String {
        let set = self.server.public_url.trim().trim_end_matches('/');
        if !set.is_empty() {
            return set.to_string();
        }
        let mut addr = self.server.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }

    /// The names of the reminder steps, in order.
    pub fn step_names(&self) -> Vec<String> {
        self.reminders.iter().map(|s| s.name.clone()).collect()
    }

    /// The rules the statistics depend on.
    pub fn stats_rules(&self) -> StatsRules {
        let s = &self.schedule;
        StatsRules {
            timezone: s.timezone,
            dormant_after: s.dormant_after,
            give_up_after: s.give_up_after,
            attribution_window: s.attribution_window,
            holdout: self.experiment.holdout,
            steps: self
                .reminders
                .iter()
                .map(|r| (r.name.clone(), r.templates()[0].to_string()))
                .collect(),
        }
    }

    /// The webhook URL for a token.
    pub fn webhook_url(&self, token: &str) -> String {
        format!("{}/webhooks/quicket/{token}", self.public_url())
    }
}

/// A `Debug` for the sections that hold secrets: every key, but the value of any key that is or may
/// be a secret (a token, password, key or secret, and the SMTP URL with its password) redacted, so
/// that a `{:?}` in a log line or an error never shows one. Built from the serialized form, so a
/// key added later is shown (and redacted by its name) without touching this.
fn redacted_debug<T: Serialize>(
    name: &str,
    value: &T,
    f: &mut std::fmt::Formatter<'_>,
) -> std::fmt::Result {
    let mut out = f.debug_struct(name);
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(value) {
        for (key, value) in &map {
            let secret = ["token", "password", "key", "secret", "smtp_url"]
                .iter()
                .any(|word| key.ends_with(word));
            let empty = value.as_str().is_some_and(str::is_empty);
            if secret && !empty {
                out.field(key, &"[redacted]");
            } else {
                out.field(key, value);
            }
        }
    }
    out.finish()
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        redacted_debug("ServerConfig", self, f)
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        redacted_debug("EmailConfig", self, f)
    }
}

impl std::fmt::Debug for QuicketConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        redacted_debug("QuicketConfig", self, f)
    }
}

/// Parses a six-field (seconds first) cron expression as the scheduler will.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "{expr:?} has {fields} fields; write 6, seconds first (e.g. \"0 * * * * *\" for every minute)"
        ));
    }
    // The same parser settings tokio-cron-scheduler uses, so what passes here runs there.
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| format!("{expr:?} is not a cron expression: {e}"))
}

fn describe_figment_error(e: &figment::Error) -> String {
    // figment's path already ends with the offending key.
    let key = e.path.join(".");
    match &e.kind {
        figment::error::Kind::UnknownField(field, _) => {
            let key = if key.is_empty() { field.clone() } else { key };
            format!("unknown key {key} (check its spelling and its [section])")
        }
        kind if key.is_empty() => kind.to_string(),
        kind => format!("config key {key}: {kind}"),
    }
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}
fn hours(n: u64) -> Duration {
    minutes(60 * n)
}
fn days(n: u64) -> Duration {
    hours(24 * n)
}

/// The rules the figures depend on.
#[derive(Debug, Clone)]
pub struct StatsRules {
    /// The zone days are counted in.
    pub timezone: chrono_tz::Tz,
    /// A checkout is dormant after this long still.
    pub dormant_after: std::time::Duration,
    /// Reminders stop after this long.
    pub give_up_after: std::time::Duration,
    /// A purchase this soon after a reminder counts as recovered.
    pub attribution_window: std::time::Duration,
    /// `[experiment] holdout` in force.
    pub holdout: crate::experiment::Share,
    /// The steps in order, each with its template (for emails sent before the template was
    /// recorded).
    pub steps: Vec<(String, String)>,
}
