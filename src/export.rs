//! `export orders|deliveries [--format json|csv]`: everything stored, one record a line.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use crate::store::{OrderRecord, Store};

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportKind {
    /// One line per order (reference), with its current status.
    Orders,
    /// One line per request received on the webhook, with its raw body.
    Deliveries,
    /// One line per reminder step decided, then each buyer-event's latest other decision.
    Reminders,
}

/// How to write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines: one JSON object per line.
    #[default]
    Json,
    /// CSV with a header row; lists (tickets) as JSON text in their cell.
    Csv,
}

/// Writes every stored record of `kind` to `out`, streaming from the database.
pub async fn export(
    store: &Store,
    kind: ExportKind,
    format: ExportFormat,
    out: Box<dyn Write + Send>,
) -> anyhow::Result<()> {
    let sink = Sink::new(format, out);
    let sink = match kind {
        ExportKind::Orders => {
            store
                .each_order(sink, |sink, o| sink.write(&o, || OrderRow::from(&o)))
                .await?
        }
        ExportKind::Deliveries => {
            store
                .each_delivery(sink, |sink, d| sink.write(&d, || d.clone()))
                .await?
        }
        ExportKind::Reminders => {
            store
                .each_reminder(sink, |sink, r| sink.write(&r, || r.clone()))
                .await?
        }
    };
    sink.finish()
}

enum Sink {
    Json(Box<dyn Write + Send>),
    Csv(Box<csv::Writer<Box<dyn Write + Send>>>),
}

impl Sink {
    fn new(format: ExportFormat, out: Box<dyn Write + Send>) -> Self {
        match format {
            ExportFormat::Json => Sink::Json(out),
            ExportFormat::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(out))),
        }
    }

    /// Writes `record` as JSON, or its flat form (made by `flat`) as CSV.
    fn write<T: Serialize, F: Serialize>(
        &mut self,
        record: &T,
        flat: impl FnOnce() -> F,
    ) -> anyhow::Result<()> {
        match self {
            Sink::Json(out) => {
                serde_json::to_writer(&mut *out, record)?;
                out.write_all(b"\n").context("cannot write the export")?;
            }
            Sink::Csv(out) => out.serialize(flat())?,
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Json(mut out) => out.flush()?,
            Sink::Csv(mut out) => out.flush()?,
        }
        Ok(())
    }
}

/// An order flattened for CSV: the tickets become one JSON cell.
#[derive(Serialize)]
struct OrderRow<'a> {
    reference: &'a str,
    event_id: Option<&'a str>,
    event_name: &'a str,
    event_date: Option<&'a str>,
    email: &'a str,
    amount: Option<String>,
    status: &'static str,
    buyer_name: &'a str,
    tickets: String,
    first_seen: &'a str,
    status_since: &'a str,
    changed_at: &'a str,
}

impl<'a> From<&'a OrderRecord> for OrderRow<'a> {
    fn from(o: &'a OrderRecord) -> Self {
        OrderRow {
            reference: &o.reference,
            event_id: o.event_id.as_deref(),
            event_name: &o.event_name,
            event_date: o.event_date.as_deref(),
            email: &o.email,
            amount: o.amount.map(|a| format!("{a:.2}")),
            status: o.status.as_str(),
            buyer_name: &o.buyer_name,
            tickets: serde_json::to_string(&o.tickets).unwrap_or_default(),
            first_seen: &o.first_seen,
            status_since: &o.status_since,
            changed_at: &o.changed_at,
        }
    }
}
