//! Whether the From domain is ready to land in inboxes: its SPF, DKIM and DMARC records and its
//! MX, looked up in DNS (the system's resolver, or `QUICKET_FOLLOWUP_DNS_SERVER=host:port`), each
//! judged with what to publish when it is missing or weak. The judging is pure; only
//! [`look_up`] touches the network. No answer at all is one warning, never an error.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;

/// Sends the DNS questions to this server (host:port) instead of the system's.
pub const DNS_SERVER_ENV: &str = "QUICKET_FOLLOWUP_DNS_SERVER";
/// How long one question may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// What one question found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// These records (TXT strings joined, or MX hosts).
    Records(Vec<String>),
    /// The name exists without such a record, or does not exist.
    None,
    /// No answer (timeout, refused, no network): nothing can be said.
    Failed(String),
}

/// What DNS says about a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Records {
    /// TXT at the domain.
    pub txt: Answer,
    /// TXT at `_dmarc.<domain>`.
    pub dmarc: Answer,
    /// TXT at `<selector>._domainkey.<domain>`, when this service signs.
    pub dkim: Option<Answer>,
    /// MX of the domain.
    pub mx: Answer,
}

/// What this service knows of how it sends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sending {
    /// The From domain.
    pub domain: String,
    /// The SMTP server's host, when it sends through SMTP.
    pub smtp_host: Option<String>,
    /// When it signs: the record name and the TXT value it needs.
    pub dkim: Option<(String, String)>,
}

pub use crate::domain::Finding;

fn ok(text: String) -> Finding {
    Finding {
        warning: false,
        text,
    }
}

fn warn(text: String) -> Finding {
    Finding {
        warning: true,
        text,
    }
}

/// Whether a domain is one DNS can say nothing about (localhost, .test, .invalid ...).
pub fn is_private(domain: &str) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    !d.contains('.')
        || [
            "localhost",
            "test",
            "invalid",
            "example",
            "local",
            "internal",
            "lan",
        ]
        .iter()
        .any(|t| d.ends_with(&format!(".{t}")))
        || ["example.com", "example.net", "example.org"].contains(&d.as_str())
}

/// The SPF `include:` a known provider's SMTP host needs.
fn provider_include(host: &str) -> Option<&'static str> {
    let host = host.to_ascii_lowercase();
    [
        ("mailgun.org", "mailgun.org"),
        ("postmarkapp.com", "spf.mtasv.net"),
        ("sendgrid.net", "sendgrid.net"),
        ("amazonaws.com", "amazonses.com"),
        ("brevo.com", "spf.brevo.com"),
        ("sendinblue.com", "spf.brevo.com"),
        ("gmail.com", "_spf.google.com"),
        ("google.com", "_spf.google.com"),
        ("office365.com", "spf.protection.outlook.com"),
    ]
    .iter()
    .find(|(suffix, _)| host == *suffix || host.ends_with(&format!(".{suffix}")))
    .map(|(_, include)| *include)
}

fn tag<'a>(record: &'a str, name: &str) -> Option<&'a str> {
    record.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim())
    })
}

/// Judges what DNS said. Pure.
pub fn judge(sending: &Sending, records: &Records) -> Vec<Finding> {
    let d = &sending.domain;
    let mut all = vec![&records.txt, &records.dmarc, &records.mx];
    if let Some(dkim) = &records.dkim {
        all.push(dkim);
    }
    if let Some(why) = all.iter().find_map(|a| match a {
        Answer::Failed(why) => Some(why.clone()),
        _ => None,
    }) && all.iter().all(|a| matches!(a, Answer::Failed(_)))
    {
        return vec![warn(format!(
            "DNS: no answer ({why}): SPF, DKIM, DMARC and MX of {d} could not be checked; run check again where DNS works"
        ))];
    }
    let mut out = Vec::new();
    let failed =
        |what: &str, why: &str| warn(format!("{what}: no answer for {d} ({why}); not checked"));
    // SPF
    match &records.txt {
        Answer::Failed(why) => out.push(failed("SPF", why)),
        other => {
            let txt: &[String] = match other {
                Answer::Records(t) => t,
                _ => &[],
            };
            let spf: Vec<&String> = txt
                .iter()
                .filter(|t| t.trim_start().to_ascii_lowercase().starts_with("v=spf1"))
                .collect();
            let include = sending.smtp_host.as_deref().and_then(provider_include);
            let suggested = format!(
                "v=spf1 include:{} ~all",
                include.unwrap_or("<your provider's SPF domain>")
            );
            match spf.as_slice() {
                [] => out.push(warn(format!(
                    "SPF: {d} has no SPF record: publish TXT at {d}: \"{suggested}\""
                ))),
                [one] => match include {
                    Some(inc) if !one.to_ascii_lowercase().contains(&format!("include:{inc}")) => {
                        out.push(warn(format!(
                            "SPF: {d}'s record \"{one}\" does not include {inc}, which {} sends from: add include:{inc} before the all",
                            sending.smtp_host.as_deref().unwrap_or_default()
                        )))
                    }
                    _ => out.push(ok(format!("SPF: {d} publishes \"{one}\""))),
                },
                _ => out.push(warn(format!(
                    "SPF: {d} has {} SPF records, which makes receivers fail them all: merge them into one TXT record",
                    spf.len()
                ))),
            }
        }
    }
    // DKIM
    match (&sending.dkim, &records.dkim) {
        (Some((name, expected)), Some(answer)) => match answer {
            Answer::Failed(why) => out.push(failed("DKIM", why)),
            Answer::None => out.push(warn(format!(
                "DKIM: nothing is published at {name}: publish TXT at {name}: \"{expected}\""
            ))),
            Answer::Records(txt) => {
                let want = tag(expected, "p").unwrap_or_default();
                let found = txt.iter().find(|t| tag(t, "p").is_some());
                match found {
                    Some(t) if tag(t, "p").map(|p| p.replace(' ', "")) == Some(want.to_string()) => {
                        out.push(ok(format!("DKIM: {name} publishes this service's key")))
                    }
                    _ => out.push(warn(format!(
                        "DKIM: the record at {name} does not hold email.dkim_key's public key: publish TXT at {name}: \"{expected}\""
                    ))),
                }
            }
        },
        _ => out.push(ok(format!(
            "DKIM: not signed here (email.dkim_selector is empty): your provider must sign for {d}; publish the DKIM records it gives you"
        ))),
    }
    // DMARC
    match &records.dmarc {
        Answer::Failed(why) => out.push(failed("DMARC", why)),
        answer => {
            let dmarc = match answer {
                Answer::Records(t) => t
                    .iter()
                    .find(|t| t.trim_start().to_ascii_uppercase().starts_with("V=DMARC1")),
                _ => None,
            };
            match dmarc.and_then(|r| tag(r, "p").map(|p| (r, p.to_ascii_lowercase()))) {
                None => out.push(warn(format!(
                    "DMARC: {d} has no DMARC policy (Gmail and Yahoo require one of bulk senders): publish TXT at _dmarc.{d}: \"v=DMARC1; p=none; rua=mailto:postmaster@{d}\""
                ))),
                Some((record, policy)) if policy == "none" => out.push(ok(format!(
                    "DMARC: _dmarc.{d} publishes \"{record}\" (p=none: receivers only report; quarantine once SPF and DKIM pass)"
                ))),
                Some((record, _)) => out.push(ok(format!("DMARC: _dmarc.{d} publishes \"{record}\""))),
            }
        }
    }
    // MX
    match &records.mx {
        Answer::Failed(why) => out.push(failed("MX", why)),
        Answer::Records(hosts) if !hosts.is_empty() => {
            out.push(ok(format!("MX: {d} receives mail at {}", hosts.join(", "))));
        }
        _ => out.push(warn(format!(
            "MX: {d} has no MX record: replies to the From address cannot arrive, and some receivers refuse mail from such domains; publish MX records, or set email.reply_to to an address that receives mail"
        ))),
    }
    out
}

/// A resolver: the system's, or the one `QUICKET_FOLLOWUP_DNS_SERVER` names.
fn resolver() -> Result<TokioResolver, String> {
    let mut options = ResolverOpts::default();
    options.timeout = TIMEOUT;
    options.attempts = 1;
    let builder = match std::env::var(DNS_SERVER_ENV) {
        Ok(server) if !server.trim().is_empty() => {
            let addr: SocketAddr = server.trim().parse().map_err(|_| {
                format!("{DNS_SERVER_ENV}={server:?} is not host:port (e.g. 127.0.0.1:53)")
            })?;
            let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], group),
                TokioConnectionProvider::default(),
            )
        }
        _ => TokioResolver::builder_tokio()
            .map_err(|e| format!("the system's resolver cannot be read: {e}"))?,
    };
    let mut builder = builder;
    *builder.options_mut() = options;
    Ok(builder.build())
}

fn answer<T>(
    result: Result<T, hickory_resolver::ResolveError>,
    read: impl FnOnce(T) -> Vec<String>,
) -> Answer {
    match result {
        Ok(found) => {
            let records = read(found);
            if records.is_empty() {
                Answer::None
            } else {
                Answer::Records(records)
            }
        }
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Answer::None,
        Err(e) => Answer::Failed(e.to_string()),
    }
}

/// Asks DNS about `sending.domain`.
pub async fn look_up(sending: &Sending) -> Records {
    let resolver = match resolver() {
        Ok(r) => r,
        Err(why) => {
            let failed = Answer::Failed(why);
            return Records {
                txt: failed.clone(),
                dmarc: failed.clone(),
                dkim: sending.dkim.as_ref().map(|_| failed.clone()),
                mx: failed,
            };
        }
    };
    let fqdn = |name: &str| format!("{}.", name.trim_end_matches('.'));
    let txt = |lookup: hickory_resolver::lookup::TxtLookup| {
        lookup
            .iter()
            .map(|t| {
                t.iter()
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect::<String>()
            })
            .collect()
    };
    let d = &sending.domain;
    let (spf, dmarc, mx) = tokio::join!(
        resolver.txt_lookup(fqdn(d)),
        resolver.txt_lookup(fqdn(&format!("_dmarc.{d}"))),
        resolver.mx_lookup(fqdn(d)),
    );
    let dkim = match &sending.dkim {
        Some((name, _)) => Some(answer(resolver.txt_lookup(fqdn(name)).await, txt)),
        None => None,
    };
    Records {
        txt: answer(spf, txt),
        dmarc: answer(dmarc, txt),
        dkim,
        mx: answer(mx, |lookup| {
            lookup
                .iter()
                .map(|mx| mx.exchange().to_utf8().trim_end_matches('.').to_string())
                .collect()
        }),
    }
}

/// How this service sends, from `[email]`; `None` when From has no domain.
pub fn sending(config: &crate::config::EmailConfig) -> Option<Sending> {
    let domain = config
        .from
        .parse::<lettre::message::Mailbox>()
        .ok()?
        .email
        .domain()
        .to_ascii_lowercase();
    let smtp_host = (config.transport == crate::config::Transport::Smtp)
        .then(|| url::Url::parse(&config.smtp_url).ok())
        .flatten()
        .and_then(|u| u.host_str().map(str::to_string));
    let dkim = crate::email::dkim::signer(config)
        .ok()
        .flatten()
        .map(|s| (s.record_name().to_string(), s.info().txt_record()));
    Some(Sending {
        domain,
        smtp_host,
        dkim,
    })
}

/// The whole verdict for `[email]`: looked up, or a note when From's domain is not public.
pub async fn readiness(config: &crate::config::EmailConfig) -> Vec<Finding> {
    let Some(sending) = sending(config) else {
        return vec![];
    };
    if is_private(&sending.domain) {
        return vec![ok(format!(
            "DNS: {} is not a public domain, so SPF, DKIM and DMARC are not looked up (set email.from to your own domain)",
            sending.domain
        ))];
    }
    judge(&sending, &look_up(&sending).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sending() -> Sending {
        Sending {
            domain: "shop.co.za".into(),
            smtp_host: Some("smtp.mailgun.org".into()),
            dkim: Some((
                "qf._domainkey.shop.co.za".into(),
                "v=DKIM1; k=rsa; p=ABC".into(),
            )),
        }
    }

    fn records(txt: &[&str], dmarc: &[&str], dkim: &[&str], mx: &[&str]) -> Records {
        let a = |v: &[&str]| {
            if v.is_empty() {
                Answer::None
            } else {
                Answer::Records(v.iter().map(|s| s.to_string()).collect())
            }
        };
        Records {
            txt: a(txt),
            dmarc: a(dmarc),
            dkim: Some(a(dkim)),
            mx: a(mx),
        }
    }

    fn warnings(f: &[Finding]) -> Vec<String> {
        f.iter()
            .filter(|f| f.warning)
            .map(|f| f.text.clone())
            .collect()
    }

    #[test]
    fn a_ready_domain_has_no_warnings() {
        let r = records(
            &["v=spf1 include:mailgun.org ~all"],
            &["v=DMARC1; p=quarantine"],
            &["v=DKIM1; k=rsa; p=ABC"],
            &["mx.shop.co.za"],
        );
        assert_eq!(warnings(&judge(&sending(), &r)), Vec::<String>::new());
    }

    #[test]
    fn each_missing_record_names_what_to_publish() {
        let w = warnings(&judge(&sending(), &records(&[], &[], &[], &[])));
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w[0].contains("\"v=spf1 include:mailgun.org ~all\""));
        assert!(w[1].contains("qf._domainkey.shop.co.za: \"v=DKIM1; k=rsa; p=ABC\""));
        assert!(w[2].contains("_dmarc.shop.co.za"));
        assert!(w[3].starts_with("MX:"));
    }

    #[test]
    fn spf_without_the_providers_include_and_a_stale_dkim_key_warn() {
        let r = records(
            &["v=spf1 mx -all"],
            &["v=DMARC1; p=none"],
            &["v=DKIM1; p=OLD"],
            &["mx"],
        );
        let w = warnings(&judge(&sending(), &r));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("does not include mailgun.org"));
        assert!(w[1].contains("does not hold"));
    }

    #[test]
    fn no_answer_at_all_is_one_warning() {
        let failed = Answer::Failed("timed out".into());
        let r = Records {
            txt: failed.clone(),
            dmarc: failed.clone(),
            dkim: Some(failed.clone()),
            mx: failed,
        };
        let f = judge(&sending(), &r);
        assert_eq!(f.len(), 1);
        assert!(f[0].warning && f[0].text.contains("no answer"));
    }

    #[test]
    fn private_domains_are_not_looked_up() {
        assert!(is_private("localhost"));
        assert!(is_private("shop.test"));
        assert!(is_private("example.com"));
        assert!(!is_private("shop.co.za"));
    }
}
