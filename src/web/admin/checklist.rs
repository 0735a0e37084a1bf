//! `/admin/setup`: the setup checklist, each item green once it is done, with what to do next:
//! who sends, how email leaves, where buyers' links point, whether the domain is ready, whether
//! Quicket is connected (a hook arrived), and the reminders in words. The overview shows how many
//! are done, and links here, until every item is green.

use askama::Template;
use chrono::Utc;
use warp::reply::Response;

use super::{NoQuery, page};
use crate::config::Transport;
use crate::web::{ApiError, AppState};

/// One item of the checklist.
pub struct Item {
    /// What it is about, in the organiser's words.
    pub title: &'static str,
    /// Whether it is done.
    pub done: bool,
    /// Where it stands, and what to do when it is not done.
    pub lines: Vec<String>,
    /// The page to go to for it: (address, words).
    pub link: Option<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "pages/admin/checklist.html")]
struct ChecklistPage {
    active: &'static str,
    notice: String,
    items: Vec<Item>,
    done: usize,
    webhook_url: String,
}

/// The host of an SMTP URL, without its user or password.
fn smtp_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The checklist as it stands now.
pub async fn items(state: &AppState) -> Result<Vec<Item>, ApiError> {
    let config = state.engine.settings().config.clone();
    let from = &config.email.from;
    let address = from
        .rsplit_once('<')
        .map_or(from.as_str(), |(_, a)| a.trim_end_matches('>'))
        .trim();
    let sender_ok = crate::domain::check_deliverable(address).is_ok();
    let sender = Item {
        title: "Who sends",
        done: sender_ok,
        lines: vec![if sender_ok {
            format!("Buyers see emails from {from}.")
        } else {
            format!(
                "Emails would come from {from}, which cannot receive replies: set email.from to \
                 your name and an address at your own domain."
            )
        }],
        link: None,
    };
    let smtp = config.email.transport == Transport::Smtp;
    let transport = Item {
        title: "How email leaves",
        done: smtp,
        lines: vec![if smtp {
            format!(
                "Through your mail provider's server, {}.",
                smtp_host(&config.email.smtp_url)
            )
        } else {
            format!(
                "Emails are written as files into {}: nothing reaches buyers yet. Set \
                 email.transport = \"smtp\" and email.smtp_url to your provider's server.",
                config.email.outbox_dir.display()
            )
        }],
        link: Some(("/admin/emails", "Send yourself a test email")),
    };
    let public = config.public_url();
    let local = ["127.0.0.1", "localhost", "[::1]", "0.0.0.0"]
        .iter()
        .any(|h| public.contains(h));
    let public_ok = public.starts_with("https://") && !local;
    let links = Item {
        title: "Where buyers' links point",
        done: public_ok,
        lines: vec![if public_ok {
            format!("Links in emails start with {public}.")
        } else {
            format!(
                "Links in emails start with {public}, which buyers cannot open: set \
                 server.public_url to this service's https:// address."
            )
        }],
        link: None,
    };
    let (checked, findings) = super::overview::dns_readiness(state, Utc::now()).await?;
    // A sender at no real domain has nothing to look up: not ready either.
    let dns_ok = sender_ok && !findings.is_empty() && findings.iter().all(|f| !f.warning);
    let mut lines: Vec<String> = findings.iter().map(|f| f.text.clone()).collect();
    lines.push(format!("Checked {checked}."));
    let domain = Item {
        title: "Whether the domain is ready",
        done: dns_ok,
        lines,
        link: None,
    };
    let last = state.store.last_hook_at().await?;
    let quicket = Item {
        title: "Connect Quicket",
        done: last.is_some(),
        lines: vec![match last {
            Some(at) => format!(
                "Quicket's last message arrived {}.",
                super::local(state, &crate::store::timestamp(at))
            ),
            None => "No message from Quicket yet: in Quicket, open your event's Settings, then \
                     Integrations and Webhooks, paste the address below, save, and press Send \
                     Test. This turns green when it arrives."
                .to_string(),
        }],
        link: None,
    };
    let reminders = Item {
        title: "The reminders",
        done: true,
        lines: crate::present::plan_in_words(&config),
        link: Some(("/admin/schedule", "Change the schedule")),
    };
    // Where the organiser's choices go: the settings file in the state directory.
    let settings = crate::config::settings_file_for(&config.database.path);
    let mut items = vec![sender, transport, links, domain, quicket, reminders];
    for item in items.iter_mut().take(3).filter(|i| !i.done) {
        item.lines.push(format!(
            "Your choices go in {} (the service's own settings file), then restart the service.",
            settings.display()
        ));
    }
    Ok(items)
}

/// `GET /admin/setup`.
pub(super) async fn page_handler(state: AppState, _: NoQuery) -> Result<Response, ApiError> {
    let items = items(&state).await?;
    let done = items.iter().filter(|i| i.done).count();
    let webhook_url = state
        .engine
        .settings()
        .config
        .webhook_url(&state.webhook_token);
    page(&ChecklistPage {
        active: "setup",
        notice: String::new(),
        items,
        done,
        webhook_url,
    })
}

#[cfg(test)]
mod tests {
    use super::smtp_host;

    #[test]
    fn the_smtp_host_never_carries_the_password() {
        assert_eq!(
            smtp_host("smtps://user%40x.co.za:p%40ss@smtp.gmail.com:465"),
            "smtp.gmail.com:465"
        );
        assert_eq!(smtp_host("smtp://127.0.0.1:25"), "127.0.0.1:25");
    }
}
