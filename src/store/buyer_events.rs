//! Keeping `buyer_events` (one row per buyer and event) in step with the orders, inside the same
//! transaction as the hook that changed them, so a pass never sees one without the other.

use rusqlite::{Connection, params};

use crate::domain::{BUYER_PAID, OrderState, Outcome};

/// One of a buyer-event's orders, as `refresh` compares them.
#[derive(Clone)]
struct Row {
    rowid: i64,
    reference: String,
    state: OrderState,
    state_since: String,
    changed_at: String,
    email: String,
    event_date: Option<String>,
}

/// Recomputes the buyer-event of (`email_key`, `event_id`) from its orders. A buyer-event is paid
/// once any of its orders is; otherwise it takes the state of the order that changed last. Asking
/// the next pass to look at it again is always safe: the pass decides from the database.
pub(super) fn refresh(
    conn: &Connection,
    email_key: &str,
    event_id: Option<&str>,
) -> anyhow::Result<()> {
    let Some(event_id) = event_id else {
        return Ok(());
    };
    if email_key.is_empty() {
        return Ok(());
    }
    // One pass over the buyer-event's orders (usually one or two) finds both the first paid one
    // and the one that changed last: two `ORDER BY ... LIMIT 1` statements cost a temporary
    // b-tree each, more than the rest of a hook's writes. Texts compare as SQLite's BINARY does.
    let (completed, latest) = first_paid_and_latest(conn, email_key, event_id)?;
    let Some(latest) = latest else {
        conn.execute(
            "DELETE FROM buyer_events WHERE email_key = ?1 AND event_id = ?2",
            params![email_key, event_id],
        )?;
        return Ok(());
    };
    let changed_at = latest.changed_at;
    // The address and date a reminder would use, kept here so a pass reads them from the index.
    let (state, reference, completed_at, next_check_at, email, event_date) = match completed {
        Some(paid) => (
            OrderState::Completed,
            paid.reference,
            Some(paid.state_since),
            None,
            paid.email,
            paid.event_date,
        ),
        None => (
            latest.state,
            latest.reference,
            None,
            Some(changed_at.clone()),
            latest.email,
            latest.event_date,
        ),
    };
    conn.prepare_cached(
        "INSERT INTO buyer_events (email_key, event_id, state, changed_at, reference, completed_at,
            next_check_at, email, event_date)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (email_key, event_id) DO UPDATE SET
            state = excluded.state,
            email = excluded.email,
            event_date = excluded.event_date,
            changed_at = excluded.changed_at,
            reference = excluded.reference,
            completed_at = excluded.completed_at,
            next_check_at = excluded.next_check_at,
            last_decision = CASE WHEN excluded.state = 'checkout_completed' THEN ?10 ELSE last_decision END,
            last_reason = CASE WHEN excluded.state = 'checkout_completed' THEN ?11 ELSE last_reason END",
    )?
    .execute(params![
        email_key,
        event_id,
        state,
        changed_at,
        reference,
        completed_at,
        next_check_at,
        email,
        event_date,
        Outcome::Done,
        BUYER_PAID
    ])?;
    Ok(())
}

/// The buyer-event's first paid order (by `state_since`, then reference) and the order that
/// changed last (by `changed_at`, then rowid), read in one pass over its orders.
fn first_paid_and_latest(
    conn: &Connection,
    email_key: &str,
    event_id: &str,
) -> anyhow::Result<(Option<Row>, Option<Row>)> {
    let mut completed: Option<Row> = None;
    let mut latest: Option<Row> = None;
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, reference, state, state_since, changed_at, email, event_date FROM orders
         WHERE email_key = ?1 AND event_id = ?2",
    )?;
    let mut rows = stmt.query(params![email_key, event_id])?;
    while let Some(r) = rows.next()? {
        let row = Row {
            rowid: r.get(0)?,
            reference: r.get(1)?,
            state: r.get(2)?,
            state_since: r.get(3)?,
            changed_at: r.get(4)?,
            email: r.get(5)?,
            event_date: r.get(6)?,
        };
        // The first paid: ORDER BY state_since, reference.
        if row.state == OrderState::Completed
            && completed.as_ref().is_none_or(|c| {
                (row.state_since.as_str(), row.reference.as_str())
                    < (c.state_since.as_str(), c.reference.as_str())
            })
        {
            completed = Some(row.clone());
        }
        // The latest: ORDER BY changed_at DESC, rowid DESC.
        if latest
            .as_ref()
            .is_none_or(|l| (row.changed_at.as_str(), row.rowid) > (l.changed_at.as_str(), l.rowid))
        {
            latest = Some(row);
        }
    }
    Ok((completed, latest))
}
