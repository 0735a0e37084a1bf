//! The organiser's email templates: files read at run time (minijinja, Jinja syntax), strict about
//! unknown names, HTML auto-escaped in `body.html` only. This module is the one seam between the
//! reminder engine and the template engine.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDateTime;
use chrono_tz::Tz;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::config::ReminderStep;
use crate::domain::Cents;

/// The directory under `templates.dir` whose files every template may extend or include.
pub const SHARED: &str = "_shared";

/// The three files of a template.
pub const FILES: [&str; 3] = ["subject.txt", "body.html", "body.txt"];

/// Everything a template may name (contract section 4, plus `organiser.name`).
#[derive(Debug, Clone, Serialize)]
pub struct EmailContext {
    /// `buyer.email`, `buyer.name`, `buyer.first_name`
    pub buyer: BuyerContext,
    /// `event.id`, `event.name`, `event.date`, `event.url`
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

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// The HTML part.
    pub html: String,
    /// The plain-text part.
    pub text: String,
}

/// The loaded templates.
pub struct Templates {
    env: Environment<'static>,
    dir: PathBuf,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("dir", &self.dir).finish()
    }
}

impl Templates {
    /// Reads and compiles every template a step names, then renders each with sample data so that
    /// a misspelt name is an error now rather than at the first send.
    pub fn load(dir: &Path, steps: &[ReminderStep], timezone: Tz) -> anyhow::Result<Templates> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        add_filters(&mut env, timezone);
        // Escape HTML in body.html only (the default escapes by file extension).
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        let mut names: Vec<&str> = steps.iter().map(|s| s.template.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for name in &names {
            for file in FILES {
                let path = dir.join(name).join(file);
                let source = std::fs::read_to_string(&path).with_context(|| {
                    format!(
                        "template {name:?} (used by a [[reminders]] step) needs {}",
                        path.display()
                    )
                })?;
                env.add_template_owned(format!("{name}/{file}"), source)
                    .map_err(|e| template_error(&path, &e))?;
            }
        }
        // Shared pieces (a layout to `{% extends %}`, partials to `{% include %}`) live in
        // `_shared/`, so the look of every email is edited in one place.
        let shared = dir.join(SHARED);
        if shared.is_dir() {
            let entries = std::fs::read_dir(&shared)
                .with_context(|| format!("cannot read {}", shared.display()))?;
            for entry in entries {
                let path = entry?.path();
                let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                    continue;
                };
                if !path.is_file() || file.starts_with('.') {
                    continue;
                }
                let source = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                env.add_template_owned(format!("{SHARED}/{file}"), source)
                    .map_err(|e| template_error(&path, &e))?;
            }
        }
        let templates = Templates {
            env,
            dir: dir.to_path_buf(),
        };
        // Also with the values only Quicket's API fills, so that a misspelt name inside
        // `{% if event.image_url %}` is caught too.
        let mut detailed = sample_context();
        detailed.event.image_url = "https://images.quicket.co.za/0456.jpg".into();
        detailed.event.venue = "Kirstenbosch Gardens".into();
        for name in names {
            templates.render(name, &sample_context())?;
            templates.render(name, &detailed)?;
        }
        Ok(templates)
    }

    /// Renders template `name` (a directory under `templates.dir`).
    pub fn render(&self, name: &str, context: &EmailContext) -> anyhow::Result<Rendered> {
        let render = |file: &str| -> anyhow::Result<String> {
            let key = format!("{name}/{file}");
            let template = self
                .env
                .get_template(&key)
                .map_err(|e| template_error(&self.dir.join(&key), &e))?;
            template
                .render(minijinja::value::Serde(context))
                .map_err(|e| template_error(&self.dir.join(&key), &e))
        };
        let subject = render("subject.txt")?;
        Ok(Rendered {
            // A subject is one line, whatever the template or the data hold.
            subject: crate::domain::clean_text(&subject),
            html: render("body.html")?,
            text: render("body.txt")?,
        })
    }
}

/// The filters templates may use (documented in the README, "Editing the emails").
fn add_filters(env: &mut Environment<'static>, timezone: Tz) {
    // `{{ 1250|money }}` -> R1,250.00; `{{ "450.00"|money }}` -> R450.00; 0 -> free.
    env.add_filter(
        "money",
        |value: Value| -> Result<String, minijinja::Error> {
            let text = value.to_string();
            let cents = Cents::parse_decimal(&text).ok_or_else(|| {
                minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("money: {text:?} is not an amount"),
                )
            })?;
            Ok(format_money(Some(cents)))
        },
    );
    // `{{ "2026-12-12 18:30"|date }}` -> Saturday 12 December 2026 at 18:30; an RFC 3339 instant
    // is shown in the configured zone. An optional strftime format replaces the default.
    env.add_filter(
        "date",
        move |value: String, format: Option<String>| -> Result<String, minijinja::Error> {
            let local = parse_local(&value, timezone).ok_or_else(|| {
                minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("date: {value:?} is not a date like 2026-12-12 18:30"),
                )
            })?;
            Ok(match format {
                Some(f) => local.format(&f).to_string(),
                None => format_date(Some(local)),
            })
        },
    );
    // `{{ "Lerato Dlamini"|first_name }}` -> Lerato
    env.add_filter("first_name", |value: String| first_name(&value));
}

fn parse_local(text: &str, timezone: Tz) -> Option<NaiveDateTime> {
    let text = text.trim();
    [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&timezone).naive_local())
    })
}

/// An error that names the file, the line and what went wrong (e.g. the unknown name).
fn template_error(path: &Path, e: &minijinja::Error) -> anyhow::Error {
    let line = e.line().map(|l| format!(", line {l}")).unwrap_or_default();
    let mut detail = e.to_string();
    if let Some(d) = e.detail() {
        detail = format!("{detail} ({d})");
    }
    anyhow::anyhow!("{}{line}: {detail}", path.display())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_dates_and_names_for_people() {
        assert_eq!(format_money(Some(Cents(125000))), "R1,250.00");
        assert_eq!(format_money(Some(Cents(45050))), "R450.50");
        assert_eq!(format_money(Some(Cents(123456789))), "R1,234,567.89");
        assert_eq!(format_money(Some(Cents(0))), "free");
        assert_eq!(format_money(None), "");
        let d = NaiveDateTime::parse_from_str("2026-12-12 18:30", "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(format_date(Some(d)), "Saturday 12 December 2026 at 18:30");
        assert_eq!(first_name(" Lerato  Dlamini"), "Lerato");
        assert_eq!(first_name(""), "");
    }

    #[test]
    fn the_shipped_templates_load_and_render() {
        let steps = crate::config::Config::default().reminders;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/emails");
        let templates = Templates::load(&dir, &steps, chrono_tz::Africa::Johannesburg).unwrap();
        let mut context = sample_context();
        context.buyer.first_name = "<b>Ann</b>".into();
        let rendered = templates.render("abandoned", &context).unwrap();
        assert!(rendered.subject.contains("Jazz on the Lawn"));
        assert!(rendered.subject.chars().count() < 60);
        assert!(
            rendered.html.contains("&lt;b&gt;Ann"),
            "HTML is escaped in body.html"
        );
        assert!(rendered.text.contains("<b>Ann</b>"), "and not in body.txt");
        assert!(
            rendered
                .text
                .contains("http://127.0.0.1:8080/unsubscribe/sample")
        );
    }

    #[test]
    fn filters_format_for_people() {
        let mut env = Environment::new();
        add_filters(&mut env, chrono_tz::Africa::Johannesburg);
        let render = |src: &str| env.render_str(src, minijinja::context! {}).unwrap();
        assert_eq!(render("{{ 1250|money }}"), "R1,250.00");
        assert_eq!(render("{{ '450.5'|money }}"), "R450.50");
        assert_eq!(render("{{ 0|money }}"), "free");
        assert_eq!(
            render("{{ '2026-12-12 18:30'|date }}"),
            "Saturday 12 December 2026 at 18:30"
        );
        assert_eq!(
            render("{{ '2026-12-12T16:30:00Z'|date('%H:%M') }}"),
            "18:30"
        );
        assert_eq!(render("{{ 'Lerato Dlamini'|first_name }}"), "Lerato");
        assert!(
            env.render_str("{{ 'lots'|money }}", minijinja::context! {})
                .is_err()
        );
    }

    #[test]
    fn an_unknown_name_is_an_error_naming_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("subject.txt"), "Hi").unwrap();
        std::fs::write(t.join("body.html"), "<p>\n{{ buyer.frist_name }}</p>").unwrap();
        std::fs::write(t.join("body.txt"), "x").unwrap();
        let mut steps = crate::config::Config::default().reminders;
        steps.truncate(1);
        steps[0].template = "t".into();
        let error = Templates::load(dir.path(), &steps, chrono_tz::Africa::Johannesburg)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("body.html") && error.contains("line 2"),
            "{error}"
        );
        assert!(
            error.contains("frist_name") || error.contains("undefined"),
            "{error}"
        );
    }
}
