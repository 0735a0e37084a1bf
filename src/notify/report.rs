//! The organiser's report for a span (the weekly email, and `report`): what the reminders did,
//! what they earned against the control group, what came back from the email provider, and the
//! span's alerts; as text, and as HTML with an inline chart ([`super::chart`]). It names no buyer.

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::Config;
use crate::present::rands;
use crate::store::Store;
use crate::store::alerts::AlertRecord;
use crate::store::report::ReportFigures;

/// The span a report covers.
pub const SPAN: TimeDelta = TimeDelta::days(7);

/// A moment as the organiser reads it, in their zone: "Mon 7 Dec 2026, 21:00".
pub fn local_time(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz)
        .format("%a %-d %b %Y, %H:%M")
        .to_string()
}

/// The report for `[from, to)`.
#[derive(Debug, Clone)]
pub struct Report {
    /// Its start.
    pub from: DateTime<Utc>,
    /// Its end.
    pub to: DateTime<Utc>,
    /// The figures.
    pub figures: ReportFigures,
    /// Alerts that lasted at some moment in the span.
    pub alerts: Vec<AlertRecord>,
    timezone: chrono_tz::Tz,
    overview: String,
    attribution: String,
}

/// One line of figures: what it is, and its value in words.
struct Line {
    label: &'static str,
    value: String,
}

impl Report {
    /// The report for the [`SPAN`] up to `to`.
    pub async fn gather(
        store: &Store,
        config: &Config,
        to: DateTime<Utc>,
    ) -> anyhow::Result<Report> {
        let from = to - SPAN;
        let figures = store.report_figures(from, to, config.stats_rules()).await?;
        let alerts = store.alerts_between(from, to).await?;
        Ok(Report {
            from,
            to,
            figures,
            alerts,
            timezone: config.schedule.timezone,
            overview: format!("{}/admin", config.public_url()),
            attribution: crate::domain::duration_for_people(config.schedule.attribution_window),
        })
    }

    /// "Mon 30 Nov to Mon 7 Dec 2026".
    pub fn span_in_words(&self) -> String {
        let from = self.from.with_timezone(&self.timezone);
        let to = self.to.with_timezone(&self.timezone);
        format!(
            "{} to {}",
            from.format("%a %-d %b"),
            to.format("%a %-d %b %Y")
        )
    }

    /// The email's subject.
    pub fn subject(&self) -> String {
        let f = &self.figures;
        format!(
            "Your week: {} reminders sent, {} purchases after them ({})",
            f.sent,
            f.recovered.purchases,
            rands(f.recovered.revenue_cents)
        )
    }

    /// What the reminders added against the control group, in words.
    pub fn lift_in_words(&self) -> String {
        let Some(x) = &self.figures.experiment else {
            return "not measured: there is no control group (set [experiment] holdout, e.g. \"10%\", to measure it)".into();
        };
        match &x.lift {
            Some(l) if l.conclusive => format!(
                "{} (95% interval {} to {}), from {} buyers emailed against {} held out",
                signed_rands(l.revenue_cents),
                signed_rands(l.low_cents),
                signed_rands(l.high_cents),
                x.emailed.buyer_events,
                x.held_out.buyer_events
            ),
            _ => format!(
                "too early to tell ({} buyers emailed, {} held out this week: too few to say)",
                x.emailed.buyer_events, x.held_out.buyer_events
            ),
        }
    }

    fn lines(&self) -> Vec<Line> {
        let f = &self.figures;
        vec![
            Line {
                label: "Reminders sent",
                value: f.sent.to_string(),
            },
            Line {
                label: "Purchases after a reminder",
                value: format!(
                    "{} (within {} of the email)",
                    f.recovered.purchases, self.attribution
                ),
            },
            Line {
                label: "Revenue from those purchases",
                value: rands(f.recovered.revenue_cents),
            },
            Line {
                label: "Added by the reminders (against the control group)",
                value: self.lift_in_words(),
            },
            Line {
                label: "Unsubscribes",
                value: f.unsubscribes.to_string(),
            },
            Line {
                label: "Complaints (marked as spam)",
                value: f.complaints.to_string(),
            },
            Line {
                label: "Bounces",
                value: format!("{} hard, {} soft", f.hard_bounces, f.soft_bounces),
            },
            Line {
                label: "Checkout messages from Quicket",
                value: format!("{}, of which {} with a problem", f.hooks, f.problem_hooks),
            },
        ]
    }

    fn alert_lines(&self) -> Vec<String> {
        self.alerts
            .iter()
            .map(|a| {
                let at = |t: &str| {
                    crate::store::parse_timestamp(t)
                        .map(|t| local_time(t, self.timezone))
                        .unwrap_or_default()
                };
                let title = super::alerts::Condition::from_key(&a.condition)
                    .map_or("something needed attention", |c| c.title());
                let when = match &a.resolved_at {
                    Some(end) => format!("from {} to {}", at(&a.started_at), at(end)),
                    None => format!("since {}, still now", at(&a.started_at)),
                };
                format!("{}{}: {when}", title[..1].to_uppercase(), &title[1..])
            })
            .collect()
    }

    /// The plain-text report.
    pub fn text(&self) -> String {
        let mut out = format!(
            "Your week with quicket-followup: {}\n\n",
            self.span_in_words()
        );
        for line in self.lines() {
            out.push_str(&format!("{}: {}\n", line.label, line.value));
        }
        out.push_str("\nAlerts this week:\n");
        let alerts = self.alert_lines();
        if alerts.is_empty() {
            out.push_str("  none\n");
        }
        for a in alerts {
            out.push_str(&format!("  - {a}\n"));
        }
        out.push_str("\nBy day (reminders sent, purchases after them):\n");
        for d in &self.figures.daily {
            out.push_str(&format!(
                "  {}  {:>5}  {:>5}\n",
                d.date.format("%a %-d %b"),
                d.sent,
                d.recovered
            ));
        }
        out.push_str(&format!("\nOverview: {}\n", self.overview));
        out
    }

    /// The HTML report; its chart is `<img src="{chart_src}">` (`cid:chart` in the email).
    pub fn html(&self, chart_src: &str) -> String {
        let e = escape;
        let mut rows = String::new();
        for line in self.lines() {
            rows.push_str(&format!(
                "<tr><th style=\"text-align:left;padding:6px 12px 6px 0;font-weight:normal;color:#555\">{}</th>\
                 <td style=\"padding:6px 0;font-weight:bold\">{}</td></tr>\n",
                e(line.label),
                e(&line.value)
            ));
        }
        let alerts = self.alert_lines();
        let alerts = if alerts.is_empty() {
            "<p style=\"margin:0\">None: nothing went wrong.</p>".to_string()
        } else {
            let items: String = alerts
                .iter()
                .map(|a| format!("<li>{}</li>", e(a)))
                .collect();
            format!("<ul style=\"margin:0;padding-left:20px\">{items}</ul>")
        };
        let mut days = String::new();
        for d in &self.figures.daily {
            days.push_str(&format!(
                "<tr><td style=\"padding:2px 12px 2px 0\">{}</td><td style=\"text-align:right;padding:2px 12px\">{}</td>\
                 <td style=\"text-align:right;padding:2px 0\">{}</td></tr>\n",
                d.date.format("%a %-d %b"),
                d.sent,
                d.recovered
            ));
        }
        format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body style="margin:0;padding:0;background:#f4f4f5;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#18181b">
<div style="max-width:600px;margin:0 auto;padding:24px 16px">
<h1 style="font-size:22px;margin:0 0 4px">Your week with quicket-followup</h1>
<p style="margin:0 0 16px;color:#555">{span}</p>
<div style="background:#fff;border-radius:8px;padding:16px;margin-bottom:16px">
<table role="presentation" style="border-collapse:collapse;width:100%;font-size:15px">
{rows}</table></div>
<div style="background:#fff;border-radius:8px;padding:16px;margin-bottom:16px">
<h2 style="font-size:16px;margin:0 0 8px">By day</h2>
<img src="{chart_src}" width="560" height="200" alt="Reminders sent (blue) and purchases after them (green), by day" style="display:block;max-width:100%;height:auto;margin-bottom:8px">
<table style="border-collapse:collapse;font-size:14px"><tr><th style="text-align:left;padding:2px 12px 2px 0">Day</th><th style="padding:2px 12px;color:#2563eb">Reminders sent</th><th style="padding:2px 0;color:#16a34a">Purchases after them</th></tr>
{days}</table></div>
<div style="background:#fff;border-radius:8px;padding:16px;margin-bottom:16px">
<h2 style="font-size:16px;margin:0 0 8px">Alerts this week</h2>
{alerts}</div>
<p><a href="{overview}" style="color:#2563eb">Open the overview</a></p>
</div></body></html>
"#,
            title = e(&self.subject()),
            span = e(&self.span_in_words()),
            overview = e(&self.overview),
        )
    }

    /// The email: text, HTML and the chart.
    pub fn notice(&self) -> anyhow::Result<super::Notice> {
        Ok(super::Notice {
            subject: format!("quicket-followup: {}", self.subject()),
            text: self.text(),
            html: Some(self.html(&format!("cid:{}", super::CHART_CID))),
            chart_png: Some(super::chart::png(&self.figures.daily)?),
            webhook: None,
        })
    }
}

fn signed_rands(cents: i64) -> String {
    if cents < 0 {
        format!("-{}", rands(-cents))
    } else {
        format!("+{}", rands(cents))
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
