//! `[notify]`: where messages to the organiser go (alerts and the weekly report), and when the
//! weekly report is sent. Kept in the main configuration with `[email]`, since the webhook's URL
//! and secret are secrets like the SMTP URL.

use super::*;

/// `[notify]`: messages to the organiser. They are not direct marketing: no send window, no
/// suppression list, no unsubscribe footer, and they go out even while reminders are paused.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The organiser's addresses: alerts and the weekly report.
    pub to: Vec<String>,
    /// Optionally also a signed JSON POST of each alert (Slack, Teams, Discord, n8n...).
    pub webhook_url: String,
    /// The Standard Webhooks signing secret (`whsec_` and base64, or any text); or
    /// `QUICKET_FOLLOWUP_NOTIFY_WEBHOOK_SECRET`. Empty: the POST is not signed.
    pub webhook_secret: String,
    /// When the weekly report is sent, in `schedule.timezone` ("mon 08:00"; "" = never).
    pub weekly: Weekly,
    /// The alert "the database's disk is almost full" is raised above this percentage (50 to
    /// 100; 100 never raises it).
    pub disk_full_at: u8,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            to: Vec::new(),
            webhook_url: String::new(),
            webhook_secret: String::new(),
            weekly: Weekly::parse("mon 08:00").unwrap_or(Weekly(None)),
            disk_full_at: 90,
        }
    }
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A Slack or Teams webhook URL is itself the secret that lets anyone post.
        let hidden = |s: &str| if s.is_empty() { "" } else { "[redacted]" };
        f.debug_struct("NotifyConfig")
            .field("to", &self.to)
            .field("webhook_url", &hidden(&self.webhook_url))
            .field("webhook_secret", &hidden(&self.webhook_secret))
            .field("weekly", &self.weekly.to_string())
            .field("disk_full_at", &self.disk_full_at)
            .finish()
    }
}

impl NotifyConfig {
    /// Checks the addresses and the webhook URL.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(50..=100).contains(&self.disk_full_at) {
            return Err(invalid(
                "notify.disk_full_at",
                format!(
                    "{} is not a percentage from 50 to 100 (90: tell when the disk is 90% full; \
                     100: never)",
                    self.disk_full_at
                ),
            ));
        }
        for (i, to) in self.to.iter().enumerate() {
            if let Err(why) = crate::domain::check_deliverable(to) {
                return Err(invalid(
                    format!("notify.to[{i}]"),
                    format!("{to:?} is {why}; give the organiser's own address"),
                ));
            }
        }
        let url = self.webhook_url.trim();
        if !url.is_empty() {
            let parsed = url::Url::parse(url).ok();
            if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
                return Err(invalid(
                    "notify.webhook_url",
                    "must be a full http:// or https:// URL (the incoming-webhook URL your chat or workflow tool gives you), or empty",
                ));
            }
        }
        if !self.webhook_secret.is_empty() && url.is_empty() {
            return Err(invalid(
                "notify.webhook_secret",
                "is set but notify.webhook_url is empty; set the URL too, or remove the secret",
            ));
        }
        Ok(())
    }
}

/// When the weekly report goes out: a day of the week and a local time, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Weekly(pub Option<(chrono::Weekday, chrono::NaiveTime)>);

impl Weekly {
    /// Reads "mon 08:00" (a day's first three letters or its whole name, then HH:MM); "" is never.
    pub fn parse(text: &str) -> Result<Weekly, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Weekly(None));
        }
        let bad = || {
            format!(
                "{text:?} is not a day and a time; write it like \"mon 08:00\" (in schedule.timezone), or \"\" for no weekly report"
            )
        };
        let (day, time) = text.split_once(char::is_whitespace).ok_or_else(bad)?;
        let day: chrono::Weekday = day.trim().parse().map_err(|_| bad())?;
        let time = chrono::NaiveTime::parse_from_str(time.trim(), "%H:%M").map_err(|_| bad())?;
        Ok(Weekly(Some((day, time))))
    }
}

impl std::fmt::Display for Weekly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => Ok(()),
            Some((day, time)) => write!(
                f,
                "{} {}",
                day.to_string().to_lowercase(),
                time.format("%H:%M")
            ),
        }
    }
}

impl TryFrom<String> for Weekly {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Weekly::parse(&text)
    }
}

impl From<Weekly> for String {
    fn from(w: Weekly) -> String {
        w.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_reads_a_day_and_a_time_or_nothing() {
        assert_eq!(Weekly::parse("mon 08:00").unwrap().to_string(), "mon 08:00");
        assert_eq!(
            Weekly::parse(" Friday  17:30 ").unwrap().to_string(),
            "fri 17:30"
        );
        assert_eq!(Weekly::parse("").unwrap(), Weekly(None));
        for bad in ["monday", "08:00", "mon 8am", "someday 08:00", "mon 25:00"] {
            assert!(Weekly::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn notify_is_checked_and_names_the_key() {
        let mut c = Config::default();
        c.notify.to = vec!["ops@example.com".into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("notify.to[0]"), "{e}");
        c.notify.to = vec!["ops@festival.co.za".into()];
        c.notify.webhook_url = "hooks.slack.com/x".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("notify.webhook_url"), "{e}");
        c.notify.webhook_url = "https://hooks.slack.com/services/T/B/x".into();
        c.validate().unwrap();
        assert!(!format!("{:?}", c.notify).contains("slack"));
    }

    #[test]
    fn a_bad_weekly_time_is_an_error_naming_the_key() {
        let e = Config::from_toml(Some("[notify]\nweekly = \"monday\"\n"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("notify.weekly"), "{e}");
        let c = Config::from_toml(Some("[notify]\nweekly = \"\"\n"), None).unwrap();
        assert_eq!(c.notify.weekly, Weekly(None));
    }
}
