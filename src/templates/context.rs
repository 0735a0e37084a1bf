//! What a template sees: the values (`buyer`, `event`, `order`, `reminder`, `links`, `organiser`),
//! made from a stored order, or the sample data every template is checked with.

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::domain::{Cents, EventInfo};
use crate::links::LinkUrls;
use crate::store::OrderRecord;

/// Everything a template may name (the README's "Editing the emails", plus `organiser.name`).
#[derive(Debug, Clone, Serialize)]
pub struct EmailContext {
    /// `buyer.email`, `buyer.name`, `buyer.first_name`
    pub buyer: BuyerContext,
    /// `event.id`, `event.name`, `event.date`, `event.starts_at`, `event.url`
    pub event: EventContext,
    /// `order.reference`, `order.status`, `order.amount`, `order.tickets[]`
    pub order: OrderContext,
    /// `reminder.name`, `reminder.number`
    pub reminder: ReminderContext,
    /// `links.event` (tracked), `links.unsubscribe`
    pub links: LinksContext,
    /// `organiser.name`: the display name of `email.from`.
    pub organiser: OrganiserContext,
}

/// `buyer.*`
#[derive(Debug, Clone, Serialize)]
pub struct BuyerContext {
    /// The address.
    pub email: String,
    /// The full name, possibly empty.
    pub name: String,
    /// The first word of the name, possibly empty.
    pub first_name: String,
}

/// `event.*`
#[derive(Debug, Clone, Serialize)]
pub struct EventContext {
    /// Quicket's event id.
    pub id: String,
    /// The event's name.
    pub name: String,
    /// The start, written for people ("Saturday 12 December 2026 at 18:30"); empty when unknown.
    pub date: String,
    /// The start as a local date-time ("2026-12-12 18:30") for the `date` filter to format as the
    /// organiser likes (`{{ event.starts_at|date("%-d %b") }}`); empty when unknown.
    pub starts_at: String,
    /// The event's page (untracked).
    pub url: String,
    /// The event's image (from Quicket's API, `https://...`); empty when unknown.
    pub image_url: String,
    /// The venue's name (from Quicket's API); empty when unknown.
    pub venue: String,
}

/// `order.*`
#[derive(Debug, Clone, Serialize)]
pub struct OrderContext {
    /// Quicket's order reference.
    pub reference: String,
    /// The order's state by action name.
    pub status: String,
    /// The total, formatted (`R1,250.00`, or `free`).
    pub amount: String,
    /// The tickets.
    pub tickets: Vec<TicketContext>,
}

/// `order.tickets[]`
#[derive(Debug, Clone, Serialize)]
pub struct TicketContext {
    /// The ticket type.
    #[serde(rename = "type")]
    pub ticket_type: String,
    /// The price, formatted.
    pub price: String,
    /// The attendee's name, possibly empty.
    pub attendee_name: String,
}

/// `reminder.*`
#[derive(Debug, Clone, Serialize)]
pub struct ReminderContext {
    /// The step's name.
    pub name: String,
    /// 1 for the first email to this buyer about this event, 2 for the second ...
    pub number: u32,
}

/// `links.*`
#[derive(Debug, Clone, Serialize)]
pub struct LinksContext {
    /// The tracked link to the event's page.
    pub event: String,
    /// The unsubscribe page.
    pub unsubscribe: String,
}

/// `organiser.*`
#[derive(Debug, Clone, Serialize)]
pub struct OrganiserContext {
    /// The display name of `email.from`, possibly empty.
    pub name: String,
}

impl EmailContext {
    /// The values for a reminder about `order` to `email`: the event's page `event_url`, what
    /// Quicket's API said about the event (`info`), the email's links and the organiser's name.
    pub fn for_order(
        order: &OrderRecord,
        email: &str,
        event_url: String,
        info: Option<&EventInfo>,
        reminder: ReminderContext,
        links: &LinkUrls,
        organiser: String,
    ) -> EmailContext {
        let hook_date = order.event_date.as_deref().and_then(|d| {
            NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M")
                .or_else(|_| NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M:%S"))
                .ok()
        });
        let event_date = match info {
            Some(info) => info.start_for(hook_date),
            None => hook_date,
        };
        EmailContext {
            buyer: BuyerContext {
                email: email.to_string(),
                name: order.buyer_name.clone(),
                first_name: first_name(&order.buyer_name),
            },
            event: EventContext {
                id: order.event_id.clone().unwrap_or_default(),
                name: order.event_name.clone(),
                date: format_date(event_date),
                starts_at: starts_at(event_date),
                url: event_url,
                image_url: info.and_then(|i| i.image_url.clone()).unwrap_or_default(),
                venue: info.and_then(|i| i.venue.clone()).unwrap_or_default(),
            },
            order: OrderContext::of(order),
            reminder,
            links: LinksContext {
                event: links.event.clone(),
                unsubscribe: links.unsubscribe.clone(),
            },
            organiser: OrganiserContext { name: organiser },
        }
    }
}

impl OrderContext {
    /// An order's values, amounts formatted.
    fn of(order: &OrderRecord) -> OrderContext {
        let cents = |rands: Option<f64>| rands.map(|r| Cents((r * 100.0).round() as i64));
        OrderContext {
            reference: order.reference.clone(),
            status: order.status.as_str().into(),
            amount: format_money(cents(order.amount)),
            tickets: order
                .tickets
                .iter()
                .map(|t| TicketContext {
                    ticket_type: t.ticket_type.clone(),
                    price: format_money(cents(t.price)),
                    attendee_name: t.attendee_name.clone(),
                })
                .collect(),
        }
    }
}

/// The sample data every template is rendered with at load and by `check`: the usual sample, one
/// with every optional value filled (Quicket's API's image and venue), and one with every optional
/// value empty, so that a misspelt name in either branch of an `{% if %}` is caught.
pub fn sample_contexts() -> [EmailContext; 3] {
    let mut detailed = sample_context();
    detailed.event.image_url = "https://images.quicket.co.za/0456.jpg".into();
    detailed.event.venue = "Kirstenbosch Gardens".into();
    let mut empty = sample_context();
    empty.buyer.name = String::new();
    empty.buyer.first_name = String::new();
    empty.event.date = String::new();
    empty.event.starts_at = String::new();
    empty.order.amount = String::new();
    empty.order.tickets = Vec::new();
    empty.organiser.name = String::new();
    empty.reminder.number = 2;
    [sample_context(), detailed, empty]
}

/// Sample data: what `check` and start-up render every template with.
pub fn sample_context() -> EmailContext {
    EmailContext {
        buyer: BuyerContext {
            email: "lerato@mail.co.za".into(),
            name: "Lerato Dlamini".into(),
            first_name: "Lerato".into(),
        },
        event: EventContext {
            id: "456".into(),
            name: "Jazz on the Lawn".into(),
            date: "Saturday 12 December 2026 at 18:30".into(),
            starts_at: "2026-12-12 18:30".into(),
            url: "https://www.quicket.co.za/events/456/".into(),
            image_url: String::new(),
            venue: String::new(),
        },
        order: OrderContext {
            reference: "REF00987654".into(),
            status: "checkout_started".into(),
            amount: "R1,250.00".into(),
            tickets: vec![TicketContext {
                ticket_type: "VIP".into(),
                price: "R1,250.00".into(),
                attendee_name: "Lerato Dlamini".into(),
            }],
        },
        reminder: ReminderContext {
            name: "abandoned-1".into(),
            number: 1,
        },
        links: LinksContext {
            event: "http://127.0.0.1:8080/r/sample".into(),
            unsubscribe: "http://127.0.0.1:8080/unsubscribe/sample".into(),
        },
        organiser: OrganiserContext {
            name: "Tickets".into(),
        },
    }
}

/// Money as South Africans write it: `R1,250.00`; nothing to pay is "free".
pub fn format_money(amount: Option<Cents>) -> String {
    let Some(Cents(cents)) = amount else {
        return String::new();
    };
    if cents == 0 {
        return "free".into();
    }
    let rands = (cents.unsigned_abs() / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in rands.chars().enumerate() {
        if i > 0 && (rands.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}R{grouped}.{:02}", cents.unsigned_abs() % 100)
}

/// A local date and time as the `date` filter reads it: "2026-12-12 18:30"; empty when unknown.
pub fn starts_at(date: Option<NaiveDateTime>) -> String {
    date.map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// A local date and time for people: "Saturday 12 December 2026 at 18:30".
pub fn format_date(date: Option<NaiveDateTime>) -> String {
    date.map(|d| d.format("%A %-d %B %Y at %H:%M").to_string())
        .unwrap_or_default()
}

/// The first word of a full name.
pub fn first_name(name: &str) -> String {
    name.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}
