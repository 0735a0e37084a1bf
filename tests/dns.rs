//! `check`'s DNS readiness, against a small UDP DNS server started by the test (answering like a
//! real one, built with hickory-proto): each missing record is a warning naming what to publish;
//! a ready domain has none; a server that never answers is one warning and never an error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::str::FromStr;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Answers TXT and MX questions from `zone` (name without the final dot); everything else, and
/// names not in it, with no records.
fn dns_server(zone: HashMap<(String, RecordType), Vec<String>>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            let Ok(question) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut answer = Message::new();
            answer
                .set_id(question.id())
                .set_message_type(MessageType::Response)
                .set_op_code(OpCode::Query)
                .set_recursion_desired(true)
                .set_recursion_available(true)
                .set_response_code(ResponseCode::NoError);
            for q in question.queries() {
                answer.add_query(q.clone());
                let name = q
                    .name()
                    .to_utf8()
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                for value in zone.get(&(name, q.query_type())).into_iter().flatten() {
                    let rdata = match q.query_type() {
                        // Long TXT values (DKIM keys) travel as several strings of at most 255.
                        RecordType::TXT => RData::TXT(TXT::new(
                            value
                                .as_bytes()
                                .chunks(255)
                                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                                .collect(),
                        )),
                        RecordType::MX => RData::MX(MX::new(10, Name::from_str(value).unwrap())),
                        _ => continue,
                    };
                    answer.add_answer(Record::from_rdata(q.name().clone(), 300, rdata));
                }
            }
            let _ = socket.send_to(&answer.to_vec().unwrap(), from);
        }
    });
    addr
}

/// A DNS server that receives and never answers.
fn silent_server() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while socket.recv_from(&mut buf).is_ok() {}
    });
    addr
}

fn config(dir: &Path, extra_email: &str) -> String {
    let path = dir.join("quicket-followup.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[database]\npath = {:?}\n[email]\nfrom = \"Tickets <tickets@shop.co.za>\"\noutbox_dir = {:?}\n{extra_email}\n[templates]\ndir = {:?}\n",
            dir.join("data/followup.sqlite"),
            dir.join("data/outbox"),
            common::templates_dir()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn check(config: &str, dns: SocketAddr) -> (i32, Vec<String>, String) {
    let (code, out, err) = common::run_cli(
        &["--config", config, "check"],
        &[("QUICKET_FOLLOWUP_DNS_SERVER", &dns.to_string())],
    );
    let warnings = out
        .lines()
        .filter_map(|l| l.strip_prefix("warning  "))
        .map(str::to_string)
        .collect();
    (code, warnings, out + &err)
}

fn zone(entries: &[(&str, RecordType, &str)]) -> HashMap<(String, RecordType), Vec<String>> {
    let mut zone: HashMap<(String, RecordType), Vec<String>> = HashMap::new();
    for (name, kind, value) in entries {
        zone.entry((name.to_string(), *kind))
            .or_default()
            .push(value.to_string());
    }
    zone
}

#[test]
fn a_domain_without_spf_dkim_and_dmarc_gets_a_warning_for_each_naming_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let dns = dns_server(zone(&[(
        "shop.co.za",
        RecordType::TXT,
        "google-site-verification=abc",
    )]));
    let (code, warnings, out) = check(&config, dns);
    assert_eq!(code, 0, "{out}");
    let spf = warnings
        .iter()
        .find(|w| w.starts_with("SPF:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(spf.contains("publish TXT at shop.co.za: \"v=spf1"), "{spf}");
    let dmarc = warnings.iter().find(|w| w.starts_with("DMARC:")).unwrap();
    assert!(
        dmarc.contains("_dmarc.shop.co.za: \"v=DMARC1; p=none"),
        "{dmarc}"
    );
    assert!(warnings.iter().any(|w| w.starts_with("MX:")), "{out}");
    // Not signing here: a note that the provider must sign, not a warning.
    assert!(out.contains("DKIM: not signed here"), "{out}");
}

#[test]
fn a_ready_domain_has_no_dns_warnings_and_the_dkim_record_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    let (code, out, err) =
        common::run_cli(&["dkim-keygen", key.to_str().unwrap(), "--ed25519"], &[]);
    assert_eq!(code, 0, "{err}");
    let record = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("TXT "))
        .unwrap()
        .trim()
        .trim_matches('"')
        .to_string();
    let config = config(
        dir.path(),
        &format!("dkim_selector = \"qf\"\ndkim_key = {key:?}\n"),
    );
    let dns = dns_server(zone(&[
        (
            "shop.co.za",
            RecordType::TXT,
            "v=spf1 include:mailgun.org ~all",
        ),
        ("shop.co.za", RecordType::MX, "mx1.shop.co.za."),
        (
            "_dmarc.shop.co.za",
            RecordType::TXT,
            "v=DMARC1; p=quarantine; rua=mailto:d@shop.co.za",
        ),
        ("qf._domainkey.shop.co.za", RecordType::TXT, &record),
    ]));
    let (code, warnings, out) = check(&config, dns);
    assert_eq!(code, 0, "{out}");
    assert!(
        warnings.iter().all(|w| !w.starts_with("SPF")
            && !w.starts_with("DKIM")
            && !w.starts_with("DMARC")
            && !w.starts_with("MX")),
        "{out}"
    );
    assert!(
        out.contains("DKIM: qf._domainkey.shop.co.za publishes this service's key"),
        "{out}"
    );
    assert!(out.contains("DMARC: _dmarc.shop.co.za publishes"), "{out}");

    // The same check with the DKIM record missing names it with the exact value to publish.
    let dns = dns_server(zone(&[("shop.co.za", RecordType::TXT, "v=spf1 ~all")]));
    let (_, warnings, out) = check(&config, dns);
    let dkim = warnings
        .iter()
        .find(|w| w.starts_with("DKIM:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        dkim.contains(&format!("qf._domainkey.shop.co.za: \"{record}\"")),
        "{dkim}"
    );
}

#[test]
fn a_dns_server_that_never_answers_is_one_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let (code, warnings, out) = check(&config, silent_server());
    assert_eq!(code, 0, "{out}");
    let dns: Vec<&String> = warnings
        .iter()
        .filter(|w| {
            ["DNS", "SPF", "DKIM", "DMARC", "MX"]
                .iter()
                .any(|p| w.starts_with(p))
        })
        .collect();
    assert_eq!(dns.len(), 1, "{out}");
    assert!(dns[0].contains("no answer"), "{out}");
}
