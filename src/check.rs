//! `check` and `preview`: what an organiser runs after editing the config or a template, before
//! reloading the service.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::{Config, Transport};
use crate::present::{self, Lookups};
use crate::reminders::Engine;
use crate::reminders::pass::Settings;
use crate::store::{OrderRecord, Store};
use crate::templates;

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

impl CheckReport {
    /// Prints the report as `check` shows it: a line per finding, then the plan and event pages.
    pub fn print(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for line in &self.ok {
            writeln!(out, "ok       {line}")?;
        }
        for line in &self.warnings {
            writeln!(out, "warning  {line}")?;
        }
        for line in &self.errors {
            writeln!(out, "error    {line}")?;
        }
        writeln!(out, "\nThe reminder plan:")?;
        for line in &self.plan {
            writeln!(out, "  {line}")?;
        }
        if !self.events.is_empty() {
            writeln!(out, "\nEvent pages the emails link to:")?;
            for line in &self.events {
                writeln!(out, "  {line}")?;
            }
        }
        Ok(())
    }

    /// Ok without errors, else the first error (and how many more there are).
    pub fn verdict(&self) -> anyhow::Result<()> {
        match self.errors.first() {
            None => Ok(()),
            Some(first) if self.errors.len() == 1 => Err(anyhow::anyhow!("{first}")),
            Some(first) => Err(anyhow::anyhow!(
                "{first} (and {} more problems above)",
                self.errors.len() - 1
            )),
        }
    }
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
    if let Some(schedule) = &config.schedule.file {
        report
            .ok
            .push(format!("schedule {}: valid", schedule.display()));
    }
    let settings = crate::config::settings_file_for(&config.database.path);
    if settings.is_file() {
        report.ok.push(format!(
            "settings {}: valid (the organiser's choices)",
            settings.display()
        ));
    }
    report.warnings.extend(warnings(&config));
    report.plan = present::plan_in_words(&config);
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
    report.ok.push(templates_in_use(&settings));
    report.warnings.extend(words_warnings(&settings));
    let newest = store.newest_order().await?;
    if let Some(order) = &newest {
        render_with(&engine, &settings, order, report).await;
    }
    check_sending(&engine, config, report).await;
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
        let sends = present::send_tests(&engine, &settings, newest.as_ref(), address).await;
        report.ok.extend(sends.sent());
        report.errors.extend(sends.failures());
    }
    event_pages(store, &engine, report).await
}

/// What is wrong in the words (`words.toml`) of the templates in use, in the editor's sentences:
/// emails are sent as their files say, but the editor's simple mode would refuse these words.
fn words_warnings(settings: &Settings) -> Vec<String> {
    let crate::config::TemplateSource::Dir(dir) = settings.templates.source() else {
        return Vec::new();
    };
    let mut names: Vec<&str> = settings
        .config
        .reminders
        .iter()
        .flat_map(|s| s.templates())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut warnings = Vec::new();
    for name in names {
        let path = dir.join(name).join(crate::templates::WORDS_FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        match crate::templates::Words::parse(&text) {
            Err(e) => warnings.push(format!(
                "{}: {e:#} (the emails are sent as the other files say; the editor's simple mode cannot open these words)",
                path.display()
            )),
            Ok(words) => warnings.extend(words.errors().into_iter().map(|e| {
                format!(
                    "{}: {e} (the emails are sent as the other files say; the editor's simple mode will not save these words)",
                    path.display()
                )
            })),
        }
    }
    warnings
}

/// Which templates are in use (built-in or a directory), all of which rendered with sample data.
fn templates_in_use(settings: &Settings) -> String {
    let mut names: Vec<&str> = settings
        .config
        .reminders
        .iter()
        .flat_map(|s| s.templates())
        .collect();
    names.sort_unstable();
    names.dedup();
    match settings.templates.source() {
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
    }
}

/// Renders every template of every step with a real stored order.
async fn render_with(
    engine: &Engine,
    settings: &Settings,
    order: &OrderRecord,
    report: &mut CheckReport,
) {
    for step in &settings.config.reminders {
        let links = engine.links().preview();
        let context =
            present::order_context(engine, settings, order, &step.name, &order.email, &links).await;
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

/// The mail server (or the outbox) answers, and the DKIM key signs.
async fn check_sending(engine: &Engine, config: &Config, report: &mut CheckReport) {
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
}

/// Per known event, which page the emails use and where it came from; with a key, the events
/// are looked up first, so this also tests the key.
async fn event_pages(
    store: &Store,
    engine: &Engine,
    report: &mut CheckReport,
) -> anyhow::Result<()> {
    let listing = present::event_pages(engine, store, Lookups::Refresh).await?;
    let directory = engine.events();
    let status = directory.status().await;
    if !directory.enabled() {
        report.ok.push(
            "Quicket API: no quicket.api_key, so event pages come from [events] and email.event_url"
                .into(),
        );
    } else if status.failing == 0 {
        report.ok.push(format!(
            "Quicket API: {} of {} events looked up",
            status.events, listing.total
        ));
    } else {
        report.warnings.push(format!(
            "Quicket API: the latest lookup failed for {} of {} events ({}); their emails use the configured URL",
            status.failing,
            status.events,
            status.last_error.clone().unwrap_or_default()
        ));
    }
    for event in &listing.events {
        let page = &event.page;
        report.events.push(format!(
            "event {} ({}): {} {}{}",
            event.id, event.name, page.url, page.source, page.details
        ));
    }
    if listing.older() > 0 {
        report
            .events
            .push(format!("... and {} older events", listing.older()));
    }
    Ok(())
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
                present::render_step(&engine, &settings, order.as_ref(), step, &address, &links)
                    .await?;
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
        if let Some(url) = crate::config::SmtpUrl::parse(&config.email.smtp_url)
            && url.is_plain()
            && url.has_password()
            && !url.is_loopback()
        {
            warnings.push(format!(
                "email.smtp_url sends the password unencrypted to {}: use smtps://...:465 or add ?tls=required",
                url.host()
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
