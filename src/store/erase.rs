//! Finding a person in what the store keeps, for `forget` and retention: raw bodies matched after
//! decoding them as JSON (so `\u0040` and `\/` escapes hide nothing) and case-folded like
//! `email_key`, names on other people's tickets, and the free texts (reasons, SMTP replies,
//! errors) that may quote an address.

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::domain::email_key;
use crate::quicket::Ticket;

/// Folds text the way addresses are compared (`email_key`: trimmed, lower-cased).
fn fold(text: &str) -> String {
    email_key(text)
}

/// What identifies one person: their address key and the names they go by (folded).
pub struct Person {
    /// Address keys (one for `forget`; every due one for retention).
    pub keys: Vec<String>,
    /// Names, folded; only names of 3 characters or more are looked for.
    pub names: Vec<String>,
}

impl Person {
    fn named_in(&self, text: &str) -> bool {
        let text = fold(text);
        self.keys.iter().any(|k| text.contains(k.as_str()))
            || self
                .names
                .iter()
                .any(|n| n.chars().count() >= 3 && text.contains(n.as_str()))
    }

    /// Whether a raw body mentions the person: anywhere in its text, or in any string of it
    /// once decoded as JSON; a body that is not valid JSON is searched with its escapes decoded.
    pub fn mentioned_in(&self, body: &[u8]) -> bool {
        let text = String::from_utf8_lossy(body);
        if self.named_in(&text) {
            return true;
        }
        // Without a backslash there is no escape: the decoded strings are the text itself.
        if !body.contains(&b'\\') {
            return false;
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => self.in_json(&value),
            Err(_) => self.named_in(&unescape(&text)),
        }
    }

    fn in_json(&self, value: &Value) -> bool {
        match value {
            Value::String(s) => self.named_in(s),
            Value::Array(items) => items.iter().any(|v| self.in_json(v)),
            Value::Object(map) => map.iter().any(|(k, v)| self.named_in(k) || self.in_json(v)),
            _ => false,
        }
    }
}

/// JSON string escapes decoded leniently, for bodies that are not whole JSON documents.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => out.push_str(&hex),
                }
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The names a person goes by: the buyer name of their orders, and the attendee name on any
/// ticket with their address (theirs or someone else's order).
pub(super) fn names_of(conn: &Connection, key: &str) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut stmt = conn.prepare("SELECT email_key, buyer_name, tickets FROM orders")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (owner, buyer, tickets): (String, String, String) =
            (row.get(0)?, row.get(1)?, row.get(2)?);
        if owner == key && !buyer.trim().is_empty() {
            names.push(fold(&buyer));
        }
        if !fold(&tickets).contains(key) {
            continue;
        }
        let tickets: Vec<Ticket> = serde_json::from_str(&tickets).unwrap_or_default();
        for t in tickets {
            if email_key(&t.attendee_email) == key && !t.attendee_name.trim().is_empty() {
                names.push(fold(&t.attendee_name));
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Removes the person from other people's orders: a ticket with their address or name keeps its
/// type and price without its attendee, and a buyer name copied from their ticket is cleared.
pub(super) fn clear_from_orders(conn: &Connection, person: &Person) -> anyhow::Result<u64> {
    let mut changed = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT reference, buyer_name, tickets FROM orders")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (reference, buyer, text): (String, String, String) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            let buyer_named = person.names.contains(&fold(&buyer));
            if !buyer_named && !person.named_in(&text) {
                continue;
            }
            let mut tickets: Vec<Ticket> = serde_json::from_str(&text).unwrap_or_default();
            for t in tickets.iter_mut().filter(|t| {
                person.keys.contains(&email_key(&t.attendee_email))
                    || person.names.contains(&fold(&t.attendee_name))
            }) {
                t.attendee_email.clear();
                t.attendee_name.clear();
            }
            let buyer = if buyer_named { String::new() } else { buyer };
            changed.push((reference, buyer, serde_json::to_string(&tickets)?));
        }
    }
    let mut stmt =
        conn.prepare("UPDATE orders SET buyer_name = ?2, tickets = ?3 WHERE reference = ?1")?;
    for (reference, buyer, tickets) in &changed {
        stmt.execute(params![reference, buyer, tickets])?;
    }
    Ok(changed.len() as u64)
}

/// Drops every raw body (of the deliveries `filter` selects, an SQL condition) that mentions the
/// person. Returns how many.
pub(super) fn drop_bodies(conn: &Connection, person: &Person, filter: &str) -> anyhow::Result<u64> {
    let mut ids = Vec::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT id, body FROM deliveries WHERE body IS NOT NULL AND ({filter})"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let body: Vec<u8> = match row.get_ref(1)? {
                rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => {
                    b.to_vec()
                }
                _ => continue,
            };
            if person.mentioned_in(&body) {
                ids.push(row.get::<_, i64>(0)?);
            }
        }
    }
    let mut stmt = conn.prepare("UPDATE deliveries SET body = NULL WHERE id = ?1")?;
    for id in &ids {
        stmt.execute([id])?;
    }
    Ok(ids.len() as u64)
}

/// The free texts that may quote an address: a delivery's error, a reminder's reason and last
/// SMTP reply, a buyer-event's last reason, a pass's error.
const TEXTS: &[(&str, &str)] = &[
    ("deliveries", "error"),
    ("reminders", "reason"),
    ("reminders", "last_error"),
    ("buyer_events", "last_reason"),
    ("passes", "error"),
];

/// Replaces each of [`TEXTS`] that names one of the person's addresses.
pub(super) fn scrub_texts(conn: &Connection, person: &Person) -> anyhow::Result<()> {
    let keys_only = Person {
        keys: person.keys.clone(),
        names: Vec::new(),
    };
    for (table, column) in TEXTS {
        let texts: Vec<String> = conn
            .prepare(&format!(
                "SELECT DISTINCT {column} FROM {table} WHERE {column} LIKE '%@%'"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut update = conn.prepare(&format!(
            "UPDATE {table} SET {column} = ?2 WHERE {column} = ?1"
        ))?;
        for text in texts.iter().filter(|t| keys_only.named_in(t)) {
            update.execute(params![
                text,
                "(removed: it named an address that was erased)"
            ])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lerato() -> Person {
        Person {
            keys: vec!["lerato@mail.co.za".into()],
            names: vec!["lerato dlamini".into()],
        }
    }

    #[test]
    fn an_address_is_found_behind_json_escapes_and_in_any_case() {
        let p = lerato();
        for body in [
            r#"{"email":"lerato@mail.co.za"}"#,
            r#"{"email":"LERATO@Mail.co.za"}"#,
            r#"{"email":"lerato\u0040mail.co.za"}"#,
            r#"{"email":"lerato\u0040mail\u002eco\u002eza"}"#,
            r#"{"x":["Lerato Dlamini"]}"#,
            // Not valid JSON, escapes all the same.
            r#"{"email":"lerato\u0040mail.co.za""#,
            r#"{"name":"LERATO DLAMINI"#,
        ] {
            assert!(p.mentioned_in(body.as_bytes()), "{body}");
        }
        assert!(!p.mentioned_in(br#"{"email":"thandi@mail.co.za","name":"Thandi"}"#));
    }

    #[test]
    fn non_ascii_case_is_folded_like_email_key() {
        let p = Person {
            keys: vec![email_key("ÉLODIE@Exemple.fr")],
            names: vec![],
        };
        assert!(p.mentioned_in("{\"email\":\"élodie@exemple.fr\"}".as_bytes()));
        assert!(p.mentioned_in(br#"{"email":"\u00c9LODIE@exemple.fr"}"#));
    }
}
