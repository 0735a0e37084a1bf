//! A step rendered as a buyer would receive it (`preview`, `/admin/emails`), and test sends of
//! every step to one address (`check --send-test`, the emails page's button).

use std::time::SystemTime;

use anyhow::Context;

use crate::domain::email_key;
use crate::email::{self, Outgoing};
use crate::links::{LinkTarget, LinkUrls};
use crate::reminders::Engine;
use crate::reminders::pass::Settings;
use crate::store::OrderRecord;
use crate::templates::{self, EmailContext, Rendered};

/// The values a template sees for `order` sent to `address` as `step`, with `links`.
pub async fn order_context(
    engine: &Engine,
    settings: &Settings,
    order: &OrderRecord,
    step: &str,
    address: &str,
    links: &LinkUrls,
) -> EmailContext {
    let target = LinkTarget {
        email_key: email_key(address),
        event_id: order.event_id.clone().unwrap_or_default(),
        step: step.to_string(),
    };
    // What Quicket's API said about the order's event, as kept.
    let info = match order.event_id.as_deref() {
        Some(id) => engine.events().cached(id).await,
        None => None,
    };
    engine.context(settings, order, &target, links, address, 1, info.as_ref())
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
        Some(order) => order_context(engine, settings, order, &step.name, address, links).await,
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

/// One step's test email.
#[derive(Debug, Clone)]
pub struct TestSend {
    /// The step's name.
    pub step: String,
    /// Sent, or why not.
    pub result: Result<(), String>,
}

/// What sending the test emails did.
#[derive(Debug, Clone)]
pub enum TestSends {
    /// The address cannot receive mail: nothing was sent.
    Undeliverable {
        /// The address given.
        address: String,
        /// Why it cannot receive mail.
        why: &'static str,
    },
    /// Each step, in order, to `address`.
    Steps {
        /// The address given.
        address: String,
        /// Each step's outcome.
        steps: Vec<TestSend>,
    },
}

impl TestSends {
    /// What was sent, a line each.
    pub fn sent(&self) -> Vec<String> {
        match self {
            TestSends::Undeliverable { .. } => Vec::new(),
            TestSends::Steps { address, steps } => steps
                .iter()
                .filter(|s| s.result.is_ok())
                .map(|s| format!("test email for step {} sent to {address}", s.step))
                .collect(),
        }
    }

    /// What failed, a line each.
    pub fn failures(&self) -> Vec<String> {
        match self {
            TestSends::Undeliverable { address, why } => {
                vec![format!("--send-test {address:?}: {why}")]
            }
            TestSends::Steps { steps, .. } => steps
                .iter()
                .filter_map(|s| s.result.as_ref().err().map(|e| (&s.step, e)))
                .map(|(step, e)| format!("test email for step {step}: {e}"))
                .collect(),
        }
    }
}

/// Sends every step, rendered, to `address` (a fresh Message-ID each time, "[test]" in the subject).
pub async fn send_tests(
    engine: &Engine,
    settings: &Settings,
    order: Option<&OrderRecord>,
    address: &str,
) -> TestSends {
    if let Err(why) = crate::domain::check_deliverable(address) {
        return TestSends::Undeliverable {
            address: address.to_string(),
            why,
        };
    }
    let mut steps = Vec::new();
    for step in &settings.config.reminders {
        let result = send_test(engine, settings, order, &step.name, address).await;
        steps.push(TestSend {
            step: step.name.clone(),
            result,
        });
    }
    TestSends::Steps {
        address: address.to_string(),
        steps,
    }
}

/// Sends one step's test email.
async fn send_test(
    engine: &Engine,
    settings: &Settings,
    order: Option<&OrderRecord>,
    step: &str,
    address: &str,
) -> Result<(), String> {
    // Real links, so the operator can try them; a click on one is never counted (no reminder was
    // sent), and forget removes them with the address.
    let target = LinkTarget {
        email_key: email_key(address),
        event_id: order
            .and_then(|o| o.event_id.clone())
            .unwrap_or_else(|| templates::sample_context().event.id),
        step: step.to_string(),
    };
    let links = engine
        .issue_links(&target, None, chrono::Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    let sent = async {
        let mut content = render_step(engine, settings, order, step, address, &links).await?;
        content.subject = format!("[test] {}", content.subject);
        let outgoing = Outgoing {
            to_email: address.to_string(),
            to_name: String::new(),
            content,
            message_id: format!(
                "<test.{step}.{}@quicket-followup.invalid>",
                crate::links::random_token()
            ),
            unsubscribe_url: links.unsubscribe.clone(),
        };
        let message = email::build(&settings.config.email, &outgoing, SystemTime::now())?;
        engine
            .mailer()
            .send(&message)
            .await
            .map_err(|e| anyhow::anyhow!(e))
    };
    sent.await.map_err(|e| format!("{e:#}"))
}
