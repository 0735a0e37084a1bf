//! `quicket::parse_hook` on any bytes: never panics, and what it accepts is clean.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicket_followup::quicket::{HookAction, parse_hook};

fuzz_target!(|body: &[u8]| {
    let Ok(hook) = parse_hook(body) else {
        return;
    };

    // The reference keys the order: non-empty, bounded, nothing that could break a line or header.
    assert!(!hook.reference.is_empty(), "empty reference accepted");
    assert!(
        hook.reference.chars().count() <= 100,
        "reference of {} characters accepted",
        hook.reference.chars().count()
    );
    assert!(
        !hook.reference.chars().any(char::is_control),
        "control character in reference {:?}",
        hook.reference
    );

    // Text that ends up in email headers and bodies: no line breaks.
    for (field, text) in [
        ("email", &hook.email),
        ("buyer_name", &hook.buyer_name),
        ("event_name", &hook.event_name),
    ] {
        assert!(
            !text.contains(['\r', '\n']),
            "line break in {field}: {text:?}"
        );
    }
    for (i, ticket) in hook.tickets.iter().enumerate() {
        for (field, text) in [
            ("ticket_type", &ticket.ticket_type),
            ("attendee_name", &ticket.attendee_name),
            ("attendee_email", &ticket.attendee_email),
        ] {
            assert!(
                !text.contains(['\r', '\n']),
                "line break in tickets[{i}].{field}: {text:?}"
            );
        }
        if let Some(price) = ticket.price {
            assert!(price.0 >= 0, "negative tickets[{i}].price {price:?}");
        }
    }

    // Money is never negative.
    if let Some(amount) = hook.amount {
        assert!(amount.0 >= 0, "negative amount {amount:?}");
    }

    // An event id, when there is one, is a usable key.
    if let Some(id) = &hook.event_id {
        assert!(
            !id.is_empty() && !id.chars().any(char::is_whitespace),
            "event_id {id:?}"
        );
    }

    // The action is lower-case and trimmed whatever was sent.
    if let HookAction::Unknown(action) = &hook.action {
        assert_eq!(action, action.trim(), "untrimmed action");
    }

    // The fingerprint is a SHA-256 in hex and the parse is deterministic.
    assert_eq!(hook.fingerprint.len(), 64);
    assert!(hook.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
    let again = parse_hook(body).expect("the same body parsed twice must be accepted twice");
    assert_eq!(
        hook.fingerprint, again.fingerprint,
        "fingerprint not stable"
    );
    assert_eq!(hook, again, "parse not deterministic");
});
