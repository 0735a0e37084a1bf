//! Quicket's public API (`GET {api_url}/api/events/{id}?api_key=KEY`): one lookup of one event,
//! read leniently into an [`EventInfo`]. Nothing here is needed for reminders to go out; see
//! [`crate::events`] for how lookups are cached, paced and fallen back from.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use crate::config::QuicketConfig;
use crate::domain::{EventInfo, TicketTypeInfo};

/// Largest answer read; an event with every ticket type and description is a few tens of KiB.
const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// How long to wait after a 429 that did not say (`Retry-After` missing or unreadable).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Longest `Retry-After` honoured as given.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Why a lookup gave nothing. None of these stops a reminder: the emails fall back to the
/// configured URL pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// 401 or 403: the key is wrong or lacks access.
    #[error("Quicket refused the API key (HTTP {0}): check quicket.api_key")]
    Unauthorized(u16),
    /// 404, or an answer with no event in it.
    #[error("Quicket's API does not know this event (HTTP 404)")]
    NotFound,
    /// 429: asked to slow down; no request before `retry_after` has passed.
    #[error("Quicket asked us to slow down (HTTP 429); next lookup in {}", humantime::format_duration(*.retry_after))]
    RateLimited {
        /// From the `Retry-After` header.
        retry_after: Duration,
    },
    /// No full answer within `quicket.timeout`.
    #[error("no answer from Quicket's API within {} (quicket.timeout)", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// Any other unexpected status.
    #[error("Quicket's API answered HTTP {0}")]
    Status(u16),
    /// The connection failed.
    #[error("cannot reach Quicket's API: {0}")]
    Network(String),
    /// Not asked: the API is left alone after a 429 or a refused key.
    #[error("not asked, the API is paused after: {0}")]
    Paused(String),
    /// No key is set.
    #[error("no quicket.api_key is set")]
    NoKey,
    /// A 200 whose body is not an event.
    #[error("Quicket's API answered something that is not an event: {0}")]
    Garbage(String),
}

/// A client for the API, made only when a key is set.
pub struct QuicketApi {
    http: crate::http_client::HttpsClient,
    base: String,
    key: String,
    timeout: Duration,
}

impl QuicketApi {
    /// The client for `[quicket]`, or `None` when no key is set.
    pub fn from_config(config: &QuicketConfig) -> anyhow::Result<Option<QuicketApi>> {
        let key = config.api_key.trim();
        if key.is_empty() {
            return Ok(None);
        }
        Ok(Some(QuicketApi {
            http: crate::http_client::https_client("Quicket's API")?,
            base: config.base(),
            key: key.to_string(),
            timeout: config.timeout,
        }))
    }

    /// Looks one event up, within `quicket.timeout`. Event dates without an offset are read in `tz`.
    pub async fn event(&self, event_id: &str, tz: Tz) -> Result<EventInfo, LookupError> {
        let mut url = url::Url::parse(&format!("{}/api/events/", self.base))
            .map_err(|e| LookupError::Network(format!("quicket.api_url is not a URL: {e}")))?;
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push(event_id);
        }
        url.query_pairs_mut().append_pair("api_key", &self.key);
        match tokio::time::timeout(self.timeout, self.get(url.as_str(), tz)).await {
            Ok(result) => result,
            Err(_) => Err(LookupError::Timeout(self.timeout)),
        }
    }

    async fn get(&self, url: &str, tz: Tz) -> Result<EventInfo, LookupError> {
        let request = hyper::Request::get(url)
            .header("accept", "application/json")
            .header(
                "user-agent",
                concat!("quicket-followup/", env!("CARGO_PKG_VERSION")),
            )
            .body(http_body_util::Empty::new())
            .map_err(|e| LookupError::Network(e.to_string()))?;
        // Errors are described without the URL, which holds the key.
        let answer = self
            .http
            .request(request)
            .await
            .map_err(|e| LookupError::Network(crate::error_chain(e)))?;
        let status = answer.status().as_u16();
        match status {
            200..=299 => {}
            401 | 403 => return Err(LookupError::Unauthorized(status)),
            404 => return Err(LookupError::NotFound),
            429 => {
                let header = answer
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok());
                return Err(LookupError::RateLimited {
                    retry_after: retry_after(header, Utc::now()),
                });
            }
            other => return Err(LookupError::Status(other)),
        }
        use http_body_util::BodyExt;
        let body = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| LookupError::Garbage(format!("the answer could not be read: {e}")))?
            .to_bytes();
        parse_event(&body, tz)
    }
}

/// How long a `Retry-After` header asks to wait: seconds, or an HTTP date.
pub fn retry_after(header: Option<&str>, now: DateTime<Utc>) -> Duration {
    let Some(text) = header.map(str::trim) else {
        return DEFAULT_RETRY_AFTER;
    };
    let wait = if let Ok(seconds) = text.parse::<u64>() {
        Duration::from_secs(seconds)
    } else if let Ok(at) = DateTime::parse_from_rfc2822(text) {
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    } else {
        DEFAULT_RETRY_AFTER
    };
    wait.min(MAX_RETRY_AFTER)
}

/// Reads the API's answer for one event. Lenient about the envelope (the event itself, or
/// `{"results": [event]}`, or `{"results": event}`), key case, and numbers or booleans as strings.
pub fn parse_event(body: &[u8], tz: Tz) -> Result<EventInfo, LookupError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| LookupError::Garbage(format!("not JSON ({e})")))?;
    let Value::Object(top) = value else {
        return Err(LookupError::Garbage("not a JSON object".into()));
    };
    let envelope = ["results", "event", "data"]
        .iter()
        .find_map(|key| field(&top, key).filter(|v| v.is_array() || v.is_object()));
    let event = match envelope {
        Some(Value::Array(items)) => match items.first() {
            Some(Value::Object(first)) => first,
            Some(_) => return Err(LookupError::Garbage("results[0] is not an object".into())),
            None => return Err(LookupError::NotFound),
        },
        Some(Value::Object(inner)) => inner,
        _ => &top,
    };
    if ["id", "name", "url"]
        .iter()
        .all(|key| field(event, key).is_none())
    {
        return Err(LookupError::Garbage("it has no id, name or url".into()));
    }
    let venue = match field(event, "venue") {
        Some(Value::Object(venue)) => text(venue, "name"),
        Some(Value::String(name)) => clean(name),
        _ => None,
    };
    let tickets = field(event, "tickets")
        .or_else(|| field(event, "ticketTypes"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_object)
                .filter_map(|t| {
                    Some(TicketTypeInfo {
                        name: text(t, "name")?,
                        sold_out: flag(t, "soldOut"),
                        sales_end: text(t, "salesEnd").and_then(|d| api_time(&d, tz)),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let schedules = field(event, "schedules")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Ok(EventInfo {
        name: text(event, "name").unwrap_or_default(),
        url: text(event, "url").and_then(|u| web_url(&u)),
        image_url: text(event, "imageUrl").and_then(|u| web_url(&u)),
        venue,
        starts: text(event, "startDate").and_then(|d| api_time(&d, tz)),
        ends: text(event, "endDate").and_then(|d| api_time(&d, tz)),
        schedules: u32::try_from(schedules).unwrap_or(u32::MAX),
        ticket_types: tickets,
        sales_ended: flag(event, "salesEnded"),
        sales_end: text(event, "salesEnd")
            .or_else(|| text(event, "salesEndDate"))
            .and_then(|d| api_time(&d, tz)),
    })
}

/// A key of an object, matched without regard to case (`imageUrl`, `imageURL`, `ImageUrl`).
fn field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    match field(object, key)? {
        Value::String(s) => clean(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn clean(text: &str) -> Option<String> {
    let cleaned = crate::domain::clean_text(text);
    (!cleaned.is_empty()).then_some(cleaned)
}

fn flag(object: &Map<String, Value>, key: &str) -> bool {
    match field(object, key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
        Some(Value::String(s)) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1"),
        _ => false,
    }
}

/// An http(s) URL as links can use it; protocol-relative `//host/...` becomes `https://host/...`.
fn web_url(text: &str) -> Option<String> {
    let text = text.trim();
    let url = if let Some(rest) = text.strip_prefix("//") {
        format!("https://{rest}")
    } else {
        text.to_string()
    };
    let parsed = url::Url::parse(&url).ok()?;
    // The parsed form, not the text: `http:./x` parses (as `http://./x`) but is no link to send.
    (matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some())
        .then(|| parsed.to_string())
}

/// A time from the API as local wall-clock time in `tz`: with an offset it is converted; without
/// one it is taken as local already.
pub fn api_time(text: &str, tz: Tz) -> Option<NaiveDateTime> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&tz).naive_local());
    }
    let naive = text.trim_end_matches('Z');
    let local = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(naive, format).ok())?;
    if naive.len() < text.len() {
        // A trailing Z without the rest of RFC 3339 (e.g. no seconds): UTC.
        return Some(local.and_utc().with_timezone(&tz).naive_local());
    }
    Some(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TZ: Tz = chrono_tz::Africa::Johannesburg;

    #[test]
    fn reads_the_event_in_any_envelope() {
        let event = r#"{"id": 170781, "name": "Hymns", "url": "https://www.quicket.co.za/events/170781-hymns/",
            "imageUrl": "//images.quicket.co.za/0123.jpg", "venue": {"name": "City Hall"},
            "startDate": "2026-12-20T18:00:00", "tickets": [{"name": "General", "soldOut": true, "salesEnd": "2026-12-20T17:00:00"}]}"#;
        for body in [
            event.to_string(),
            format!(r#"{{"results": [{event}], "statusCode": 200}}"#),
            format!(r#"{{"results": {event}}}"#),
        ] {
            let info = parse_event(body.as_bytes(), TZ).unwrap();
            assert_eq!(
                info.url.as_deref(),
                Some("https://www.quicket.co.za/events/170781-hymns/")
            );
            assert_eq!(
                info.image_url.as_deref(),
                Some("https://images.quicket.co.za/0123.jpg")
            );
            assert_eq!(info.venue.as_deref(), Some("City Hall"));
            assert_eq!(
                info.starts.unwrap().to_string(),
                "2026-12-20 18:00:00".to_string()
            );
            assert!(info.ticket_types[0].sold_out);
        }
    }

    #[test]
    fn event_level_sales_end() {
        let info = parse_event(br#"{"event": {"id": 1, "salesEnded": true}}"#, TZ).unwrap();
        assert!(info.sales_ended);
        let info = parse_event(
            br#"{"data": {"id": 1, "salesEndDate": "2026-12-01T10:00:00"}}"#,
            TZ,
        )
        .unwrap();
        assert_eq!(info.sales_end.unwrap().to_string(), "2026-12-01 10:00:00");
        let now = NaiveDateTime::parse_from_str("2026-12-01 10:00", "%Y-%m-%d %H:%M").unwrap();
        assert!(info.sold_out_for(&[], now));
        assert!(!info.sold_out_for(&[], now - chrono::TimeDelta::minutes(1)));
    }

    #[test]
    fn the_base_url_may_end_in_api() {
        for base in ["http://127.0.0.1:9/api/", "http://127.0.0.1:9"] {
            let config = QuicketConfig {
                api_key: "k".into(),
                api_url: base.into(),
                ..QuicketConfig::default()
            };
            let api = QuicketApi::from_config(&config).unwrap().unwrap();
            assert_eq!(api.base, "http://127.0.0.1:9");
        }
        assert!(
            QuicketApi::from_config(&QuicketConfig::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn garbage_and_empty_answers_are_errors() {
        assert!(matches!(
            parse_event(b"<html>", TZ),
            Err(LookupError::Garbage(_))
        ));
        assert!(matches!(
            parse_event(b"[1,2]", TZ),
            Err(LookupError::Garbage(_))
        ));
        assert!(matches!(
            parse_event(b"{\"foo\": 1}", TZ),
            Err(LookupError::Garbage(_))
        ));
        assert_eq!(
            parse_event(b"{\"results\": []}", TZ),
            Err(LookupError::NotFound)
        );
    }

    #[test]
    fn only_web_urls_are_kept() {
        let body =
            br#"{"id": 1, "url": "javascript:alert(1)", "imageUrl": "data:image/png;base64,AAAA"}"#;
        let info = parse_event(body, TZ).unwrap();
        assert_eq!(info.url, None);
        assert_eq!(info.image_url, None);
        // Found by fuzzing: a URL without "//" is written out in full.
        let info = parse_event(br#"{"id": 1, "url": "http:./t/x"}"#, TZ).unwrap();
        assert!(info.url.unwrap().starts_with("http://"));
    }

    #[test]
    fn lenient_about_strings_for_flags_and_key_case() {
        let body = br#"{"ID": "5", "Tickets": [{"Name": "VIP", "SoldOut": "true"}, {"name": "GA", "soldOut": 0}]}"#;
        let info = parse_event(body, TZ).unwrap();
        assert_eq!(info.ticket_types.len(), 2);
        assert!(info.ticket_types[0].sold_out);
        assert!(!info.ticket_types[1].sold_out);
    }

    #[test]
    fn times_with_an_offset_are_converted_to_the_zone() {
        assert_eq!(
            api_time("2026-12-20T16:00:00Z", TZ).unwrap().to_string(),
            "2026-12-20 18:00:00"
        );
        assert_eq!(
            api_time("2026-12-20 18:00", TZ).unwrap().to_string(),
            "2026-12-20 18:00:00"
        );
        assert_eq!(api_time("next week", TZ), None);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(retry_after(Some("120"), now), Duration::from_secs(120));
        assert_eq!(
            retry_after(Some("Fri, 27 Nov 2026 10:05:00 GMT"), now),
            Duration::from_secs(300)
        );
        assert_eq!(retry_after(None, now), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(Some("soon"), now), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after(Some("999999999"), now), MAX_RETRY_AFTER);
    }
}
