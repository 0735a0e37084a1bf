//! What serde cannot check: cron syntax, step consistency, URLs, paths.

use super::*;

/// The longest a duration may be: past these, a value is a typo (`"1000000000000d"`), and time
/// arithmetic with it would leave the calendar.
const A_YEAR: Duration = Duration::from_secs(366 * 24 * 3600);
const TEN_YEARS: Duration = Duration::from_secs(3653 * 24 * 3600);
const A_DAY: Duration = Duration::from_secs(24 * 3600);
const AN_HOUR: Duration = Duration::from_secs(3600);
/// The most arms a timing experiment may have: more would split the buyers too thinly to learn.
const MAX_ARMS: usize = 4;

/// How each limit is written in an error (as it may be written in the file).
fn limit_text(limit: Duration) -> &'static str {
    match limit {
        A_YEAR => "366d",
        TEN_YEARS => "3653d (ten years)",
        A_DAY => "1d",
        _ => "1h",
    }
}

/// `key`'s duration is at most `limit`.
fn at_most(key: impl Into<String>, value: Duration, limit: Duration) -> Result<(), ConfigError> {
    if value <= limit {
        return Ok(());
    }
    Err(invalid(
        key,
        format!(
            "is longer than the limit, {}; write a shorter duration",
            limit_text(limit)
        ),
    ))
}

impl Config {
    /// Every duration within its limit, each error naming the key and the limit (the schedule
    /// editor saves through this same check).
    fn check_duration_bounds(&self) -> Result<(), ConfigError> {
        let s = &self.schedule;
        at_most("schedule.dormant_after", s.dormant_after, A_YEAR)?;
        at_most("schedule.min_gap", s.min_gap, A_YEAR)?;
        at_most("schedule.give_up_after", s.give_up_after, A_YEAR)?;
        at_most("schedule.stop_before_event", s.stop_before_event, A_YEAR)?;
        at_most("schedule.attribution_window", s.attribution_window, A_YEAR)?;
        for (i, step) in self.reminders.iter().enumerate() {
            if let Some(after) = step.after {
                at_most(format!("reminders[{i}].after"), after, A_YEAR)?;
            }
            if let Some(before) = step.before_event {
                at_most(format!("reminders[{i}].before_event"), before, A_YEAR)?;
            }
        }
        at_most("database.retention", self.database.retention, TEN_YEARS)?;
        at_most("email.smtp_timeout", self.email.smtp_timeout, AN_HOUR)?;
        at_most("quicket.refresh", self.quicket.refresh, A_YEAR)?;
        at_most("quicket.timeout", self.quicket.timeout, AN_HOUR)?;
        let x = &self.experiment;
        at_most(
            "experiment.scanner_after_delivery",
            x.scanner_after_delivery,
            A_DAY,
        )?;
        at_most(
            "experiment.scanner_links_within",
            x.scanner_links_within,
            A_DAY,
        )?;
        let v = &self.server;
        at_most("server.header_timeout", v.header_timeout, AN_HOUR)?;
        at_most("server.body_timeout", v.body_timeout, AN_HOUR)?;
        at_most("server.idle_timeout", v.idle_timeout, A_DAY)?;
        Ok(())
    }

    /// Checks what serde cannot: cron syntax, step consistency, URLs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        parse_cron(&self.schedule.scan).map_err(|e| invalid("schedule.scan", e))?;
        self.check_duration_bounds()?;
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
        let postmark_user = self.email.postmark_webhook_user.is_empty();
        let postmark_password = self.email.postmark_webhook_password.is_empty();
        if postmark_user != postmark_password {
            let missing = if postmark_user {
                "email.postmark_webhook_user"
            } else {
                "email.postmark_webhook_password"
            };
            return Err(invalid(
                missing,
                "Postmark's webhook credentials go together: set both postmark_webhook_user and \
                 postmark_webhook_password (as in Postmark's webhook settings), or neither",
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
            if let Some(problem) = crate::domain::step_name_problem(&step.name) {
                return Err(invalid(key("name"), format!("{:?}: {problem}", step.name)));
            }
            if let Some(label) = &step.label
                && (label.chars().count() > 80 || label.chars().any(char::is_control))
            {
                return Err(invalid(
                    key("label"),
                    format!("{label:?}: at most 80 characters, on one line"),
                ));
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
            if !step.arms.is_empty() {
                let field = if step.after.is_some() {
                    "after"
                } else {
                    "before_event"
                };
                let distinct: std::collections::BTreeSet<_> = step.arms.iter().collect();
                if step.arms.len() > MAX_ARMS || distinct.len() != step.arms.len() {
                    return Err(invalid(
                        key(field),
                        format!(
                            "a timing experiment lists 2 to {MAX_ARMS} different delays; step {:?} lists {}",
                            step.name,
                            step.arms.len()
                        ),
                    ));
                }
                for d in &step.arms {
                    at_most(key(field), *d, A_YEAR)?;
                }
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
        if self.server.max_connections_per_client == 0 {
            return Err(invalid(
                "server.max_connections_per_client",
                "must be at least 1",
            ));
        }
        for (id, event) in &self.events {
            if crate::domain::EventId::parse(id).is_none() {
                return Err(invalid(
                    format!("events.\"{id}\""),
                    "is not a Quicket event id: write the event's number, e.g. [events.\"123\"]",
                ));
            }
            if let Some(url) = &event.url
                && let Err(e) = crate::domain::web_page_url(url)
            {
                return Err(invalid(format!("events.\"{id}\".url"), e));
            }
        }
        self.notify.validate()?;
        Ok(())
    }
}
