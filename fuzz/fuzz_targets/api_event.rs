//! `quicket_api::parse_event` on any bytes (what Quicket's API, or anything pretending to be it,
//! answers): never panics, keeps only web URLs and clean text, and what it returns survives the
//! JSON round trip through the `event_info` table unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicket_followup::events::EventInfo;
use quicket_followup::quicket_api::parse_event;

fuzz_target!(|body: &[u8]| {
    let Ok(info) = parse_event(body, chrono_tz::Africa::Johannesburg) else {
        return;
    };
    // Links put into emails: http(s) only (never javascript:, data: or a bare path).
    for (field, url) in [("url", &info.url), ("image_url", &info.image_url)] {
        if let Some(url) = url {
            assert!(
                url.starts_with("http://") || url.starts_with("https://"),
                "{field} {url:?} accepted"
            );
            assert!(!url.chars().any(char::is_control), "control character in {field}");
        }
    }
    // Text shown in emails: no line breaks or other control characters.
    let texts = [Some(&info.name), info.venue.as_ref()];
    for text in texts.into_iter().flatten() {
        assert!(!text.chars().any(char::is_control), "control character in {text:?}");
    }
    for t in &info.ticket_types {
        assert!(!t.name.is_empty() && !t.name.chars().any(char::is_control), "ticket type {:?}", t.name);
    }
    // Stored as JSON and read back by every pass: the same value.
    let stored = serde_json::to_string(&info).expect("an EventInfo serializes");
    let back: EventInfo = serde_json::from_str(&stored).expect("a stored EventInfo reads back");
    assert_eq!(back, info, "JSON round trip changed the event");
    // Deterministic.
    assert_eq!(parse_event(body, chrono_tz::Africa::Johannesburg).ok(), Some(info));
});
