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

mod email;
mod experiment;
mod notify;
mod quicket;
mod schedule;
mod schedule_file;
mod server;
mod settings_file;
mod templates;
mod validate;

pub use email::{EmailConfig, SmtpUrl, Transport, redact_smtp_url};
pub use experiment::ExperimentConfig;
pub use notify::{NotifyConfig, Weekly};
pub use quicket::QuicketConfig;
use schedule::default_reminders;
pub use schedule::{EventConfig, ReminderStep, ScheduleConfig, StepTiming, step_display_name};
pub use schedule_file::{SCHEDULE_FILE_KEY, SCHEDULE_FILE_SECTIONS, ScheduleText};
pub use server::{DatabaseConfig, LogFormat, ServerConfig};
pub use settings_file::{SETTINGS_FILE_NAME, SETTINGS_KEYS, path_for as settings_file_for};
pub use templates::{DEFAULT_TEMPLATES_DIR, TemplateSource, TemplatesConfig};

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
    (
        "QUICKET_FOLLOWUP_POSTMARK_WEBHOOK_PASSWORD",
        "email.postmark_webhook_password",
    ),
    (
        "QUICKET_FOLLOWUP_NOTIFY_WEBHOOK_SECRET",
        "notify.webhook_secret",
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
    /// `[notify]`: alerts and the weekly report to the organiser.
    pub notify: NotifyConfig,
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
            notify: NotifyConfig::default(),
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
        // The layering needs the main file parsed; when it is not TOML, the error says where
        // (never figment's, which quotes the line).
        let main_doc = match text.map(|t| schedule_file::parse(t, &main_name)) {
            Some(Ok(doc)) => Some(doc),
            Some(Err(e)) => return Err(e),
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
        let schedule_doc = match (&main_doc, &layer) {
            (Some(main), Some(layer)) => {
                let name = layer.path.display().to_string();
                let doc = schedule_file::parse(&layer.text, &name)?;
                schedule_file::check_layers(main, &main_name, &doc, &name)?;
                Some((doc, layer))
            }
            _ => None,
        };
        let schedule_pair = schedule_doc.as_ref().map(|(doc, layer)| (doc, *layer));
        let mut config = Self::from_layers(text, origin, schedule_pair, None)?;
        // The settings file lives beside the database, which the layers above placed.
        let settings_path = settings_file::path_for(&config.database.path);
        if let Some(settings) = settings_file::read(&settings_path)? {
            let name = settings.path.display().to_string();
            let doc = schedule_file::parse(&settings.text, &name)?;
            let env: Vec<(&str, &str)> = SECRET_ENV
                .iter()
                .copied()
                .filter(|(var, _)| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
                .collect();
            settings_file::check_layers(&doc, &name, main_doc.as_ref(), &main_name, &env)?;
            config = Self::from_layers(text, origin, schedule_pair, Some((&doc, &settings)))?;
        }
        if let Some((_, layer)) = schedule_pair {
            config.schedule.file = Some(layer.path.clone());
        }
        Ok(config)
    }

    fn from_layers(
        text: Option<&str>,
        origin: Option<&Path>,
        schedule: Option<(&toml_edit::DocumentMut, &ScheduleText)>,
        settings: Option<(&toml_edit::DocumentMut, &ScheduleText)>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(text) = text {
            // `merge` replaces arrays, so a `[[reminders]]` list in the file replaces the built-in
            // steps instead of adding to them.
            figment = figment.merge(Toml::string(text));
        }
        // No key is in two files (checked before), so the order only matters for defaults.
        for (_, layer) in schedule.iter().chain(settings.iter()) {
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
                        let file = match (schedule, settings) {
                            (_, Some((doc, layer))) if schedule_file::holds(doc, &e.path) => {
                                Some(layer.path.as_path())
                            }
                            (Some((doc, layer)), _) if schedule_file::holds(doc, &e.path) => {
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
            let layer_of = |key: &str| {
                [settings, schedule]
                    .into_iter()
                    .flatten()
                    .find(|(doc, _)| schedule_file::holds_key(doc, key))
                    .map(|(_, layer)| layer.path.clone())
            };
            return Err(match e {
                ConfigError::Invalid { key, reason } => match layer_of(&key) {
                    Some(path) => ConfigError::Invalid {
                        reason: format!("{reason} (in {})", path.display()),
                        key,
                    },
                    None => ConfigError::Invalid { key, reason },
                },
                e => e,
            });
        }
        Ok(config)
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
            let secret = is_secret_key(key);
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

/// Whether a key holds, or may hold, a secret (a token, password, key or secret, and the SMTP URL
/// with its password): its value is never shown, in an error or a `Debug`.
pub fn is_secret_key(key: &str) -> bool {
    ["token", "password", "key", "secret", "smtp_url"]
        .iter()
        .any(|word| key.ends_with(word))
}

/// figment's error in words that name the key and never show its value: errors go to the log,
/// `check`'s output and `/admin`, and a value may be a password.
fn describe_figment_error(e: &figment::Error) -> String {
    use figment::error::{Actual, Kind};
    // What was found, by its kind only (figment's own text quotes the value).
    fn found(actual: &Actual) -> &'static str {
        match actual {
            Actual::Bool(_) => "true or false",
            Actual::Unsigned(_) | Actual::Signed(_) => "a whole number",
            Actual::Float(_) => "a decimal number",
            Actual::Char(_) | Actual::Str(_) => "a text",
            Actual::Bytes(_) => "bytes",
            Actual::Unit | Actual::Option => "nothing",
            Actual::Seq => "a list",
            Actual::Map | Actual::NewtypeStruct | Actual::StructVariant => "a table",
            _ => "a value of another kind",
        }
    }
    // figment's path already ends with the offending key.
    let key = e.path.join(".");
    let what = match &e.kind {
        Kind::UnknownField(field, _) => {
            let key = if key.is_empty() { field.clone() } else { key };
            return format!("unknown key {key} (check its spelling and its [section])");
        }
        Kind::InvalidType(actual, expected) => {
            format!("expected {expected}, found {}", found(actual))
        }
        Kind::InvalidValue(actual, expected) => {
            format!(
                "expected {expected}, found {} that is not one",
                found(actual)
            )
        }
        Kind::Unsupported(actual) | Kind::UnsupportedKey(actual, _) => {
            format!("{} is not supported here", found(actual))
        }
        Kind::UnknownVariant(_, expected) if is_secret_key(&key) => {
            format!("expected one of {}", expected.join(", "))
        }
        Kind::Message(_) if is_secret_key(&key) => {
            "the value is not valid (not shown: it may hold a secret)".into()
        }
        // A message from a value's own parser (a duration, a zone): its first line (a TOML parse
        // error's next lines quote the source).
        kind => kind
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    if key.is_empty() {
        what
    } else {
        format!("config key {key}: {what}")
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
