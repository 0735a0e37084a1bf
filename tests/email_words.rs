//! Emails written as words (the editor's simple mode). The shipped emails say what they said
//! before they were words: each, rendered with each sample, shows the same words in its HTML part
//! and its text part as the hand-written templates did (kept in `tests/golden/`), apart from the
//! changes listed in `CHANGED`, each made on purpose. Whatever an organiser types (HTML, template
//! code, line breaks, right-to-left marks, 100 KB) ends up as text in both parts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use common::templates_dir;
use quicket_followup::config::Config;
use quicket_followup::templates::{Templates, WORDS_FILE, Words, sample_contexts};

/// The visible words of an HTML part: no head, comments or tags, entities decoded, the
/// preheader's invisible fillers dropped, whitespace collapsed.
fn html_words(html: &str) -> String {
    let mut text = String::new();
    let html = match (html.find("<head>"), html.find("</head>")) {
        (Some(a), Some(b)) => format!("{}{}", &html[..a], &html[b + 7..]),
        _ => html.to_string(),
    };
    let mut rest = html.as_str();
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let close = if rest[open..].starts_with("<!--") {
            rest[open..].find("-->").map(|c| open + c + 3)
        } else {
            rest[open..].find('>').map(|c| open + c + 1)
        };
        let close = close.unwrap_or(rest.len());
        // A tag that breaks a line separates words.
        text.push(' ');
        rest = &rest[close..];
    }
    text.push_str(rest);
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let entity = &rest[amp..];
        let Some(semi) = entity.find(';').filter(|s| *s < 10) else {
            out.push('&');
            rest = &rest[amp + 1..];
            continue;
        };
        let name = &entity[1..semi];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "mdash" => Some('—'),
            "middot" => Some('·'),
            "nbsp" => Some(' '),
            _ => name
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&entity[..=semi]),
        }
        rest = &entity[semi + 1..];
    }
    out.push_str(rest);
    let out: String = out
        .chars()
        .filter(|c| !matches!(*c, '\u{2007}' | '\u{034f}'))
        .collect();
    words(&out)
}

/// Whitespace collapsed.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn rendered() -> String {
    let templates = Templates::load_dir(
        &templates_dir(),
        &Config::default().reminders,
        chrono_tz::Africa::Johannesburg,
    )
    .unwrap();
    let mut out = String::new();
    for name in EMAILS {
        for (i, context) in sample_contexts().iter().enumerate() {
            let email = templates.render(name, context).unwrap();
            out.push_str(&format!(
                "== {name} sample {i} subject\n{}\n",
                email.subject
            ));
            out.push_str(&format!(
                "== {name} sample {i} html\n{}\n",
                html_words(&email.html)
            ));
            out.push_str(&format!(
                "== {name} sample {i} text\n{}\n",
                words(&email.text)
            ));
        }
    }
    out
}

const EMAILS: [&str; 3] = ["abandoned", "eft_pending", "last_chance"];

/// What the words say differently from the hand-written templates, on purpose: (email, part,
/// before, after).
const CHANGED: &[(&str, &str, &str, &str)] = &[
    // The payment instructions are typed once, so the HTML part says what the text part said,
    // after the reference and the amount.
    (
        "eft_pending",
        "html",
        "Payment reference REF00987654 Please quote this as the reference on your bank transfer, so we can match the payment to your booking. Amount due R1,250.00",
        "Payment reference REF00987654 Amount due R1,250.00 Please quote this payment reference exactly as shown on your bank transfer, so we can match it to your booking.",
    ),
    (
        "eft_pending",
        "html",
        "Payment reference REF00987654 Please quote this as the reference on your bank transfer, so we can match the payment to your booking. Amount due If",
        "Payment reference REF00987654 Amount due Please quote this payment reference exactly as shown on your bank transfer, so we can match it to your booking. If",
    ),
    // The preview line is words: it no longer repeats the date (shown under the heading).
    (
        "last_chance",
        "html",
        "is coming up soon (Saturday 12 December 2026 at 18:30). There's",
        "is coming up soon. There's",
    ),
];

#[test]
fn the_shipped_files_are_made_from_their_words() {
    for name in EMAILS {
        let dir = templates_dir().join(name);
        let words = Words::parse(&std::fs::read_to_string(dir.join(WORDS_FILE)).unwrap()).unwrap();
        let made = words.files().unwrap();
        for (file, text) in ["subject.txt", "body.html", "body.txt"].iter().zip(made) {
            let path = dir.join(file);
            if std::env::var_os("GOLDEN_WRITE").is_some() {
                std::fs::write(&path, &text).unwrap();
            }
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                text,
                "{name}/{file} is not what its words make (GOLDEN_WRITE=1 writes it)"
            );
        }
    }
}

#[test]
fn every_shipped_email_says_the_same_words_as_before_in_both_parts() {
    let before = include_str!("golden/before.txt");
    let now = rendered();
    let sections = |text: &str| -> Vec<(String, String)> {
        text.split("== ")
            .filter(|s| !s.is_empty())
            .map(|s| {
                let (head, body) = s.split_once('\n').unwrap();
                (head.to_string(), body.trim_end().to_string())
            })
            .collect()
    };
    let before = sections(before);
    let now = sections(&now);
    assert_eq!(before.len(), now.len());
    for ((head, old), (head_now, new)) in before.iter().zip(&now) {
        assert_eq!(head, head_now);
        let mut expected = old.clone();
        for (email, part, from, to) in CHANGED {
            if head.starts_with(email) && head.ends_with(part) {
                expected = expected.replace(from, to);
            }
        }
        assert_eq!(&expected, new, "{head}");
    }
}

/// `GOLDEN_BEFORE=1` writes what the shipped emails say now into `tests/golden/before.txt`.
#[test]
fn write_golden() {
    if std::env::var_os("GOLDEN_BEFORE").is_some() {
        std::fs::write(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/before.txt"),
            rendered(),
        )
        .unwrap();
    }
}

/// The shipped templates with `name`'s files made from `words`, loaded as a reload loads them;
/// the abandoned email rendered with the first sample.
fn render_words(words: &Words) -> quicket_followup::templates::Rendered {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&templates_dir(), dir.path());
    let made = words.files().unwrap();
    for (file, text) in ["subject.txt", "body.html", "body.txt"].iter().zip(made) {
        std::fs::write(dir.path().join("abandoned").join(file), text).unwrap();
    }
    let templates = Templates::load_dir(
        dir.path(),
        &Config::default().reminders,
        chrono_tz::Africa::Johannesburg,
    )
    .unwrap();
    templates
        .render("abandoned", &sample_contexts()[0])
        .unwrap()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn shipped_words() -> Words {
    Words::parse(include_str!("../templates/emails/abandoned/words.toml")).unwrap()
}

/// What a typed field should show: control characters gone (line breaks and tabs are spaces),
/// whitespace collapsed.
fn typed(text: &str) -> String {
    let text: String = text
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect();
    words(&text)
}

fn assert_shown_as_text(typed_text: &str, email: &quicket_followup::templates::Rendered) {
    let want = typed(typed_text);
    assert!(
        words(&email.text).contains(&want),
        "text part lacks {want:?}:\n{}",
        email.text
    );
    assert!(
        html_words(&email.html).contains(&want),
        "HTML part lacks {want:?}"
    );
}

const HOSTILE: &[&str] = &[
    "<b>bold</b>",
    "<script>alert(1)</script>",
    "</p></td></table>",
    "&amp;",
    "&lt;",
    "{{ event.name }}",
    "{{ links.unsubscribe }}",
    "{% if true %}",
    "{% endblock %}",
    "{% raw %}",
    "{#",
    "#}",
    "%}",
    "}}",
    "{",
    "\r\n",
    "\n",
    "\r",
    "\n\n",
    "\u{202E}",
    "\u{200F}",
    "\u{2067}",
    "'",
    "\"",
    "é",
    "Jazz",
    " ",
    "\t",
    "\u{0}",
];

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: std::env::var("QF_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        ..Default::default()
    })]

    #[test]
    fn whatever_is_typed_ends_up_as_text_in_both_parts(
        pieces in proptest::collection::vec(proptest::sample::select(HOSTILE), 1..24),
        line in proptest::collection::vec(proptest::sample::select(HOSTILE), 1..8),
    ) {
        let opening: String = pieces.concat();
        let button: String = line.concat();
        let mut words = shipped_words();
        words.opening = format!("Start {opening} end");
        words.button = format!("Go {button} now");
        let email = render_words(&words);
        assert_shown_as_text(&words.opening, &email);
        assert_shown_as_text(&words.button, &email);
        // Nothing typed became markup or a value.
        assert!(!email.html.contains("<script>") && !email.html.contains("<b>bold"));
        assert!(!email.text.contains("Start Jazz on the Lawn"));
    }
}

#[test]
fn a_hundred_kilobytes_of_hostile_text_is_still_text() {
    let mut words = shipped_words();
    let mut opening = String::new();
    let mut i = 0;
    while opening.len() < 100 * 1024 {
        opening.push_str(HOSTILE[i % HOSTILE.len()]);
        opening.push(' ');
        i += 1;
    }
    words.opening = opening;
    let email = render_words(&words);
    assert_shown_as_text(&words.opening, &email);
    assert!(
        email
            .text
            .lines()
            .all(|l| l.chars().count() <= 72 || !l.contains(' '))
    );
}

#[test]
fn only_the_details_put_in_by_name_become_values() {
    let mut words = shipped_words();
    words.opening = "Hi [first name], see you at [event] on [event date] ([tickets], [total]): \
                     [event link]. Not [this] nor {{ buyer.name }}. **Soon.** \
                     [Map](https://maps.example.org/a?b=1&c=\"2\") or https://x.co.za/{{x}}."
        .into();
    words.no_first_name = "friend <3 {{ x }}".into();
    let email = render_words(&words);
    let text = words_of(&email.text);
    assert!(text.contains("Hi Lerato, see you at Jazz on the Lawn on Saturday 12 December 2026 at 18:30 (VIP, R1,250.00): http://127.0.0.1:8080/r/sample. Not [this] nor {{ buyer.name }}. *Soon.* Map (https://maps.example.org/a?b=1&c=\"2\") or https://x.co.za/{{x}}."), "{text}");
    assert!(email.html.contains("<strong>Soon.</strong>"));
    assert!(
        email
            .html
            .contains("href=\"https://maps.example.org/a?b=1&amp;c=%222%22\""),
        "{}",
        email.html
    );
    assert!(
        email
            .html
            .contains("href=\"https://x.co.za/%7B%7Bx%7D%7D\"")
    );
    let mut context = sample_contexts()[2].clone();
    context.buyer.first_name.clear();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&templates_dir(), dir.path());
    for (file, t) in ["subject.txt", "body.html", "body.txt"]
        .iter()
        .zip(words.files().unwrap())
    {
        std::fs::write(dir.path().join("abandoned").join(file), t).unwrap();
    }
    let templates = Templates::load_dir(
        dir.path(),
        &Config::default().reminders,
        chrono_tz::Africa::Johannesburg,
    )
    .unwrap();
    let email = templates.render("abandoned", &context).unwrap();
    assert!(
        email.text.contains("Hi friend <3 {{ x }},"),
        "{}",
        email.text
    );
    assert!(email.html.contains("Hi friend &lt;3 {{ x }},"));
    // A slip of the keyboard in a detail's name is refused with the one meant.
    words.opening = "Hi [frist name],".into();
    let e = words.files().unwrap_err().to_string();
    assert!(
        e.contains("Opening") && e.contains("Did you mean [first name]?"),
        "{e}"
    );
    words.opening = "Hi".into();
    words.subject = " \n ".into();
    assert!(words.files().unwrap_err().to_string().contains("subject"));
}

fn words_of(text: &str) -> String {
    words(text)
}
