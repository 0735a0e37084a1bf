//! The small parsers of outside values: amounts, addresses, free text, the send window and cron.
//! Never panic; amounts are non-negative and survive a round trip; cleaned text is clean.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicket_followup::config::{SendWindow, parse_cron};
use quicket_followup::domain::{Cents, check_deliverable, clean_text, email_key};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Some(cents) = Cents::parse_decimal(text) {
        assert!(cents.0 >= 0, "parse_decimal({text:?}) = {cents:?}");
        let decimal = cents.to_decimal();
        assert_eq!(
            Cents::parse_decimal(&decimal),
            Some(cents),
            "{text:?} -> {cents:?} -> {decimal:?} does not parse back"
        );
    }

    if check_deliverable(text).is_ok() {
        // Whatever is deliverable is one address: it cannot carry a header.
        let key = email_key(text);
        assert!(!key.is_empty());
        assert!(!key.contains(['\r', '\n']), "deliverable {text:?}");
    }

    let cleaned = clean_text(text);
    assert!(!cleaned.chars().any(char::is_control), "{cleaned:?}");
    assert_eq!(cleaned, cleaned.trim(), "{cleaned:?} not trimmed");
    assert!(!cleaned.contains("  "), "{cleaned:?} has a double space");
    assert_eq!(clean_text(&cleaned), cleaned, "clean_text not idempotent");

    if let Ok(window) = SendWindow::parse(text) {
        let shown = window.to_string();
        assert_eq!(
            SendWindow::parse(&shown),
            Ok(window),
            "{text:?} -> {shown:?} does not parse back"
        );
    }

    // Cron parsing (the schedule.scan key) must not panic or hang on any expression.
    let _ = parse_cron(text);
});
