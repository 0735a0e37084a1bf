//! `[quicket]`: Quicket's public API.

use super::*;

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
