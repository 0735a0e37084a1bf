//! The overview's first part: what is wrong or not set up, each with where to act on it. The
//! pause (with its Resume button), the lasting alerts and refused reloads keep their own notices
//! above it; this list gathers the rest, so that nothing to act on waits at the bottom of the page.

use crate::domain::Finding;
use crate::store::problems::Since;

/// One thing to act on.
pub(super) struct Todo {
    /// What is wrong, in the organiser's words.
    pub(super) text: String,
    /// Where to act on it.
    pub(super) link: &'static str,
    /// The link's words.
    pub(super) link_text: &'static str,
    /// `bad` (nothing or not everything reaches buyers) or `warn`.
    pub(super) class: &'static str,
}

/// What the list is made from.
pub(super) struct Inputs<'a> {
    /// How sending goes, and its class (`bad`, `warn`, `ok`).
    pub(super) email: (&'a str, &'static str),
    /// The outbox directory, when emails are written there instead of sent to buyers.
    pub(super) outbox: Option<&'a str>,
    /// The From domain's DNS findings.
    pub(super) dns: &'a [Finding],
    /// Sends waiting for a retry, or refused in the last 7 days.
    pub(super) attention: i64,
    /// Quicket's API state, and its class.
    pub(super) api: (&'a str, &'static str),
    /// Problem hooks and new suppressions this week.
    pub(super) week: &'a Since,
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The suppression sources of the week in words: "2 unsubscribed, 1 bounced".
fn suppressed_words(week: &Since) -> String {
    week.suppressed
        .iter()
        .map(|(source, n)| {
            let what = match source.as_str() {
                "unsubscribe" => "unsubscribed through the link in an email",
                "bounce" => "bounced (the address does not exist)",
                "complaint" => "marked an email as spam",
                _ => "added by you",
            };
            format!("{n} {what}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What needs the organiser, most serious first.
pub(super) fn todo(i: &Inputs<'_>) -> Vec<Todo> {
    let mut list = Vec::new();
    if let Some(dir) = i.outbox {
        list.push(Todo {
            text: format!(
                "Not sending: reminders are written as files to {dir} and no buyer receives \
                 them (set email.transport = \"smtp\" and email.smtp_url)."
            ),
            link: "#health",
            link_text: "Email settings",
            class: "bad",
        });
    } else if i.email.1 == "bad" {
        list.push(Todo {
            text: format!("Emails are not going out: {}.", i.email.0),
            link: "#health",
            link_text: "Health",
            class: "bad",
        });
    }
    if i.attention > 0 {
        list.push(Todo {
            text: format!(
                "{} waiting to be retried, or refused by the mail server in the last 7 days.",
                plural(i.attention, "email", "emails")
            ),
            link: "#health",
            link_text: "Health",
            class: "warn",
        });
    }
    let dns = i.dns.iter().filter(|f| f.warning).count() as i64;
    if dns > 0 {
        list.push(Todo {
            text: format!(
                "The From domain's DNS: {} to fix, or reminders may land in spam.",
                plural(dns, "record", "records")
            ),
            link: "#dns",
            link_text: "What to publish",
            class: "warn",
        });
    }
    if i.week.problem_hooks > 0 {
        list.push(Todo {
            text: format!(
                "{} from Quicket this week could not be used as sent.",
                plural(i.week.problem_hooks, "message", "messages")
            ),
            link: "/admin/problems",
            link_text: "Problems",
            class: "warn",
        });
    }
    let suppressed: i64 = i.week.suppressed.iter().map(|(_, n)| n).sum();
    if suppressed > 0 {
        list.push(Todo {
            text: format!(
                "{} no longer emailed since this week: {}.",
                plural(suppressed, "address is", "addresses are"),
                suppressed_words(i.week)
            ),
            link: "/admin/suppressions",
            link_text: "Suppressions",
            class: "warn",
        });
    }
    if i.api.1 == "warn" {
        list.push(Todo {
            text: format!("Quicket's event details: {}.", i.api.0),
            link: "#health",
            link_text: "Health",
            class: "warn",
        });
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thing_to_act_on_has_its_link_and_nothing_when_all_is_well() {
        let week = Since {
            problem_hooks: 2,
            suppressed: vec![("unsubscribe".into(), 3), ("bounce".into(), 1)],
        };
        let dns = [
            Finding {
                warning: true,
                text: "no DMARC".into(),
            },
            Finding {
                warning: false,
                text: "SPF fine".into(),
            },
        ];
        let list = todo(&Inputs {
            email: ("not sending", "warn"),
            outbox: Some("data/outbox"),
            dns: &dns,
            attention: 1,
            api: ("failing", "warn"),
            week: &week,
        });
        let text: Vec<String> = list
            .iter()
            .map(|t| format!("{} [{}]", t.text, t.link))
            .collect();
        assert_eq!(
            text,
            [
                "Not sending: reminders are written as files to data/outbox and no buyer receives them (set email.transport = \"smtp\" and email.smtp_url). [#health]",
                "1 email waiting to be retried, or refused by the mail server in the last 7 days. [#health]",
                "The From domain's DNS: 1 record to fix, or reminders may land in spam. [#dns]",
                "2 messages from Quicket this week could not be used as sent. [/admin/problems]",
                "4 addresses are no longer emailed since this week: 3 unsubscribed through the link in an email, 1 bounced (the address does not exist). [/admin/suppressions]",
                "Quicket's event details: failing. [#health]",
            ]
        );
        let none = todo(&Inputs {
            email: ("working (SMTP)", "ok"),
            outbox: None,
            dns: &dns[1..],
            attention: 0,
            api: ("working", "ok"),
            week: &Since::default(),
        });
        assert!(none.is_empty());
    }
}
