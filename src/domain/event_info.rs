//! What Quicket's API said about an event: a value the store keeps, the planner reads and the
//! templates show (the lookups themselves are `events`; the wire format is `quicket_api`).

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

/// What Quicket's API said about an event, as kept in the database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInfo {
    /// The event's name on Quicket.
    #[serde(default)]
    pub name: String,
    /// The event's page.
    #[serde(default)]
    pub url: Option<String>,
    /// The event's image, always `http(s)://`.
    #[serde(default)]
    pub image_url: Option<String>,
    /// The venue's name.
    #[serde(default)]
    pub venue: Option<String>,
    /// The start, local time in `schedule.timezone`.
    #[serde(default)]
    pub starts: Option<NaiveDateTime>,
    /// The end, local time.
    #[serde(default)]
    pub ends: Option<NaiveDateTime>,
    /// How many dates (schedules) the event has; with more than one, the hook's date is the
    /// buyer's and wins over `starts`.
    #[serde(default)]
    pub schedules: u32,
    /// The ticket types on sale.
    #[serde(default)]
    pub ticket_types: Vec<TicketTypeInfo>,
    /// The API says the event's sales have ended.
    #[serde(default)]
    pub sales_ended: bool,
    /// When the event's sales end, local time.
    #[serde(default)]
    pub sales_end: Option<NaiveDateTime>,
}

/// One ticket type of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketTypeInfo {
    /// Its name, as hooks name it in `tickets[].ticket_type`.
    pub name: String,
    /// Quicket says it is sold out.
    #[serde(default)]
    pub sold_out: bool,
    /// When its sales end, local time.
    #[serde(default)]
    pub sales_end: Option<NaiveDateTime>,
}

impl EventInfo {
    /// Whether a buyer who had chosen `chosen` ticket types can no longer buy them at `now_local`:
    /// nothing of the event is on sale any more (see [`EventInfo::nothing_on_sale`]), or every
    /// type the buyer chose is sold out. Unknown names and an empty choice never count as sold
    /// out on their own.
    pub fn sold_out_for(&self, chosen: &[String], now_local: NaiveDateTime) -> bool {
        if self.nothing_on_sale(now_local) {
            return true;
        }
        let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        !chosen.is_empty()
            && chosen.iter().all(|name| {
                self.ticket_types
                    .iter()
                    .any(|t| t.sold_out && same(&t.name, name))
            })
    }

    /// Whether nothing of the event can be bought at `now_local`, whatever a buyer chose: its
    /// sales have ended (as the API says, or by date), or every ticket type is sold out or past
    /// its sales end. A pass then need not read the buyer's order.
    pub fn nothing_on_sale(&self, now_local: NaiveDateTime) -> bool {
        if self.sales_ended || self.sales_end.is_some_and(|end| end <= now_local) {
            return true;
        }
        !self.ticket_types.is_empty()
            && self
                .ticket_types
                .iter()
                .all(|t| t.sold_out || t.sales_end.is_some_and(|end| end <= now_local))
    }

    /// Whether anything could make a buyer's tickets sold out (so a pass need not read the
    /// buyer's order otherwise).
    pub fn may_be_sold_out(&self) -> bool {
        self.sales_ended
            || self.sales_end.is_some()
            || self
                .ticket_types
                .iter()
                .any(|t| t.sold_out || t.sales_end.is_some())
    }

    /// The event's start to plan with: the hook's date, unless the event has one date and the
    /// API knows it (the organiser may have moved it), or the hook had none.
    pub fn start_for(&self, hook_date: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
        match (hook_date, self.starts) {
            (_, Some(starts)) if self.schedules <= 1 => Some(starts),
            (Some(date), _) => Some(date),
            (None, starts) => starts,
        }
    }
}
