//! The one Quicket hook the tests post, and the ways to change it.

use serde_json::{Value, json};

/// A hook body, as Quicket POSTs it. [`hook`] makes the usual one; each method changes one thing.
#[derive(Debug, Clone)]
pub struct Hook(Value);

/// A hook with the given reference and action: Lerato Dlamini (lerato@mail.co.za) buying one
/// R450 VIP ticket for "Jazz on the Lawn", event 456 on 2030-12-12 18:30 (a future event).
pub fn hook(reference: &str, action: &str) -> Hook {
    Hook(json!({
        "reference": reference,
        "event_id": 456,
        "event_name": "Jazz on the Lawn",
        "amount": 450.00,
        "email": "lerato@mail.co.za",
        "event_date": "2030-12-12 18:30",
        "action": action,
        "tickets": [{"id": 1, "attendee_name": "Lerato Dlamini", "attendee_email": "lerato@mail.co.za",
                     "ticket_type": "VIP", "price": 450.00, "barcode": 0}]
    }))
}

impl Hook {
    /// The buyer's address, also on the first ticket (the buyer's own).
    pub fn email(mut self, email: &str) -> Hook {
        self.0["email"] = email.into();
        if let Some(ticket) = self.first_ticket() {
            ticket["attendee_email"] = email.into();
        }
        self
    }

    /// The event's start as Quicket writes it (local time, `2030-12-12 18:30`).
    pub fn event_date(mut self, date: &str) -> Hook {
        self.0["event_date"] = date.into();
        self
    }

    /// Another event.
    pub fn event_id(mut self, id: u64) -> Hook {
        self.0["event_id"] = id.into();
        self
    }

    /// The event's name.
    pub fn event_name(mut self, name: &str) -> Hook {
        self.0["event_name"] = name.into();
        self
    }

    /// The order's amount, as a number or as text (`"100.00"`).
    pub fn amount(mut self, amount: impl Into<Value>) -> Hook {
        self.0["amount"] = amount.into();
        self
    }

    /// The first ticket's type.
    pub fn ticket_type(mut self, kind: &str) -> Hook {
        if let Some(ticket) = self.first_ticket() {
            ticket["ticket_type"] = kind.into();
        }
        self
    }

    /// The name on the first ticket.
    pub fn attendee_name(mut self, name: &str) -> Hook {
        if let Some(ticket) = self.first_ticket() {
            ticket["attendee_name"] = name.into();
        }
        self
    }

    /// An order with no tickets listed.
    pub fn no_tickets(mut self) -> Hook {
        self.0["tickets"] = json!([]);
        self
    }

    /// The body as JSON, to change further.
    pub fn json(&self) -> Value {
        self.0.clone()
    }

    fn first_ticket(&mut self) -> Option<&mut Value> {
        self.0["tickets"].get_mut(0)
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Hook> for reqwest::Body {
    fn from(hook: Hook) -> reqwest::Body {
        hook.to_string().into()
    }
}

impl From<Hook> for Vec<u8> {
    fn from(hook: Hook) -> Vec<u8> {
        hook.to_string().into_bytes()
    }
}
