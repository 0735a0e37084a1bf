//! The service's own values, in the organiser's words. Everything here has been parsed from the
//! outside world already: a value of these types is known to be well formed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Stores an enum as its name (`as_str`) and reads it back (`parse`), refusing a name it does not
/// know.
macro_rules! stored_as_text {
    ($type:ty, $what:literal) => {
        impl rusqlite::types::ToSql for $type {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $type {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                Self::parse(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!(concat!("unknown ", $what, " {:?}"), text).into(),
                    )
                })
            }
        }
    };
}
pub(crate) use stored_as_text;

mod buyer_event;
mod event_info;

pub use buyer_event::{
    ADDRESS_SUPPRESSED, ArmRecord, BUYER_PAID, Candidate, Outcome, SEND_INTERRUPTED, StepRecord,
    StepStatus,
};
pub use event_info::{EventInfo, TicketTypeInfo};

/// A Quicket event id: a whole number above zero (Quicket's ids are integers), written without
/// leading zeros, so that `"0123"` and `123` are one event. The one rule for what an event id is:
/// hooks, the config's `[events."ID"]` and the schedule editor all read ids through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(u64);

impl EventId {
    /// Digits only (spaces around them are trimmed): `"123"`, `"0123"`. A template (`{{7*7}}`),
    /// a fraction (`1.5`), a sign, a letter or zero is not an event id.
    pub fn parse(text: &str) -> Option<EventId> {
        let text = text.trim();
        if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse::<u64>().ok().and_then(EventId::from_number)
    }

    /// A number as an event id (zero is none).
    pub fn from_number(n: u64) -> Option<EventId> {
        (n > 0).then_some(EventId(n))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why `name` cannot name a reminder step, if it cannot: a step's name goes into logs, reports,
/// the `reminder.name` of templates and metric labels, so it holds no line break or other control
/// character, no quote or backslash, no invisible formatting, at most 64 characters, and no
/// spaces at its ends. The config and the schedule editor both check names with it.
pub fn step_name_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("a step needs a name")
    } else if name.chars().count() > 64 {
        Some("a step's name is at most 64 characters")
    } else if name
        .chars()
        .any(|c| c.is_control() || is_invisible_format(c))
    {
        Some("a step's name cannot hold a line break, tab or other control character")
    } else if name.contains(['"', '\'', '`', '\\']) {
        Some("a step's name cannot hold quotes or a backslash")
    } else if name.trim() != name {
        Some("a step's name cannot start or end with a space")
    } else {
        None
    }
}

/// Checks a web page address the organiser typed (an event's page): an `http://` or `https://`
/// URL with a host, read by the `url` crate, with no control character anywhere (the URL parser
/// would silently drop a line break, which then breaks the `Location` of the event link).
pub fn web_page_url(text: &str) -> Result<url::Url, String> {
    if text
        .chars()
        .any(|c| c.is_control() || is_invisible_format(c))
    {
        return Err(
            "a web address cannot hold a line break, tab or other control character".into(),
        );
    }
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a web address ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must start with https:// (or http://)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} names no web site"));
    }
    Ok(url)
}

/// The state of one order (one `reference`), named after the Quicket action that put it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OrderState {
    /// A checkout was begun; tickets are held for a while.
    #[serde(rename = "checkout_started")]
    Started,
    /// The checkout was cancelled or its hold ran out.
    #[serde(rename = "checkout_cancelled")]
    Cancelled,
    /// The buyer chose to pay by EFT and the money has not arrived yet.
    #[serde(rename = "eft_pending")]
    EftPending,
    /// Paid; final.
    #[serde(rename = "checkout_completed")]
    Completed,
}

impl OrderState {
    /// Every state, in the order a checkout usually passes through them.
    pub const ALL: [OrderState; 4] = [
        OrderState::Started,
        OrderState::Cancelled,
        OrderState::EftPending,
        OrderState::Completed,
    ];

    /// Quicket's action name for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Started => "checkout_started",
            OrderState::Cancelled => "checkout_cancelled",
            OrderState::EftPending => "eft_pending",
            OrderState::Completed => "checkout_completed",
        }
    }

    /// The state for a Quicket action name, if it is one we know.
    pub fn from_action(action: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == action)
    }

    /// Whether a hook announcing `next` may move an order that is in `self`.
    ///
    /// Quicket's hooks carry no timestamp, so arrival order is all we have. A paid order never
    /// reopens, and a `checkout_started` that arrives after the checkout moved on (cancelled or
    /// EFT) is a late delivery, not a new checkout: a new checkout gets a new reference.
    pub fn may_become(self, next: OrderState) -> bool {
        match (self, next) {
            (OrderState::Completed, _) => false,
            (OrderState::Cancelled | OrderState::EftPending, OrderState::Started) => false,
            (current, next) => current != next,
        }
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl rusqlite::types::ToSql for OrderState {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for OrderState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        Self::from_action(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown order state {text:?}").into())
        })
    }
}

pub use crate::money::Cents;

/// A duration as it is written in the configuration: `"1d"`, `"1h 30m"`, `"45m"`.
pub fn duration_as_written(d: std::time::Duration) -> String {
    let mut left = d.as_secs();
    if left == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    for (size, unit) in [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")] {
        let n = left / size;
        left %= size;
        if n > 0 {
            parts.push(format!("{n}{unit}"));
        }
    }
    parts.join(" ")
}

/// A duration as people say it: "3 days", "1 hour 30 minutes", "45 minutes".
pub fn duration_for_people(d: std::time::Duration) -> String {
    let mut left = d.as_secs();
    if left == 0 {
        return "no time".into();
    }
    let mut parts = Vec::new();
    for (size, unit) in [
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ] {
        let n = left / size;
        left %= size;
        if n > 0 && parts.len() < 2 {
            parts.push(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }));
        }
    }
    parts.join(" ")
}

impl OrderState {
    /// The state as an organiser says it.
    pub fn for_people(self) -> &'static str {
        match self {
            OrderState::Started => "Started",
            OrderState::Cancelled => "Cancelled",
            OrderState::EftPending => "Awaiting EFT",
            OrderState::Completed => "Paid",
        }
    }
}

#[cfg(test)]
mod step_name_tests {
    #[test]
    fn a_step_name_has_no_line_break_quote_or_control_character() {
        for good in [
            "abandoned-1",
            "Last chance (3 days)",
            "eft_1",
            "Kaapstad â 2",
        ] {
            assert_eq!(super::step_name_problem(good), None, "{good}");
        }
        for bad in [
            "",
            " ",
            "a\nb",
            "a\rb",
            "a\tb",
            "say \"hi\"",
            "it's",
            "a\\b",
            " lead",
            "x\u{202e}y",
        ] {
            assert!(super::step_name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(super::step_name_problem(&"x".repeat(65)).is_some());
    }

    #[test]
    fn a_quoted_local_part_is_an_address_that_cannot_be_sent_to() {
        assert!(super::check_deliverable("lerato@mail.co.za").is_ok());
        assert!(super::check_deliverable("lerato.d+tix@mail.co.za").is_ok());
        for bad in ["\"a\\\"b\"@mail.co.za", "\"a b\"@mail.co.za"] {
            assert_eq!(
                super::check_deliverable(bad),
                Err("an address with a quoted part, which cannot be sent to"),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_event_page_is_an_http_url_without_control_characters() {
        assert!(super::web_page_url("https://www.quicket.co.za/events/123-gala/").is_ok());
        for bad in [
            "https://x.co.za/a\nb",
            "https://x.co.za/\r\nSet-Cookie: a=b",
            "https://x.co.za/\tb",
            "javascript:alert(1)",
            "ftp://x.co.za/",
            "https://",
            "www.quicket.co.za",
            "",
        ] {
            assert!(super::web_page_url(bad).is_err(), "{bad:?}");
        }
    }
}

/// Cleans a free-text value from a hook: control characters (CR, LF, tabs ...) become spaces,
/// runs of spaces collapse and the ends are trimmed, so a name can never break a line or header;
/// invisible formatting characters (bidi overrides and isolates, zero-width spaces, the BOM) are
/// removed, so a name cannot reorder or hide the text around it in an email or a page.
pub fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if is_invisible_format(c) {
            continue;
        }
        if c.is_control() || c.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Bidi controls and other invisible formatting characters. The zero-width joiner and non-joiner
/// stay: emoji sequences and several scripts need them.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}' | '\u{200e}' | '\u{200f}'
        | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}'
        | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// A count for people: 1048576 -> "1,048,576".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The key a buyer's address is compared by: trimmed and lower-cased.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Why an address cannot receive a reminder, or `Ok` when it can.
pub fn check_deliverable(email: &str) -> Result<(), &'static str> {
    let email = email.trim();
    if email.is_empty() {
        return Err("no email address");
    }
    let Ok(address) = email.parse::<lettre::Address>() else {
        return Err("not a valid email address");
    };
    // A quoted local part (`"a\"b"@x.co.za`) parses, but the SMTP transaction refuses it at send
    // time, again at every retry: it is an address we cannot send to, said once, for good.
    if address
        .user()
        .chars()
        .any(|c| matches!(c, '"' | '\\') || c.is_whitespace() || c.is_control())
    {
        return Err("an address with a quoted part, which cannot be sent to");
    }
    let domain = address.domain().trim_end_matches('.').to_ascii_lowercase();
    let tld = domain.rsplit('.').next().unwrap_or_default();
    let reserved_tld = matches!(tld, "test" | "invalid" | "example" | "localhost");
    let example = ["example.com", "example.net", "example.org"]
        .iter()
        .any(|d| domain == *d || domain.strip_suffix(d).is_some_and(|r| r.ends_with('.')));
    if reserved_tld || example || domain == "localhost" || !domain.contains('.') {
        return Err("a reserved domain that cannot receive mail");
    }
    Ok(())
}

/// One line of the From domain's DNS readiness (kept in the database, shown by `check` and /admin).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    /// Whether it needs action.
    pub warning: bool,
    /// What to say.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_for_people() {
        use std::time::Duration;
        assert_eq!(
            duration_for_people(Duration::from_secs(3 * 86400)),
            "3 days"
        );
        assert_eq!(
            duration_for_people(Duration::from_secs(5400)),
            "1 hour 30 minutes"
        );
        assert_eq!(duration_for_people(Duration::from_secs(60)), "1 minute");
        assert_eq!(duration_for_people(Duration::ZERO), "no time");
    }

    #[test]
    fn reserved_and_invalid_addresses_are_not_deliverable() {
        for ok in [
            "lerato@mail.co.za",
            " Thandi@Gmail.com ",
            "a.b+c@sub.example-shop.co.za",
        ] {
            assert_eq!(check_deliverable(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "  ",
            "nobody",
            "a@b@c",
            "x@example.com",
            "x@EXAMPLE.org",
            "x@mail.example.net",
            "x@shop.test",
            "x@nowhere.invalid",
            "x@a.example",
            "x@localhost",
            "x@foo.localhost",
            "x@intranet",
            "x\r\n@mail.co.za",
            "x@mail.co.za\r\nBcc: y@z.co.za",
        ] {
            assert!(check_deliverable(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clean_text_removes_line_breaks_and_collapses_space() {
        assert_eq!(
            clean_text("  Thandi\r\nBcc: x@y.z \t Mokoena "),
            "Thandi Bcc: x@y.z Mokoena"
        );
        assert_eq!(clean_text("\r\n"), "");
        assert_eq!(clean_text("<b>Ann</b>"), "<b>Ann</b>");
        // A right-to-left override would show "Ann\u{202e}gpj.exe" as "Annexe.jpg".
        assert_eq!(clean_text("Ann\u{202e}gpj.exe\u{202c}"), "Anngpj.exe");
        assert_eq!(
            clean_text("\u{feff}Zo\u{200b}\u{2066}\u{00e9}\u{2069}"),
            "Zo\u{e9}"
        );
        assert_eq!(clean_text("👩\u{200d}👩"), "👩\u{200d}👩");
    }

    #[test]
    fn a_paid_order_never_reopens_and_a_late_start_never_rewinds() {
        use OrderState::*;
        for next in OrderState::ALL {
            assert!(!Completed.may_become(next));
        }
        assert!(!Cancelled.may_become(Started));
        assert!(!EftPending.may_become(Started));
        assert!(Started.may_become(Cancelled));
        assert!(EftPending.may_become(Cancelled));
        assert!(Cancelled.may_become(EftPending));
        assert!(EftPending.may_become(Completed));
        assert!(!Started.may_become(Started));
    }
}
