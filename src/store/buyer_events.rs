//! Keeping `buyer_events` (one row per buyer and event) in step with the orders, inside the same
//! transaction as the hook that changed them, so a pass never sees one without the other.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{BUYER_PAID, OrderState, Outcome};

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
    let completed: Option<(String, String, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT reference, state_since, email, event_date FROM orders
             WHERE email_key = ?1 AND event_id = ?2 AND state = 'checkout_completed'
             ORDER BY state_since, reference LIMIT 1",
        )?
        .query_row(params![email_key, event_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let latest: Option<(String, OrderState, String, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT reference, state, changed_at, email, event_date FROM orders
             WHERE email_key = ?1 AND event_id = ?2
             ORDER BY changed_at DESC, rowid DESC LIMIT 1",
        )?
        .query_row(params![email_key, event_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((latest_reference, latest_state, changed_at, latest_email, latest_date)) = latest
    else {
        conn.execute(
            "DELETE FROM buyer_events WHERE email_key = ?1 AND event_id = ?2",
            params![email_key, event_id],
        )?;
        return Ok(());
    };
    // The address and date a reminder would use, kept here so a pass reads them from the index.
    let (state, reference, completed_at, next_check_at, email, event_date) = match completed {
        Some((reference, since, email, date)) => (
            OrderState::Completed,
            reference,
            Some(since),
            None,
            email,
            date,
        ),
        None => (
            latest_state,
            latest_reference,
            None,
            Some(changed_at.clone()),
            latest_email,
            latest_date,
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
