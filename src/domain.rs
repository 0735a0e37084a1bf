//! The service's own values, in the organiser's words. Everything here has been parsed from the
//! outside world already: a value of these types is known to be well formed.

use std::fmt;

use serde::{Deserialize, Serialize};

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

/// An amount of money in cents (Quicket sends rands with cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cents(pub i64);

impl Cents {
    /// Parses a decimal amount such as `150`, `150.5`, `"1250.00"`, `"1,250.00"` or `"R150.00"`.
    /// Returns `None` for anything that is not a plain non-negative decimal number.
    pub fn parse_decimal(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text
            .strip_prefix('R')
            .or_else(|| text.strip_prefix("ZAR"))
            .unwrap_or(text)
            .trim();
        let cleaned: String = text.chars().filter(|c| *c != ',' && *c != ' ').collect();
        let (whole, frac) = match cleaned.split_once('.') {
            Some((w, f)) => (w, f),
            None => (cleaned.as_str(), ""),
        };
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        // Round half up on the third decimal; amounts are never finer than cents in practice.
        let mut digits = frac.chars().map(|c| i64::from(c as u8 - b'0'));
        let tens = digits.next().unwrap_or(0);
        let ones = digits.next().unwrap_or(0);
        let round = i64::from(digits.next().unwrap_or(0) >= 5);
        whole
            .checked_mul(100)?
            .checked_add(tens * 10 + ones + round)
            .map(Cents)
    }

    /// The amount in rands, for JSON output.
    pub fn to_rands(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// The amount as a plain decimal, `150.00`.
    pub fn to_decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
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

/// Cleans a free-text value from a hook: control characters (CR, LF, tabs ...) become spaces,
/// runs of spaces collapse and the ends are trimmed, so a name can never break a line or header.
pub fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
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
    let domain = address.domain().trim_end_matches('.').to_ascii_lowercase();
    let tld = domain.rsplit('.').next().unwrap_or_default();
    let reserved_tld = matches!(tld, "test" | "invalid" | "example" | "localhost");
    let example = ["example.com", "example.net", "example.org"]
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")));
    if reserved_tld || example || domain == "localhost" || !domain.contains('.') {
        return Err("a reserved domain that cannot receive mail");
    }
    Ok(())
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
    fn cents_parse_the_shapes_quicket_sends() {
        assert_eq!(Cents::parse_decimal("150.00"), Some(Cents(15000)));
        assert_eq!(Cents::parse_decimal("150"), Some(Cents(15000)));
        assert_eq!(Cents::parse_decimal("150.5"), Some(Cents(15050)));
        assert_eq!(Cents::parse_decimal("R1,250.00"), Some(Cents(125000)));
        assert_eq!(Cents::parse_decimal("0.00"), Some(Cents(0)));
        assert_eq!(Cents::parse_decimal(".5"), Some(Cents(50)));
        assert_eq!(Cents::parse_decimal("19.999"), Some(Cents(2000)));
        assert_eq!(Cents::parse_decimal("abc"), None);
        assert_eq!(Cents::parse_decimal("-5"), None);
        assert_eq!(Cents::parse_decimal(""), None);
        assert_eq!(Cents::parse_decimal("1e3"), None);
        assert_eq!(Cents::parse_decimal("99999999999999999999"), None);
        assert_eq!(Cents(125000).to_decimal(), "1250.00");
    }

    #[test]
    fn clean_text_removes_line_breaks_and_collapses_space() {
        assert_eq!(
            clean_text("  Thandi\r\nBcc: x@y.z \t Mokoena "),
            "Thandi Bcc: x@y.z Mokoena"
        );
        assert_eq!(clean_text("\r\n"), "");
        assert_eq!(clean_text("<b>Ann</b>"), "<b>Ann</b>");
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
