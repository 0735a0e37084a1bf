//! `[server]` and `[database]`: where the service listens, who may reach `/admin`, where it keeps its data.

use super::*;

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
    /// Connections one client address (an IPv6 client: its /64) may hold at once; more from it
    /// are closed at once. Connections from `trusted_proxies` are not capped.
    pub max_connections_per_client: usize,
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
            max_connections_per_client: 64,
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
