//! Reading orders and deliveries back: for `export`, `/admin` and the tests.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{Store, StoreError};
use crate::domain::{Cents, OrderState};
use crate::quicket::Ticket;

/// One order as exported: Quicket's own field names, plus `status` and our bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderRecord {
    /// Quicket's order reference.
    pub reference: String,
    /// Quicket's event id.
    pub event_id: Option<String>,
    /// The event's name.
    pub event_name: String,
    /// Local start time, `YYYY-MM-DD HH:MM` as Quicket writes it.
    pub event_date: Option<String>,
    /// The purchaser's address as Quicket sent it (trimmed).
    pub email: String,
    /// The order's total in rands.
    pub amount: Option<f64>,
    /// The order's state, named by its action.
    pub status: OrderState,
    /// The purchaser's name, from their own ticket.
    pub buyer_name: String,
    /// The tickets.
    pub tickets: Vec<TicketRecord>,
    /// When the first hook for this order arrived (UTC, RFC 3339).
    pub first_seen: String,
    /// When the current status began.
    pub status_since: String,
    /// When the latest hook changed anything.
    pub changed_at: String,
}

/// One ticket as exported, with Quicket's field names and the price in rands like `amount`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketRecord {
    /// The ticket type's name.
    pub ticket_type: String,
    /// The price in rands.
    pub price: Option<f64>,
    /// The attendee's name.
    pub attendee_name: String,
    /// The attendee's address.
    pub attendee_email: String,
}

impl From<Ticket> for TicketRecord {
    fn from(t: Ticket) -> Self {
        TicketRecord {
            ticket_type: t.ticket_type,
            price: t.price.map(Cents::to_rands),
            attendee_name: t.attendee_name,
            attendee_email: t.attendee_email,
        }
    }
}

/// One delivery as exported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    /// Position in the log.
    pub id: i64,
    /// When it arrived (UTC, RFC 3339).
    pub received_at: String,
    /// recorded, duplicate, ignored, rejected or failed.
    pub outcome: String,
    /// Why it was rejected, ignored or failed, or which fields could not be read.
    pub error: Option<String>,
    /// The order it named, when it could be read.
    pub reference: Option<String>,
    /// Its action, when it could be read.
    pub action: Option<String>,
    /// The raw body as text (invalid UTF-8 replaced); `null` once removed by retention.
    pub body: Option<String>,
}

const ORDER_COLUMNS: &str = "reference, event_id, event_name, event_date, email, amount_cents, \
    state, buyer_name, tickets, first_seen, state_since, changed_at";

fn order_from_row(row: &Row<'_>) -> rusqlite::Result<OrderRecord> {
    let event_date: Option<String> = row.get(3)?;
    let tickets: String = row.get(8)?;
    Ok(OrderRecord {
        reference: row.get(0)?,
        event_id: row.get(1)?,
        event_name: row.get(2)?,
        // Stored with seconds; shown without them, as Quicket writes it.
        event_date: event_date.map(|d| d.strip_suffix(":00").map(str::to_string).unwrap_or(d)),
        email: row.get(4)?,
        amount: row.get::<_, Option<i64>>(5)?.map(|c| Cents(c).to_rands()),
        status: row.get(6)?,
        buyer_name: row.get(7)?,
        tickets: serde_json::from_str::<Vec<Ticket>>(&tickets)
            .map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    8,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?
            .into_iter()
            .map(TicketRecord::from)
            .collect(),
        first_seen: row.get(9)?,
        status_since: row.get(10)?,
        changed_at: row.get(11)?,
    })
}

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    let body: Option<Vec<u8>> = row.get(6)?;
    Ok(DeliveryRecord {
        id: row.get(0)?,
        received_at: row.get(1)?,
        outcome: row.get(2)?,
        error: row.get(3)?,
        reference: row.get(4)?,
        action: row.get(5)?,
        body: body.map(|b| String::from_utf8_lossy(&b).into_owned()),
    })
}

/// Calls `each` for every order, oldest first, without holding them all in memory.
fn for_each_order(
    conn: &Connection,
    mut each: impl FnMut(OrderRecord) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders ORDER BY first_seen, reference"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        each(order_from_row(row)?)?;
    }
    Ok(())
}

/// Calls `each` for every delivery, in arrival order.
fn for_each_delivery(
    conn: &Connection,
    mut each: impl FnMut(DeliveryRecord) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT id, received_at, outcome, error, reference, action, body FROM deliveries ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        each(delivery_from_row(row)?)?;
    }
    Ok(())
}

impl Store {
    /// Hands every order, oldest first, to `each`, streaming in one read; returns `state` as
    /// `each` left it.
    pub async fn each_order<S: Send + 'static>(
        &self,
        mut state: S,
        mut each: impl FnMut(&mut S, OrderRecord) -> anyhow::Result<()> + Send + 'static,
    ) -> Result<S, StoreError> {
        self.read(move |conn| {
            for_each_order(conn, |o| each(&mut state, o))?;
            Ok(state)
        })
        .await
    }

    /// Hands every delivery, in arrival order, to `each`, streaming in one read; returns
    /// `state` as `each` left it.
    pub async fn each_delivery<S: Send + 'static>(
        &self,
        mut state: S,
        mut each: impl FnMut(&mut S, DeliveryRecord) -> anyhow::Result<()> + Send + 'static,
    ) -> Result<S, StoreError> {
        self.read(move |conn| {
            for_each_delivery(conn, |d| each(&mut state, d))?;
            Ok(state)
        })
        .await
    }

    /// One order by reference.
    pub async fn order(&self, reference: &str) -> Result<Option<OrderRecord>, StoreError> {
        let reference = reference.to_string();
        self.read(move |conn| {
            // Cached: a pass reads one order per email it sends.
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE reference = ?1"
                ))?
                .query_row([reference], order_from_row)
                .optional()?)
        })
        .await
    }

    /// The order whose first hook arrived last, if any.
    pub async fn newest_order(&self) -> Result<Option<OrderRecord>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {ORDER_COLUMNS} FROM orders ORDER BY first_seen DESC, rowid DESC LIMIT 1"
                    ),
                    [],
                    order_from_row,
                )
                .optional()?)
        })
        .await
    }

    /// Every delivery, in arrival order.
    pub async fn deliveries(&self) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.read(|conn| {
            let mut all = Vec::new();
            for_each_delivery(conn, |d| {
                all.push(d);
                Ok(())
            })?;
            Ok(all)
        })
        .await
    }

    /// A delivery's raw body, byte for byte (`None` once retention removed it).
    pub async fn delivery_body(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .query_row("SELECT body FROM deliveries WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?
                .flatten())
        })
        .await
    }

    /// Number of stored orders.
    pub async fn order_count(&self) -> Result<i64, StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT count(*) FROM orders", [], |r| r.get(0))?))
            .await
    }

    /// The actions in an order's history, in arrival order, with whether each moved the state.
    pub async fn order_history(&self, reference: &str) -> Result<Vec<(String, bool)>, StoreError> {
        let reference = reference.to_string();
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT action, applied FROM order_history WHERE reference = ?1 ORDER BY id",
            )?;
            let rows = stmt
                .query_map([reference], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

impl Store {
    /// When the latest Quicket hook arrived (whatever became of it), if one ever did.
    pub async fn last_hook_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|conn| {
            let at: Option<String> = conn
                .prepare_cached("SELECT received_at FROM deliveries ORDER BY id DESC LIMIT 1")?
                .query_row([], |r| r.get(0))
                .optional()?;
            at.as_deref().map(super::parse_timestamp).transpose()
        })
        .await
    }
}
