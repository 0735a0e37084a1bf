//! The suppression list, clicks, and removing personal data: retention (pseudonymise buyers of
//! events long past, keeping the counts) and `forget` (remove one address entirely).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::erase::{self, Person};
use super::{Store, StoreError, timestamp};
use crate::domain::email_key;

/// Where a suppression came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressionSource {
    /// The buyer, through the link in an email.
    Unsubscribe,
    /// The operator, through the CLI.
    Cli,
    /// The operator, through /admin.
    Admin,
    /// The mail server said the mailbox does not exist, or the provider reported a hard bounce.
    Bounce,
    /// The buyer marked an email as spam (reported by the provider).
    Complaint,
}

impl SuppressionSource {
    /// Every source.
    pub const ALL: [SuppressionSource; 5] = [
        SuppressionSource::Unsubscribe,
        SuppressionSource::Cli,
        SuppressionSource::Admin,
        SuppressionSource::Bounce,
        SuppressionSource::Complaint,
    ];

    /// The stored name, as the suppression list shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionSource::Unsubscribe => "unsubscribe",
            SuppressionSource::Cli => "cli",
            SuppressionSource::Admin => "admin",
            SuppressionSource::Bounce => "bounce",
            SuppressionSource::Complaint => "complaint",
        }
    }

    /// The source for a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

crate::domain::stored_as_text!(SuppressionSource, "suppression source");

impl std::fmt::Display for SuppressionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for SuppressionSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One suppressed address.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Suppression {
    /// The address, trimmed and lower-cased.
    pub email: String,
    /// When.
    pub added_at: String,
    /// unsubscribe, cli, admin, bounce or complaint (kept as text: the suppression list's
    /// readers, the tests among them, compare and show the name).
    pub source: String,
    /// The event and step of the email it came from, when it came from one.
    pub event_id: Option<String>,
    /// The step.
    pub step: Option<String>,
}

/// Who takes an address off the suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovedBy {
    /// The operator, in /admin.
    Admin,
    /// The operator, with `resubscribe`.
    Cli,
    /// The buyer, through the link in an email ("subscribe again").
    Buyer,
}

impl RemovedBy {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RemovedBy::Admin => "admin",
            RemovedBy::Cli => "cli",
            RemovedBy::Buyer => "buyer",
        }
    }
}

/// A removal from the suppression list: by whom, from where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Who.
    pub by: RemovedBy,
    /// The browser's address (admin), else empty.
    pub client: String,
    /// Why, in the remover's words.
    pub reason: String,
}

/// One address taken off the suppression list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SuppressionRemoval {
    /// The address, lower-cased.
    pub email: String,
    /// When.
    pub removed_at: String,
    /// admin, cli or buyer.
    pub by: String,
    /// The browser's address, for admin.
    pub client: String,
    /// How it had come onto the list (unsubscribe, bounce, ...).
    pub source: String,
    /// Since when it had been on it.
    pub added_at: String,
    /// Why it was taken off.
    pub reason: String,
}

/// What retention or `forget` removed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Removed {
    /// Buyer-events whose address was replaced by a pseudonym (retention) or deleted (forget).
    pub buyer_events: u64,
    /// Orders cleared of personal data or deleted.
    pub orders: u64,
    /// Raw bodies removed from the deliveries log.
    pub deliveries: u64,
}

impl Store {
    /// Adds an address to the suppression list (idempotent). Returns whether it was new.
    pub async fn add_suppression(
        &self,
        email: &str,
        source: SuppressionSource,
        event_id: Option<String>,
        step: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = email_key(email);
        self.write(move |conn| {
            let added = conn.execute(
                "INSERT INTO suppressions (email_key, added_at, source, event_id, step)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                params![key, timestamp(now), source, event_id, step],
            )?;
            Ok(added > 0)
        })
        .await
    }

    /// Removes an address from the suppression list, keeping who did it, how it had come onto
    /// the list and `reason` in the removals' record; its open checkouts are looked at again by
    /// the next pass. Returns the entry removed (`None`: it was not suppressed, nothing changed).
    pub async fn remove_suppression(
        &self,
        email: &str,
        removal: Removal,
        now: DateTime<Utc>,
    ) -> Result<Option<Suppression>, StoreError> {
        let key = email_key(email);
        self.write(move |conn| {
            let entry = conn
                .query_row(
                    "DELETE FROM suppressions WHERE email_key = ?1
                     RETURNING email_key, added_at, source, event_id, step",
                    [&key],
                    |r| {
                        Ok(Suppression {
                            email: r.get(0)?,
                            added_at: r.get(1)?,
                            source: r.get(2)?,
                            event_id: r.get(3)?,
                            step: r.get(4)?,
                        })
                    },
                )
                .optional()?;
            let Some(entry) = entry else {
                return Ok(None);
            };
            conn.execute(
                "INSERT INTO suppression_removals
                   (email_key, removed_at, removed_by, client, source, added_at, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    key,
                    timestamp(now),
                    removal.by.as_str(),
                    removal.client,
                    entry.source,
                    entry.added_at,
                    removal.reason
                ],
            )?;
            conn.execute(
                "UPDATE buyer_events SET next_check_at = ?2
                 WHERE email_key = ?1 AND state <> 'checkout_completed'",
                params![key, timestamp(now)],
            )?;
            Ok(Some(entry))
        })
        .await
    }

    /// The addresses taken off the suppression list, newest first, at most `limit`.
    pub async fn suppression_removals(
        &self,
        limit: usize,
    ) -> Result<Vec<SuppressionRemoval>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT email_key, removed_at, removed_by, client, source, added_at, reason
                 FROM suppression_removals ORDER BY removed_at DESC, id DESC LIMIT ?1",
            )?;
            let rows = stmt
                .query_map([limit as i64], |r| {
                    Ok(SuppressionRemoval {
                        email: r.get(0)?,
                        removed_at: r.get(1)?,
                        by: r.get(2)?,
                        client: r.get(3)?,
                        source: r.get(4)?,
                        added_at: r.get(5)?,
                        reason: r.get(6)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Whether an address is suppressed.
    pub async fn is_suppressed(&self, email: &str) -> Result<bool, StoreError> {
        let key = email_key(email);
        self.read(move |conn| super::claims::is_suppressed(conn, &key))
            .await
    }

    /// The suppression list, newest first.
    pub async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT email_key, added_at, source, event_id, step FROM suppressions
                 ORDER BY added_at DESC, email_key",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Suppression {
                        email: r.get(0)?,
                        added_at: r.get(1)?,
                        source: r.get(2)?,
                        event_id: r.get(3)?,
                        step: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// The people's clicks on the event links of a buyer-event: (step, time), oldest first.
    pub async fn clicks(
        &self,
        email: &str,
        event_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let (key, event) = (email_key(email), event_id.to_string());
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT step, clicked_at FROM clicks WHERE email_key = ?1 AND event_id = ?2 AND link = 'event' AND scanner IS NULL ORDER BY id",
            )?;
            let rows = stmt
                .query_map(params![key, event], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Replaces the address of every buyer-event whose event started more than `retention` before
    /// `now` (or, with no event date, whose last change is that old) by a random pseudonym, and
    /// removes names, attendee details and raw bodies. Counts, amounts, states, steps and clicks
    /// stay, so the statistics stay right. The suppression list is kept (it is what keeps an
    /// unsubscribed buyer unsubscribed).
    pub async fn apply_retention(
        &self,
        now: DateTime<Utc>,
        retention: std::time::Duration,
        timezone: chrono_tz::Tz,
    ) -> Result<Removed, StoreError> {
        if retention.is_zero() {
            return Ok(Removed::default());
        }
        let cutoff = now - chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
        let removed = self
            .write(move |conn| retention_pass(conn, cutoff, now, timezone))
            .await?;
        if removed != Removed::default() {
            self.checkpoint().await?;
        }
        Ok(removed)
    }

    /// Removes everything about one address except its suppression entry, then empties the
    /// write-ahead log, so that once this returns the address and the names are in no database
    /// file (deleted content is overwritten: `secure_delete`).
    pub async fn forget(&self, email: &str) -> Result<Removed, StoreError> {
        let key = email_key(email);
        let removed = self.write(move |conn| forget(conn, &key)).await?;
        self.checkpoint().await?;
        Ok(removed)
    }
}

fn retention_pass(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
    timezone: chrono_tz::Tz,
) -> anyhow::Result<Removed> {
    // Event dates are local wall-clock text; compare in the configured zone.
    let local_cutoff = cutoff
        .with_timezone(&timezone)
        .naive_local()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let mut stmt = conn.prepare(
        "SELECT be.email_key, be.event_id FROM buyer_events be JOIN orders o ON o.reference = be.reference
         WHERE be.anonymised_at IS NULL
           AND ((o.event_date IS NOT NULL AND o.event_date < ?1)
             OR (o.event_date IS NULL AND be.changed_at < ?2))",
    )?;
    let due: Vec<(String, String)> = stmt
        .query_map(params![local_cutoff, timestamp(cutoff)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut removed = Removed::default();
    let person = Person {
        keys: due.iter().map(|(k, _)| k.clone()).collect(),
        names: Vec::new(),
    };
    // Links past their life do nothing; their rows need not stay.
    conn.execute(
        "DELETE FROM link_tokens WHERE expires_at <= ?1",
        [timestamp(now)],
    )?;
    removed.deliveries += super::email_events::expire(conn, cutoff)?;
    for (key, event) in due {
        let pseudonym = format!("anon-{}", crate::links::random_token());
        removed.buyer_events += 1;
        let references = references_of(conn, &key, &event)?;
        removed.deliveries += scrub_deliveries(conn, &references)?;
        removed.orders += conn.execute(
            "UPDATE orders SET email = '', email_key = ?3, buyer_name = '',
                tickets = (SELECT coalesce(json_group_array(json_object(
                    'type', json_extract(t.value, '$.type'),
                    'price', json_extract(t.value, '$.price'),
                    'attendee_name', '', 'attendee_email', '')), '[]')
                    FROM json_each(orders.tickets) t)
             WHERE email_key = ?1 AND event_id = ?2",
            params![key, event, pseudonym],
        )? as u64;
        for table in ["reminders", "clicks", "experiment"] {
            conn.execute(
                &format!(
                    "UPDATE {table} SET email_key = ?3 WHERE email_key = ?1 AND event_id = ?2"
                ),
                params![key, event, pseudonym],
            )?;
        }
        conn.execute(
            "UPDATE reminders SET email = NULL WHERE email_key = ?1",
            [&pseudonym],
        )?;
        // Their links stop working (an old-format link too: its reminder is renamed above).
        conn.execute(
            "DELETE FROM link_tokens WHERE email_key = ?1 AND event_id = ?2",
            params![key, event],
        )?;
        conn.execute(
            "UPDATE buyer_events SET email_key = ?3, email = '', anonymised_at = ?4, next_check_at = NULL
             WHERE email_key = ?1 AND event_id = ?2",
            params![key, event, pseudonym, timestamp(now)],
        )?;
    }
    if !person.keys.is_empty() {
        erase::scrub_texts(conn, &person)?;
    }
    removed.orders += uncovered_orders(conn, &local_cutoff, cutoff, &mut removed)?;
    // Bodies tied to no order (refused, ignored) have no event to wait for: dropped once they
    // are as old as the retention, and at once when they name a buyer just pseudonymised.
    let unlinked = "(reference IS NULL OR NOT EXISTS (SELECT 1 FROM orders o WHERE o.reference = deliveries.reference))";
    removed.deliveries += conn.execute(
        &format!("UPDATE deliveries SET body = NULL WHERE body IS NOT NULL AND received_at < ?1 AND {unlinked}"),
        [timestamp(cutoff)],
    )? as u64;
    if !person.keys.is_empty() {
        removed.deliveries += erase::drop_bodies(conn, &person, unlinked)?;
    }
    Ok(removed)
}

/// Orders that no buyer-event covers (no address, or no event id), once their event (or, with no
/// date, their last change) is past the cutoff: cleared like the others.
fn uncovered_orders(
    conn: &Connection,
    local_cutoff: &str,
    cutoff: DateTime<Utc>,
    removed: &mut Removed,
) -> anyhow::Result<u64> {
    let references: Vec<String> = conn
        .prepare(
            "SELECT reference FROM orders
             WHERE (email_key = '' OR event_id IS NULL)
               AND ((event_date IS NOT NULL AND event_date < ?1) OR (event_date IS NULL AND changed_at < ?2))
               AND (email <> '' OR buyer_name <> '' OR (email_key <> '' AND email_key NOT LIKE 'anon-%')
                    OR EXISTS (SELECT 1 FROM json_each(orders.tickets) t
                               WHERE json_extract(t.value, '$.attendee_name') <> ''
                                  OR json_extract(t.value, '$.attendee_email') <> ''))",
        )?
        .query_map(params![local_cutoff, timestamp(cutoff)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    removed.deliveries += scrub_deliveries(conn, &references)?;
    let mut stmt = conn.prepare(
        "UPDATE orders SET email = '', buyer_name = '',
            email_key = CASE WHEN email_key = '' THEN '' ELSE ?2 END,
            tickets = (SELECT coalesce(json_group_array(json_object(
                'type', json_extract(t.value, '$.type'),
                'price', json_extract(t.value, '$.price'),
                'attendee_name', '', 'attendee_email', '')), '[]')
                FROM json_each(orders.tickets) t)
         WHERE reference = ?1",
    )?;
    for reference in &references {
        let pseudonym = format!("anon-{}", crate::links::random_token());
        stmt.execute(params![reference, pseudonym])?;
    }
    Ok(references.len() as u64)
}

fn references_of(conn: &Connection, key: &str, event: &str) -> anyhow::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT reference FROM orders WHERE email_key = ?1 AND event_id = ?2")?;
    let rows = stmt
        .query_map(params![key, event], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(rows)
}

/// Drops the raw bodies of the deliveries that named these orders (they hold names and addresses).
fn scrub_deliveries(conn: &Connection, references: &[String]) -> anyhow::Result<u64> {
    let mut count = 0;
    let mut stmt = conn.prepare_cached(
        "UPDATE deliveries SET body = NULL WHERE reference = ?1 AND body IS NOT NULL",
    )?;
    for reference in references {
        count += stmt.execute([reference])? as u64;
    }
    Ok(count)
}

fn forget(conn: &Connection, key: &str) -> anyhow::Result<Removed> {
    let mut removed = Removed::default();
    let person = Person {
        keys: vec![key.to_string()],
        names: erase::names_of(conn, key)?,
    };
    let mut stmt = conn.prepare("SELECT reference FROM orders WHERE email_key = ?1")?;
    let references: Vec<String> = stmt
        .query_map([key], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for reference in &references {
        conn.execute(
            "DELETE FROM order_history WHERE reference = ?1",
            [reference],
        )?;
        removed.deliveries +=
            conn.execute("DELETE FROM deliveries WHERE reference = ?1", [reference])? as u64;
        removed.orders +=
            conn.execute("DELETE FROM orders WHERE reference = ?1", [reference])? as u64;
    }
    // Any other body that mentions the address or the name (a refused or ignored hook, someone
    // else's order with them on a ticket) loses its raw body.
    removed.deliveries += erase::drop_bodies(conn, &person, "1")?;
    // Other people's orders keep their tickets, without this person on them.
    erase::clear_from_orders(conn, &person)?;
    erase::scrub_texts(conn, &person)?;
    removed.buyer_events +=
        conn.execute("DELETE FROM buyer_events WHERE email_key = ?1", [key])? as u64;
    conn.execute("DELETE FROM reminders WHERE email_key = ?1", [key])?;
    conn.execute("DELETE FROM clicks WHERE email_key = ?1", [key])?;
    conn.execute("DELETE FROM link_tokens WHERE email_key = ?1", [key])?;
    super::email_events::forget(conn, key)?;
    conn.execute("DELETE FROM experiment WHERE email_key = ?1", [key])?;
    conn.execute(
        "DELETE FROM suppression_removals WHERE email_key = ?1",
        [key],
    )?;
    Ok(removed)
}
