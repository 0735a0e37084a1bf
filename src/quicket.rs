//! Quicket's webhook message on the wire, and its translation into a [`Hook`].
//!
//! Nothing about the format is guaranteed (Quicket documents little of it), so this is lenient in
//! what it accepts: numbers may be strings, unknown fields are ignored, names and emails may be
//! empty, and a field we cannot read becomes "unknown" with a note rather than a refusal. Only a
//! body that is not a JSON object with a `reference` is refused.

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::{Cents, EventId, OrderState, clean_text};
use crate::money::{AmountError, parse_amount};

/// Longest reference we accept; Quicket's are about a dozen characters.
const MAX_REFERENCE_LEN: usize = 100;
/// Tickets kept from one hook (the raw body is kept whole); more is not an order anyone places.
pub const MAX_TICKETS: usize = 100;
/// Names (the event's, ticket types, attendees) are cut to this many characters.
pub const MAX_NAME: usize = 200;
/// The longest email address there can be (RFC 5321); a longer one is not kept.
pub const MAX_EMAIL: usize = 254;
/// Notes kept about one hook's unreadable fields (the rest are counted).
const MAX_PROBLEMS: usize = 10;
/// How much of an unreadable value a note quotes.
const QUOTED: usize = 60;

/// One parsed hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// The order's reference, e.g. `REF00123456`.
    pub reference: String,
    /// What happened.
    pub action: HookAction,
    /// Quicket's event id, as text (`123`).
    pub event_id: Option<String>,
    /// The event's name as the organiser wrote it.
    pub event_name: String,
    /// The event's local start time (Quicket sends no offset).
    pub event_date: Option<NaiveDateTime>,
    /// The order's total.
    pub amount: Option<Cents>,
    /// The purchaser's address, trimmed; may be empty.
    pub email: String,
    /// The purchaser's name, taken from their own ticket when one carries their address.
    pub buyer_name: String,
    /// The tickets in the order.
    pub tickets: Vec<Ticket>,
    /// Fields that were present but could not be read.
    pub problems: Vec<String>,
    /// Identifies this exact message: equal bodies (up to key order and spacing) share it.
    pub fingerprint: String,
}

/// The `action` of a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAction {
    /// One of Quicket's four actions.
    Known(OrderState),
    /// Anything else (kept, answered `ignored`).
    Unknown(String),
}

/// One ticket of an order. Quicket's `tickets[].id` is not stable and is deliberately dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Ticket {
    /// The ticket type's name, e.g. `General`.
    #[serde(rename = "type")]
    pub ticket_type: String,
    /// The ticket's price.
    pub price: Option<Cents>,
    /// The attendee's name; empty until the buyer fills it in.
    pub attendee_name: String,
    /// The attendee's address; may be empty.
    pub attendee_email: String,
}

/// Why a body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// Not JSON at all.
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error(
        "the body is JSON but not an object (found {0}); Quicket sends one JSON object per hook"
    )]
    NotObject(&'static str),
    /// No usable `reference`.
    #[error("the hook has no \"reference\"{0}; every Quicket hook names its order")]
    MissingReference(&'static str),
}

/// Parses a hook body, reading an `event_date` with an offset in Johannesburg's time (see
/// [`parse_hook_in`]).
pub fn parse_hook(body: &[u8]) -> Result<Hook, HookError> {
    parse_hook_in(body, chrono_tz::Africa::Johannesburg)
}

/// Parses a hook body; an `event_date` that carries an offset is turned into `timezone`'s wall
/// clock (the zone the offset-less ones are read in). Caps apply: at most [`MAX_TICKETS`]
/// tickets, names of at most [`MAX_NAME`] characters, emails of at most [`MAX_EMAIL`]; a hook
/// over a cap is kept within them, with a note in `problems`.
pub fn parse_hook_in(body: &[u8], timezone: Tz) -> Result<Hook, HookError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| HookError::NotJson(e.to_string()))?;
    let object = match &value {
        Value::Object(map) => map,
        other => return Err(HookError::NotObject(kind(other))),
    };
    let reference = match object.get("reference") {
        None | Some(Value::Null) => return Err(HookError::MissingReference("")),
        Some(v) => match scalar_text(v) {
            Some(text) => clean_text(&text),
            None => return Err(HookError::MissingReference(" as text")),
        },
    };
    if reference.is_empty() {
        return Err(HookError::MissingReference(" (it is empty)"));
    }
    if reference.chars().count() > MAX_REFERENCE_LEN {
        return Err(HookError::MissingReference(" of a sensible length"));
    }

    let mut problems = Vec::new();
    let action = match object.get("action").and_then(scalar_text) {
        Some(action) => {
            let action = action.trim().to_ascii_lowercase();
            OrderState::from_action(&action)
                .map(HookAction::Known)
                .unwrap_or(HookAction::Unknown(action))
        }
        None => HookAction::Unknown(String::new()),
    };
    let event_id = object
        .get("event_id")
        .and_then(|v| read_event_id(v, &mut problems));
    let event_name = capped_name(
        "event_name",
        text_field(object, "event_name"),
        &mut problems,
    );
    let event_date = object
        .get("event_date")
        .and_then(|v| read_date(v, timezone, &mut problems));
    let amount = object
        .get("amount")
        .and_then(|v| read_cents("amount", v, &mut problems));
    let email = capped_email("email", text_field(object, "email"), &mut problems);
    let tickets: Vec<Ticket> = match object.get("tickets") {
        Some(Value::Array(items)) => {
            if items.len() > MAX_TICKETS {
                problems.push(format!(
                    "tickets: {} tickets; only the first {MAX_TICKETS} are kept",
                    items.len()
                ));
            }
            items
                .iter()
                .take(MAX_TICKETS)
                .enumerate()
                .filter_map(|(i, t)| read_ticket(i, t, &mut problems))
                .collect()
        }
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            problems.push(format!("tickets: expected a list, found {}", kind(other)));
            Vec::new()
        }
    };
    let buyer_name = buyer_name(&email, &tickets);
    if problems.len() > MAX_PROBLEMS {
        let more = problems.len() - MAX_PROBLEMS;
        problems.truncate(MAX_PROBLEMS);
        problems.push(format!("and {more} more like these"));
    }
    Ok(Hook {
        reference,
        action,
        event_id,
        event_name,
        event_date,
        amount,
        email,
        buyer_name,
        tickets,
        problems,
        fingerprint: fingerprint(&value),
    })
}

/// SHA-256 of the body's canonical JSON (serde_json keeps object keys sorted), in hex.
fn fingerprint(value: &Value) -> String {
    // Written straight into the hash (the same bytes as `value.to_string()`, without keeping
    // them), and hex-encoded without a string per byte: this runs for every hook.
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    if serde_json::to_writer(&mut hashing, value).is_err() {
        // Unreachable (a Value always serialises and the writer never fails); hash the text.
        return fingerprint_of(value.to_string().as_bytes());
    }
    hex(&hashing.0.finalize())
}

fn fingerprint_of(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A string or a number as text; anything else is `None`.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// At most [`QUOTED`] characters of a value, for a note.
fn quoted(value: &str) -> String {
    if value.chars().count() <= QUOTED {
        format!("{value:?}")
    } else {
        let start: String = value.chars().take(QUOTED).collect();
        format!("{start:?}... ({} characters)", value.chars().count())
    }
}

/// A name cut to [`MAX_NAME`] characters, with a note when it was longer (one note per field:
/// `tickets[].attendee_name`, not one per ticket).
fn capped_name(field: &str, name: String, problems: &mut Vec<String>) -> String {
    let length = name.chars().count();
    if length <= MAX_NAME {
        return name;
    }
    let note = format!("{field}: longer than {MAX_NAME} characters; cut to {MAX_NAME}");
    if !problems.contains(&note) {
        problems.push(note);
    }
    name.chars()
        .take(MAX_NAME)
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// An address longer than [`MAX_EMAIL`] cannot be one: it is not kept (never cut: a cut address
/// would be someone else's).
fn capped_email(field: &str, email: String, problems: &mut Vec<String>) -> String {
    if email.chars().count() <= MAX_EMAIL {
        return email;
    }
    let note = format!("{field}: longer than {MAX_EMAIL} characters, so not an address; not kept");
    if !problems.contains(&note) {
        problems.push(note);
    }
    String::new()
}

fn text_field(object: &Map<String, Value>, key: &str) -> String {
    object
        .get(key)
        .and_then(scalar_text)
        .map(|t| clean_text(&t))
        .unwrap_or_default()
}

fn read_event_id(value: &Value, problems: &mut Vec<String>) -> Option<String> {
    let (id, text) = match value {
        Value::Null => return None,
        // Integral floats such as 123.0 are still the event 123.
        Value::Number(n) => {
            let whole = n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 1.0 && f.fract() == 0.0 && *f < 1e15)
                    .map(|f| f as u64)
            });
            (whole.and_then(EventId::from_number), n.to_string())
        }
        Value::String(s) => {
            let text = clean_text(s);
            if text.is_empty() {
                return None;
            }
            (EventId::parse(&text), text)
        }
        other => {
            problems.push(format!(
                "event_id: expected a number, found {}",
                kind(other)
            ));
            return None;
        }
    };
    if id.is_none() {
        // Kept without its event (no reminder can be about an event it cannot name), rather than
        // lost: Quicket does not send a hook twice.
        problems.push(format!(
            "event_id: {} is not a Quicket event id (a whole number)",
            quoted(&text)
        ));
    }
    id.map(|id| id.to_string())
}

fn read_cents(field: &str, value: &Value, problems: &mut Vec<String>) -> Option<Cents> {
    let text = match value {
        Value::Null => return None,
        Value::String(s) if s.trim().is_empty() => return None,
        other => scalar_text(other),
    };
    let Some(text) = text else {
        problems.push(format!("{field}: {} is not an amount", kind(value)));
        return None;
    };
    match parse_amount(&text) {
        Ok(cents) => Some(cents),
        Err(e @ (AmountError::Unreadable | AmountError::Ambiguous)) => {
            // Unknown, never guessed: a wrong amount would skew what the reminders recovered.
            problems.push(format!("{field}: {} {e}", quoted(&text)));
            None
        }
    }
}

/// Wall-clock forms: the sample's (`2015-02-18 17:15`), ISO's with `T`, seconds and fractions.
const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
];

/// The same with an offset (`+02:00`, `+0200`, `+02`; `Z` is read as `+00:00`).
const OFFSET_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%d %H:%M%#z",
    "%Y-%m-%dT%H:%M:%S%#z",
    "%Y-%m-%d %H:%M:%S%#z",
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
];

/// Reads an event date as written; one with an offset is turned into `timezone`'s wall clock.
pub fn parse_event_date(text: &str, timezone: Tz) -> Option<NaiveDateTime> {
    let text = text.trim();
    if let Some(local) = DATE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    {
        return Some(local);
    }
    // A date alone: the event starts that day; midnight is the safe reading for "too close".
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return day.and_hms_opt(0, 0, 0);
    }
    let zulu = text
        .strip_suffix(['Z', 'z'])
        .map(|t| format!("{}+00:00", t.trim_end()));
    let with_offset = zulu.as_deref().unwrap_or(text);
    OFFSET_FORMATS
        .iter()
        .find_map(|f| chrono::DateTime::parse_from_str(with_offset, f).ok())
        .or_else(|| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map(|d| d.with_timezone(&timezone).naive_local())
}

fn read_date(value: &Value, timezone: Tz, problems: &mut Vec<String>) -> Option<NaiveDateTime> {
    let text = match value {
        Value::Null => return None,
        Value::String(s) => s.trim().to_string(),
        other => {
            problems.push(format!("event_date: expected text, found {}", kind(other)));
            return None;
        }
    };
    if text.is_empty() {
        return None;
    }
    let parsed = parse_event_date(&text, timezone);
    if parsed.is_none() {
        problems.push(format!(
            "event_date: {} is not a date like \"2026-12-12 18:30\"; no reminder can be held back before this event",
            quoted(&text)
        ));
    }
    parsed
}

fn read_ticket(index: usize, value: &Value, problems: &mut Vec<String>) -> Option<Ticket> {
    let Value::Object(t) = value else {
        problems.push(format!(
            "tickets[{index}]: expected an object, found {}",
            kind(value)
        ));
        return None;
    };
    Some(Ticket {
        ticket_type: capped_name(
            "tickets[].ticket_type",
            text_field(t, "ticket_type"),
            problems,
        ),
        price: t
            .get("price")
            .and_then(|v| read_cents(&format!("tickets[{index}].price"), v, problems)),
        attendee_name: capped_name(
            "tickets[].attendee_name",
            text_field(t, "attendee_name"),
            problems,
        ),
        attendee_email: capped_email(
            "tickets[].attendee_email",
            text_field(t, "attendee_email"),
            problems,
        ),
    })
}

/// Quicket's hook has no buyer name; the buyer's own ticket (same address) usually carries it.
fn buyer_name(email: &str, tickets: &[Ticket]) -> String {
    let own = tickets.iter().find(|t| {
        !t.attendee_name.is_empty()
            && !email.is_empty()
            && t.attendee_email.eq_ignore_ascii_case(email)
    });
    own.or_else(|| tickets.iter().find(|t| !t.attendee_name.is_empty()))
        .map(|t| t.attendee_name.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"reference":"REF1","event_id":123,"event_name":"My Big Event",
        "amount":300.00,"email":" Demo@Example.com ","event_date":"2015-02-18 17:15",
        "action":"checkout_started","extra":{"nested":[1,2]},
        "tickets":[{"id":122,"attendee_name":"","attendee_email":"","ticket_type":"General","price":150.00,"barcode":0},
                   {"id":122,"attendee_name":"Pieter","attendee_email":"p@x.co.za","ticket_type":"General","price":"150","barcode":"0"}]}"#;

    #[test]
    fn parses_the_documented_sample_and_ignores_unknown_fields() {
        let hook = parse_hook(SAMPLE.as_bytes()).unwrap();
        assert_eq!(hook.reference, "REF1");
        assert_eq!(hook.action, HookAction::Known(OrderState::Started));
        assert_eq!(hook.event_id.as_deref(), Some("123"));
        assert_eq!(hook.amount, Some(Cents(30000)));
        assert_eq!(hook.email, "Demo@Example.com");
        assert_eq!(hook.buyer_name, "Pieter");
        assert_eq!(hook.tickets.len(), 2);
        assert_eq!(hook.tickets[1].price, Some(Cents(15000)));
        assert_eq!(hook.event_date.unwrap().to_string(), "2015-02-18 17:15:00");
        assert!(hook.problems.is_empty(), "{:?}", hook.problems);
    }

    #[test]
    fn numbers_may_be_strings() {
        let body =
            br#"{"reference":123456,"event_id":"0456","amount":"450.00","action":"eft_pending"}"#;
        let hook = parse_hook(body).unwrap();
        assert_eq!(hook.reference, "123456");
        assert_eq!(hook.event_id.as_deref(), Some("456"));
        assert_eq!(hook.amount, Some(Cents(45000)));
    }

    #[test]
    fn an_event_id_is_a_whole_number_or_none_with_a_note() {
        for (written, expected) in [
            ("123", Some("123")),
            ("123.0", Some("123")),
            ("\"0456\"", Some("456")),
            ("\" 77 \"", Some("77")),
            ("\"{{7*7}}\"", None),
            ("1.5", None),
            ("\"1.5\"", None),
            ("-3", None),
            ("0", None),
            ("\"12a\"", None),
            ("\"١٢\"", None),
        ] {
            let body =
                format!(r#"{{"reference":"R","event_id":{written},"action":"checkout_started"}}"#);
            let hook = parse_hook(body.as_bytes()).unwrap();
            assert_eq!(hook.event_id.as_deref(), expected, "{written}");
            assert_eq!(
                hook.problems.len(),
                usize::from(expected.is_none()),
                "{written}: {:?}",
                hook.problems
            );
        }
    }

    #[test]
    fn unreadable_fields_become_unknown_with_a_note() {
        let body =
            br#"{"reference":"R","amount":"lots","event_date":"soon","event_id":{},"tickets":"x"}"#;
        let hook = parse_hook(body).unwrap();
        assert_eq!(hook.amount, None);
        assert_eq!(hook.event_date, None);
        assert_eq!(hook.event_id, None);
        assert_eq!(hook.action, HookAction::Unknown(String::new()));
        assert_eq!(hook.problems.len(), 4, "{:?}", hook.problems);
    }

    #[test]
    fn refuses_what_is_not_an_object_with_a_reference() {
        assert!(matches!(parse_hook(b"{"), Err(HookError::NotJson(_))));
        assert!(matches!(parse_hook(b"[1]"), Err(HookError::NotObject(_))));
        assert!(matches!(
            parse_hook(b"{}"),
            Err(HookError::MissingReference(_))
        ));
        assert!(matches!(
            parse_hook(br#"{"reference":"  "}"#),
            Err(HookError::MissingReference(_))
        ));
        assert!(matches!(
            parse_hook(br#"{"reference":["a"]}"#),
            Err(HookError::MissingReference(_))
        ));
    }

    #[test]
    fn the_fingerprint_is_the_sha256_of_the_canonical_text_as_before() {
        // Hooks stored before keep matching their repeats: the same hex of the same bytes.
        let body =
            br#"{"reference":"R1","action":"checkout_started","amount":1.5,"tickets":[{"id":1}]}"#;
        let value: Value = serde_json::from_slice(body).unwrap();
        let want: String = Sha256::digest(value.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(fingerprint(&value), want);
        assert_eq!(fingerprint_of(value.to_string().as_bytes()), want);
    }

    #[test]
    fn key_order_and_spacing_do_not_change_the_fingerprint() {
        let a = parse_hook(br#"{"reference":"R","action":"checkout_started"}"#).unwrap();
        let b = parse_hook(br#"{ "action" : "checkout_started", "reference" : "R" }"#).unwrap();
        let c = parse_hook(br#"{"reference":"R","action":"checkout_cancelled"}"#).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
    }

    #[test]
    fn event_dates_in_the_forms_they_come_in() {
        let tz = chrono_tz::Africa::Johannesburg;
        let table: &[(&str, Option<&str>)] = &[
            ("2015-02-18 17:15", Some("2015-02-18 17:15:00")),
            ("2015-02-18 17:15:30", Some("2015-02-18 17:15:30")),
            ("2015-02-18T17:15", Some("2015-02-18 17:15:00")),
            ("2015-02-18T17:15:30", Some("2015-02-18 17:15:30")),
            ("2015-02-18T17:15:30.250", Some("2015-02-18 17:15:30.250")),
            (" 2015-02-18 17:15 ", Some("2015-02-18 17:15:00")),
            ("2015/02/18 17:15", Some("2015-02-18 17:15:00")),
            ("2015-02-18", Some("2015-02-18 00:00:00")),
            // With an offset: the same instant on Johannesburg's clock.
            ("2015-02-18T17:15:30+02:00", Some("2015-02-18 17:15:30")),
            ("2015-02-18T15:15:30Z", Some("2015-02-18 17:15:30")),
            ("2015-02-18T15:15:30.5Z", Some("2015-02-18 17:15:30.500")),
            ("2015-02-18T15:15Z", Some("2015-02-18 17:15:00")),
            ("2015-02-18T17:15+02:00", Some("2015-02-18 17:15:00")),
            ("2015-02-18 17:15:00+0200", Some("2015-02-18 17:15:00")),
            ("2015-02-18 19:15+04", Some("2015-02-18 17:15:00")),
            ("2015-02-18T19:15:30+04:00", Some("2015-02-18 17:15:30")),
            // Unreadable: a problem, never a guess.
            ("soon", None),
            ("18/02/2015 17:15", None),
            ("2015-02-30 10:00", None),
            ("2015-02-18 25:00", None),
            ("17:15", None),
        ];
        for (text, expected) in table {
            assert_eq!(
                parse_event_date(text, tz).map(|d| d.to_string()).as_deref(),
                *expected,
                "{text:?}"
            );
        }
        let hook = parse_hook(br#"{"reference":"R","event_date":"next Friday"}"#).unwrap();
        assert_eq!(hook.event_date, None);
        assert!(
            hook.problems[0].starts_with("event_date:"),
            "{:?}",
            hook.problems
        );
    }

    #[test]
    fn an_ambiguous_amount_is_unknown_with_a_note_never_a_guess() {
        let hook =
            parse_hook(br#"{"reference":"R","amount":"R350,00","tickets":[{"price":"1,5"}]}"#)
                .unwrap();
        assert_eq!(hook.amount, Some(Cents(35_000)));
        assert_eq!(hook.tickets[0].price, None);
        assert_eq!(hook.problems.len(), 1, "{:?}", hook.problems);
        assert!(
            hook.problems[0].contains("tickets[0].price")
                && hook.problems[0].contains("more than one"),
            "{:?}",
            hook.problems
        );
    }

    #[test]
    fn caps_keep_a_huge_hook_small_and_say_so() {
        let long = "x".repeat(50_000);
        // Long names on the first tickets, price notes on all: one note per field, not per ticket.
        let tickets: Vec<serde_json::Value> = (0..10_000)
            .map(|i| {
                let name = if i < 3 { long.clone() } else { format!("A{i}") };
                serde_json::json!({"ticket_type": name, "attendee_name": name,
                                   "attendee_email": format!("{name}@mail.co.za"), "price": "x"})
            })
            .collect();
        let body = serde_json::json!({"reference": "R", "action": "checkout_started",
            "event_name": long, "email": format!("{long}@mail.co.za"), "tickets": tickets});
        let hook = parse_hook(body.to_string().as_bytes()).unwrap();
        assert_eq!(hook.tickets.len(), MAX_TICKETS);
        assert_eq!(hook.event_name.chars().count(), MAX_NAME);
        assert_eq!(hook.email, "");
        assert!(
            hook.tickets
                .iter()
                .all(|t| t.attendee_name.chars().count() <= MAX_NAME
                    && t.ticket_type.chars().count() <= MAX_NAME)
        );
        assert!(
            hook.tickets[..3]
                .iter()
                .all(|t| t.attendee_email.is_empty())
        );
        assert_eq!(hook.tickets[3].attendee_email, "A3@mail.co.za");
        assert!(hook.buyer_name.chars().count() <= MAX_NAME);
        let notes = hook.problems.join("; ");
        assert!(
            notes.contains("10000 tickets; only the first 100"),
            "{notes}"
        );
        assert!(notes.contains("event_name: longer than 200"), "{notes}");
        assert!(
            notes.len() < 2_000,
            "the notes stay short: {} bytes",
            notes.len()
        );
    }

    #[test]
    fn invisible_formatting_characters_are_removed_from_names() {
        let body = "{\"reference\":\"R\",\"event_name\":\"Jazz \u{202e}nwaL\u{202c}\",\"tickets\":[{\"attendee_name\":\"\u{2067}Ann\u{2069}\u{200b}\"}]}";
        let hook = parse_hook(body.as_bytes()).unwrap();
        assert_eq!(hook.event_name, "Jazz nwaL");
        assert_eq!(hook.tickets[0].attendee_name, "Ann");
    }
}
