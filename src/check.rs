//! `check` and `preview`: what an organiser runs after editing the config or a template, before
//! reloading the service.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;

use crate::config::{Config, StepTiming, Transport};
use crate::domain::{OrderState, email_key};
use crate::email::{self, Outgoing};
use crate::links::{LinkTarget, LinkUrls};
use crate::reminders::Engine;
use crate::reminders::pass::Settings;
use crate::store::{OrderRecord, Store};
use crate::templates::{self, EmailContext, Rendered};

/// What `check` found: lines to print, warnings, and errors (any error means exit 1).
#[derive(Debug, Default)]
pub struct CheckReport {
    /// What was checked and passed.
    pub ok: Vec<String>,
    /// Setups that work but look wrong.
    pub warnings: Vec<String>,
    /// Problems.
    pub errors: Vec<String>,
    /// The reminder plan in words.
    pub plan: Vec<String>,
    /// Per known event, the page its emails link to and where that came from.
    pub events: Vec<String>,
}

/// Runs every check on a loaded configuration. `send_test` sends each step to that address.
pub async fn check(
    config: Config,
    file: Option<&Path>,
    send_test: Option<&str>,
) -> anyhow::Result<CheckReport> {
    let mut report = CheckReport::default();
    report.ok.push(match file {
        Some(path) => format!("config {}: valid", path.display()),
        None => "config: none found, built-in defaults".into(),
    });
    report.warnings.extend(warnings(&config));
    report.plan = plan_in_words(&config);
    let config = Arc::new(config);
    let store = Store::open(&config.database.path)?;
    let result = check_with_store(&config, &store, send_test, &mut report).await;
    store.close().await;
    result?;
    Ok(report)
}

async fn check_with_store(
    config: &Arc<Config>,
    store: &Store,
    send_test: Option<&str>,
    report: &mut CheckReport,
) -> anyhow::Result<()> {
    // Loading renders every template with sample data; an unknown name stops here.
    let engine = match Engine::new(config.clone(), store.clone()).await {
        Ok(engine) => engine,
        Err(e) => {
            report.errors.push(format!("{e:#}"));
            return Ok(());
        }
    };
    let settings = engine.settings();
    let mut names: Vec<&str> = config
        .reminders
        .iter()
        .flat_map(|s| s.templates())
        .collect();
    names.sort_unstable();
    names.dedup();
    report.ok.push(match settings.templates.source() {
        crate::config::TemplateSource::BuiltIn => format!(
            "templates: the built-in ones (templates.dir is unset and there is no {}; `quicket-followup init` writes them out to edit): {} render with sample data",
            crate::config::DEFAULT_TEMPLATES_DIR,
            names.join(", ")
        ),
        crate::config::TemplateSource::Dir(dir) => format!(
            "templates in {}: {} render with sample data",
            dir.display(),
            names.join(", ")
        ),
    });
    let newest = store.newest_order().await?;
    if let Some(order) = &newest {
        for step in &config.reminders {
            let target = target_for(order, &order.email, &step.name);
            let info = cached_info(&engine, order).await;
            let links = engine.links().preview();
            let context = engine.context(
                &settings,
                order,
                &target,
                &links,
                &order.email,
                1,
                info.as_ref(),
            );
            for template in step.templates() {
                if let Err(e) = settings.templates.render(template, &context) {
                    report.errors.push(format!(
                        "step {} ({template}) with order {}: {e:#}",
                        step.name, order.reference
                    ));
                }
            }
        }
        if report.errors.is_empty() {
            report.ok.push(format!(
                "every step renders with the newest stored order ({})",
                order.reference
            ));
        }
    }
    match engine.mailer().test_connection().await {
        Ok(()) => report.ok.push(match config.email.transport {
            Transport::Outbox => format!(
                "email: written to the outbox {}",
                config.email.outbox_dir.display()
            ),
            Transport::Smtp => format!(
                "email: the SMTP server at {} answers",
                crate::email::redact_url(&config.email.smtp_url)
            ),
        }),
        Err(e) => report.errors.push(format!("email: {e:#}")),
    }
    match crate::email::dkim::signer(&config.email) {
        Ok(Some(signer)) => report.ok.push(format!(
            "DKIM: every email is signed with a {}-bit {} key as {} (publish TXT \"{}\")",
            signer.info().bits,
            signer.info().algorithm,
            signer.record_name(),
            signer.info().txt_record()
        )),
        Ok(None) => {}
        Err(e) => report.errors.push(format!("{e:#}")),
    }
    // The From domain's SPF, DKIM, DMARC and MX: warnings at worst, never an error.
    let findings = crate::dns::readiness(&config.email).await;
    for finding in &findings {
        match finding.warning {
            true => report.warnings.push(finding.text.clone()),
            false => report.ok.push(finding.text.clone()),
        }
    }
    if !findings.is_empty() {
        let _ = store.set_dns_readiness(chrono::Utc::now(), findings).await;
    }
    if let Some(address) = send_test {
        send_tests(&engine, &settings, newest.as_ref(), address, report).await;
    }
    event_pages(config, store, &engine, report).await
}

/// Events listed by `check` at most (the latest event dates first).
const CHECK_EVENTS: usize = 50;

/// Per known event, which page the emails use and where it came from; with a key, the events
/// are looked up first, so this also tests the key.
async fn event_pages(
    config: &Config,
    store: &Store,
    engine: &Engine,
    report: &mut CheckReport,
) -> anyhow::Result<()> {
    let mut known = store.read(crate::store::event_info::known_events).await?;
    let total = known.len();
    known.truncate(CHECK_EVENTS);
    let directory = engine.events();
    let infos = if directory.enabled() {
        let ids = known.iter().map(|e| e.event_id.clone()).collect();
        directory.refresh_for_check(ids).await
    } else {
        Default::default()
    };
    let stored: std::collections::HashMap<String, crate::store::event_info::StoredEvent> = store
        .read(crate::store::event_info::all)
        .await?
        .into_iter()
        .map(|e| (e.event_id.clone(), e))
        .collect();
    let status = directory.status().await;
    if !directory.enabled() {
        report.ok.push(
            "Quicket API: no quicket.api_key, so event pages come from [events] and email.event_url"
                .into(),
        );
    } else if status.failing == 0 {
        report.ok.push(format!(
            "Quicket API: {} of {} events looked up",
            status.events, total
        ));
    } else {
        report.warnings.push(format!(
            "Quicket API: the latest lookup failed for {} of {} events ({}); their emails use the configured URL",
            status.failing,
            status.events,
            status.last_error.clone().unwrap_or_default()
        ));
    }
    for event in &known {
        let row = stored.get(&event.event_id);
        let info = infos
            .get(&event.event_id)
            .or_else(|| row.and_then(|r| r.info.as_ref()));
        let page = describe_event(config, event, info, row, directory.enabled());
        report.events.push(format!(
            "event {} ({}): {} {}{}",
            event.event_id, event.name, page.url, page.source, page.details
        ));
    }
    if total > known.len() {
        report
            .events
            .push(format!("... and {} older events", total - known.len()));
    }
    Ok(())
}

/// One event's page as `check` and `/admin` show it.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The page the emails link to.
    pub url: String,
    /// Where it came from, in words.
    pub source: String,
    /// What Quicket's API said (when, image, sold-out types) or why it did not; may be empty.
    pub details: String,
}

/// Describes the page `event`'s emails link to and what Quicket's API said about it.
pub fn describe_event(
    config: &Config,
    event: &crate::store::event_info::KnownEvent,
    info: Option<&crate::events::EventInfo>,
    row: Option<&crate::store::event_info::StoredEvent>,
    api_enabled: bool,
) -> EventPage {
    let id = &event.event_id;
    // Without a key nothing from the API is used, whatever was kept from before.
    let (info, row) = if api_enabled {
        (info, row)
    } else {
        (None, None)
    };
    let (url, source) = crate::events::event_page(config, id, info);
    let mut details = String::new();
    match (info, row) {
        (Some(info), Some(row)) => {
            if let Some(at) = row.fetched_at {
                let _ = write!(details, ", looked up {}", local(config, at));
            }
            if let Some(image) = &info.image_url {
                let _ = write!(details, "; image {image}");
            }
            let sold_out: Vec<&str> = info
                .ticket_types
                .iter()
                .filter(|t| t.sold_out)
                .map(|t| t.name.as_str())
                .collect();
            if !sold_out.is_empty() {
                let _ = write!(details, "; sold out: {}", sold_out.join(", "));
            }
            if let Some(error) = &row.error {
                let _ = write!(details, " (the latest lookup failed: {error})");
            }
        }
        (None, Some(row)) => {
            if let Some(error) = &row.error {
                let _ = write!(details, " ({error})");
            }
        }
        (_, None) if api_enabled => details.push_str(" (not looked up yet)"),
        _ => {}
    }
    EventPage {
        url,
        source: source.describe(id),
        details,
    }
}

/// What Quicket's API said about an order's event, as kept.
async fn cached_info(engine: &Engine, order: &OrderRecord) -> Option<crate::events::EventInfo> {
    engine.events().cached(order.event_id.as_deref()?).await
}

fn local(config: &Config, at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&config.schedule.timezone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// Sends every step, rendered, to `address` (a fresh Message-ID each time, "[test]" in the subject).
pub async fn send_tests(
    engine: &Engine,
    settings: &Settings,
    order: Option<&OrderRecord>,
    address: &str,
    report: &mut CheckReport,
) {
    if let Err(why) = crate::domain::check_deliverable(address) {
        report
            .errors
            .push(format!("--send-test {address:?}: {why}"));
        return;
    }
    for step in &settings.config.reminders {
        // Real links, so the operator can try them; a click on one is never counted (no
        // reminder was sent), and forget removes them with the address.
        let target = LinkTarget {
            email_key: email_key(address),
            event_id: order
                .and_then(|o| o.event_id.clone())
                .unwrap_or_else(|| templates::sample_context().event.id),
            step: step.name.clone(),
        };
        let links = match engine.issue_links(&target, None, chrono::Utc::now()).await {
            Ok(links) => links,
            Err(e) => {
                report
                    .errors
                    .push(format!("test email for step {}: {e}", step.name));
                continue;
            }
        };
        let rendered = render_step(engine, settings, order, &step.name, address, &links).await;
        let sent = match rendered {
            Ok(mut content) => {
                content.subject = format!("[test] {}", content.subject);
                let outgoing = Outgoing {
                    to_email: address.to_string(),
                    to_name: String::new(),
                    content,
                    message_id: format!(
                        "<test.{}.{}@quicket-followup.invalid>",
                        step.name,
                        crate::links::random_token()
                    ),
                    unsubscribe_url: links.unsubscribe.clone(),
                };
                match email::build(&settings.config.email, &outgoing, SystemTime::now()) {
                    Ok(message) => engine
                        .mailer()
                        .send(&message)
                        .await
                        .map_err(|e| anyhow::anyhow!(e)),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => report.ok.push(format!(
                "test email for step {} sent to {address}",
                step.name
            )),
            Err(e) => report
                .errors
                .push(format!("test email for step {}: {e:#}", step.name)),
        }
    }
}

fn target_for(order: &OrderRecord, email: &str, step: &str) -> LinkTarget {
    LinkTarget {
        email_key: email_key(email),
        event_id: order.event_id.clone().unwrap_or_default(),
        step: step.to_string(),
    }
}

/// Renders `step` for `order` (or the sample data) as `address` would receive it, with `links`
/// (real ones for a test email, [`crate::links::Links::preview`] for a preview).
pub async fn render_step(
    engine: &Engine,
    settings: &Settings,
    order: Option<&OrderRecord>,
    step: &str,
    address: &str,
    links: &LinkUrls,
) -> anyhow::Result<Rendered> {
    let config = &settings.config;
    let step = config
        .reminders
        .iter()
        .find(|s| s.name == step)
        .with_context(|| {
            let names: Vec<&str> = config.reminders.iter().map(|s| s.name.as_str()).collect();
            format!("no step {step:?}; the steps are {}", names.join(", "))
        })?;
    let context: EmailContext = match order {
        Some(order) => {
            let target = target_for(order, address, &step.name);
            let info = cached_info(engine, order).await;
            engine.context(settings, order, &target, links, address, 1, info.as_ref())
        }
        None => {
            let mut sample = templates::sample_context();
            sample.buyer.email = address.to_string();
            sample.reminder.name = step.name.clone();
            sample.links.event = links.event.clone();
            sample.links.unsubscribe = links.unsubscribe.clone();
            sample.organiser.name = email::organiser_name(&config.email.from);
            sample
        }
    };
    // A real order is shown in the variant its buyer gets; sample data in the first.
    let template = match order {
        Some(order) => engine.template_for(
            step,
            &email_key(&order.email),
            order.event_id.as_deref().unwrap_or_default(),
        ),
        None => step.templates()[0].to_string(),
    };
    settings.templates.render(&template, &context)
}

/// `preview STEP [--reference REF] [--text]`: the subject, a blank line, then the body.
pub async fn preview(
    config: Config,
    step: &str,
    reference: Option<&str>,
    text: bool,
) -> anyhow::Result<String> {
    let config = Arc::new(config);
    let store = Store::open(&config.database.path)?;
    let result =
        async {
            let engine = Engine::new(config.clone(), store.clone()).await?;
            let settings = engine.settings();
            let order =
                match reference {
                    Some(reference) => Some(store.order(reference).await?.with_context(|| {
                        format!("no stored order has the reference {reference:?}")
                    })?),
                    None => None,
                };
            let address = order
                .as_ref()
                .map(|o| o.email.clone())
                .unwrap_or_else(|| templates::sample_context().buyer.email);
            let links = engine.links().preview();
            let rendered =
                render_step(&engine, &settings, order.as_ref(), step, &address, &links).await?;
            let body = if text { rendered.text } else { rendered.html };
            anyhow::Ok(format!("Subject: {}\n\n{body}", rendered.subject))
        }
        .await;
    store.close().await;
    result
}

/// Setups that work but are probably not what the organiser wants.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    if config.email.transport == Transport::Smtp {
        let url = config.email.smtp_url.trim();
        let plain = url.starts_with("smtp://") && !url.contains("tls=required");
        let host = url
            .split("://")
            .nth(1)
            .map(|rest| rest.rsplit('@').next().unwrap_or(rest))
            .map(|hostport| {
                hostport
                    .split(['/', '?'])
                    .next()
                    .unwrap_or_default()
                    .rsplit_once(':')
                    .map_or(hostport, |(h, _)| h)
            })
            .unwrap_or_default()
            .trim_matches(['[', ']']);
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let has_password = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.rsplit_once('@'))
            .is_some_and(|(userinfo, _)| userinfo.contains(':'));
        if plain && has_password && !loopback {
            warnings.push(format!(
                "email.smtp_url sends the password unencrypted to {host}: use smtps://...:465 or add ?tls=required"
            ));
        }
        let public = config.public_url();
        if public.contains("://localhost")
            || public.contains("://127.")
            || public.contains("://[::1]")
        {
            warnings.push(format!(
                "server.public_url is {public}: the links in real emails will not work for buyers; set it to the service's public https:// address"
            ));
        }
    }
    warnings.extend(send_rule_warnings(config));
    let dir = match config.templates.source() {
        Ok(crate::config::TemplateSource::Dir(dir)) => Some(dir),
        _ => None,
    };
    for step in config.reminders.iter().filter(|_| dir.is_some()) {
        for template in step.templates() {
            for file in templates::FILES {
                let Some(dir) = &dir else { break };
                let path = dir.join(template).join(file);
                if !path.exists() {
                    warnings.push(format!(
                        "step {} names template {template:?}, but {} is missing",
                        step.name,
                        path.display()
                    ));
                }
            }
        }
    }
    warnings
}

/// Send windows that are probably not what the organiser wants: holidays that change nothing, and,
/// in South Africa, hours the Consumer Protection Act forbids for direct marketing.
fn send_rule_warnings(config: &Config) -> Vec<String> {
    let s = &config.schedule;
    let mut warnings = Vec::new();
    let rule = s.send_rule();
    let own_windows = config.reminders.iter().any(|r| !r.send_window.is_unset());
    if rule.is_any_hour() && !own_windows && !s.holidays.holidays().is_empty() {
        warnings.push(
            "schedule.holidays changes nothing: send_window = \"\" sends at any hour of any day"
                .to_string(),
        );
    }
    if s.timezone != chrono_tz::Africa::Johannesburg {
        return warnings;
    }
    let act = crate::send_rules::SendRule::new(
        &crate::config::SendWindow::ZaCpa,
        s.timezone,
        crate::send_rules::Holidays::none(),
        "za-cpa",
    );
    let mut windows = vec![("schedule.send_window".to_string(), rule)];
    for step in config
        .reminders
        .iter()
        .filter(|r| !r.send_window.is_unset())
    {
        windows.push((
            format!("reminders.{}.send_window", step.name),
            s.step_send_rule(step),
        ));
    }
    for (key, rule) in windows {
        let example = if rule.is_any_hour() {
            Some("Sunday 10:00".to_string())
        } else {
            rule.allows_beyond(&act, s.timezone)
        };
        if let Some(example) = example {
            warnings.push(format!(
                "{key} allows emails when South Africa's Consumer Protection Act forbids direct marketing (e.g. {example}); abandoned-checkout reminders are direct marketing (\"za-cpa\" keeps to the Act)"
            ));
        }
    }
    warnings
}

fn states_in_words(states: &[OrderState]) -> String {
    let words: Vec<&str> = states
        .iter()
        .map(|s| match s {
            OrderState::Started => "started",
            OrderState::Cancelled => "cancelled",
            OrderState::EftPending => "waiting for an EFT payment",
            OrderState::Completed => "paid",
        })
        .collect();
    words.join(" or ")
}

/// The reminder plan in words, as `check` prints it and `/admin` will show it.
pub fn plan_in_words(config: &Config) -> Vec<String> {
    let s = &config.schedule;
    let d = crate::domain::duration_for_people;
    let mut lines = Vec::new();
    for step in &config.reminders {
        let when = states_in_words(&step.when);
        let mut line = format!("{}: ", step.name);
        match step.timing() {
            StepTiming::After(after) => {
                let _ = write!(
                    line,
                    "{} after the buyer's checkout was {when} and left alone",
                    d(after)
                );
            }
            StepTiming::BeforeEvent(before) => {
                let _ = write!(
                    line,
                    "{} before the event, to buyers whose checkout is {when}",
                    d(before)
                );
            }
        }
        if step.variants.is_empty() {
            let _ = write!(line, "; template {}", step.template);
        } else {
            let _ = write!(
                line,
                "; A/B variants {}, one each, evenly",
                step.variants.join(", ")
            );
        }
        if !step.send_window.is_unset() {
            let _ = write!(
                line,
                "; its own send window: {}",
                s.step_send_rule(step).describe()
            );
        }
        lines.push(line);
    }
    let rule = s.send_rule();
    let zone = if rule.is_any_hour() {
        String::new()
    } else {
        format!(" ({} time)", s.timezone)
    };
    let default = if s.send_window.is_unset() {
        format!(
            ", the default in {} (set schedule.send_window to change it)",
            s.timezone
        )
    } else {
        String::new()
    };
    lines.push(format!(
        "emails go out {}{zone}{default}; passes run on \"{}\"",
        rule.describe(),
        s.scan
    ));
    lines.push(format!(
        "nothing until a checkout has been still for {}; at most one email per buyer and event per {}",
        d(s.dormant_after),
        d(s.min_gap)
    ));
    lines.push(format!(
        "never about a checkout untouched for {}, nor within {} of the event or after it",
        d(s.give_up_after),
        d(s.stop_before_event)
    ));
    let off: Vec<&str> = config
        .events
        .iter()
        .filter(|(_, e)| !e.reminders)
        .map(|(id, _)| id.as_str())
        .collect();
    if !off.is_empty() {
        lines.push(format!("no reminders for events {}", off.join(", ")));
    }
    lines
}

/// Rands for people: `R1,250.00`.
pub fn rands(cents: i64) -> String {
    templates::format_money(Some(crate::domain::Cents(cents))).replace("free", "R0.00")
}

/// `stats` for people.
pub fn stats_in_words(stats: &crate::store::stats::Stats) -> String {
    // The honest figure first (the control group), then what is attributed to the reminders.
    let mut out = crate::stats_text::experiment_lines(stats.experiment.as_ref(), &stats.steps);
    let r = &stats.recovered;
    let _ = writeln!(
        out,
        "attributed (any purchase after a reminder, whether or not it made the difference): {} purchases, {} ({} after clicking the email's link); last 30 days: {} purchases, {}",
        r.total.purchases,
        rands(r.total.revenue_cents),
        r.clicked.purchases,
        r.last_30_days.purchases,
        rands(r.last_30_days.revenue_cents)
    );
    for step in &r.by_step {
        let _ = writeln!(
            out,
            "  {}: {} clicked ({}), {} did not click ({})",
            step.step,
            step.clicked.purchases,
            rands(step.clicked.revenue_cents),
            step.not_clicked.purchases,
            rands(step.not_clicked.revenue_cents)
        );
    }
    let _ = writeln!(out, "dormant buyer-events now: {}", stats.dormant_now);
    for w in &stats.windows {
        let list = |m: &std::collections::BTreeMap<String, i64>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let _ = writeln!(
            out,
            "last {}: hooks: {}; reminders: {}",
            w.window,
            list(&w.hooks),
            list(&w.reminders)
        );
    }
    out
}
