//! An email as its words (the editor's simple mode): the subject, the preview line, the heading,
//! the opening paragraphs, the button's label, the closing line and signature, the footer's reason
//! and, for an EFT reminder, the payment instructions. Kept in `words.toml` beside the template's
//! files; `subject.txt`, `body.html` and `body.txt` are made from it, so a sentence is typed once.
//!
//! Whatever the organiser types is text: HTML, `{{ }}`, `{% %}` and line breaks never become
//! markup or template code. The only markup is `**bold**`, links (`https://...` or
//! `[label](https://...)`) and the personal details put in by name (`[first name]`, `[event]`).

use toml_edit::{DocumentMut, Item};

/// The file of a template that holds its words.
pub const WORDS_FILE: &str = "words.toml";

/// The widest line of a text part made from words.
pub const TEXT_WIDTH: usize = 72;

/// What sits between the opening and the button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Details {
    /// Nothing more.
    None,
    /// The tickets chosen with their prices and the total.
    Tickets,
    /// The EFT payment reference and the amount due, then the payment instructions.
    Payment,
}

impl Details {
    fn as_str(self) -> &'static str {
        match self {
            Details::None => "none",
            Details::Tickets => "tickets",
            Details::Payment => "payment",
        }
    }

    fn parse(text: &str) -> Option<Details> {
        match text {
            "none" | "" => Some(Details::None),
            "tickets" => Some(Details::Tickets),
            "payment" => Some(Details::Payment),
            _ => None,
        }
    }
}

/// The words of one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    /// The subject line.
    pub subject: String,
    /// The preview line an inbox shows after the subject.
    pub preview: String,
    /// The big heading at the top.
    pub heading: String,
    /// The greeting and the first paragraphs (separated by blank lines).
    pub opening: String,
    /// What the box between the opening and the button shows.
    pub details: Details,
    /// For [`Details::Payment`]: how to pay (paragraphs).
    pub payment: String,
    /// The button's label (the text part writes it above the event link).
    pub button: String,
    /// The line above the signature, e.g. "Thanks,".
    pub closing: String,
    /// Who signs, after the dash.
    pub signature: String,
    /// The footer's "You're receiving this because ..." sentence.
    pub reason: String,
    /// What `[first name]` says when the buyer's first name is unknown.
    pub no_first_name: String,
}

/// The fields of [`Words`]: the key in `words.toml`, the label the editor shows, and whether it
/// is one line.
pub const FIELDS: [(&str, &str, bool); 10] = [
    ("subject", "Subject", true),
    ("preview", "Preview line", true),
    ("heading", "Heading", true),
    ("opening", "Opening", false),
    ("payment", "Payment instructions", false),
    ("button", "Button", true),
    ("closing", "Closing line", true),
    ("signature", "Signature", true),
    ("reason", "Why they get this email", false),
    ("no_first_name", "When the first name is unknown, say", true),
];

/// A personal detail put into the words by name, e.g. `[first name]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// `buyer.first_name`, or [`Words::no_first_name`].
    FirstName,
    /// `buyer.name`
    FullName,
    /// `buyer.email`
    Email,
    /// `event.name`
    Event,
    /// `event.date`
    EventDate,
    /// `event.venue`
    Venue,
    /// The types of the tickets chosen.
    Tickets,
    /// `order.amount`
    Total,
    /// `links.event`
    EventLink,
    /// `order.reference`
    Reference,
    /// `organiser.name`, or "The organisers".
    Organiser,
}

/// Every detail: its name in words, what it holds, and the value it names.
pub const DETAILS: [(Detail, &str, &str, &str); 11] = [
    (
        Detail::FirstName,
        "first name",
        "the buyer's first name",
        "buyer.first_name",
    ),
    (
        Detail::FullName,
        "full name",
        "the buyer's full name",
        "buyer.name",
    ),
    (
        Detail::Email,
        "email address",
        "the buyer's email address",
        "buyer.email",
    ),
    (Detail::Event, "event", "the event's name", "event.name"),
    (
        Detail::EventDate,
        "event date",
        "the event's date and time, written out",
        "event.date",
    ),
    (
        Detail::Venue,
        "venue",
        "the venue (empty when unknown)",
        "event.venue",
    ),
    (
        Detail::Tickets,
        "tickets",
        "the tickets chosen",
        "order.tickets",
    ),
    (Detail::Total, "total", "the order's total", "order.amount"),
    (
        Detail::EventLink,
        "event link",
        "the link to the event's page",
        "links.event",
    ),
    (
        Detail::Reference,
        "payment reference",
        "the order's reference, to quote on a bank transfer",
        "order.reference",
    ),
    (
        Detail::Organiser,
        "organiser",
        "your name, as in the From address",
        "organiser.name",
    ),
];

impl Detail {
    /// Its name in words, as written between brackets.
    pub fn name(self) -> &'static str {
        DETAILS
            .iter()
            .find(|(d, ..)| *d == self)
            .map(|(_, name, ..)| *name)
            .unwrap_or_default()
    }

    fn by_name(name: &str) -> Option<Detail> {
        let name = name.trim().to_lowercase();
        DETAILS
            .iter()
            .find(|(_, n, ..)| *n == name)
            .map(|(d, ..)| *d)
    }

    /// The nearest name to a misspelt one, if it is near enough to be a slip.
    fn nearest(name: &str) -> Option<&'static str> {
        let name = name.trim().to_lowercase();
        if name.chars().count() > 24 {
            return None;
        }
        DETAILS
            .iter()
            .map(|(_, n, ..)| (*n, strsim::damerau_levenshtein(&name, n)))
            .filter(|(n, d)| *d > 0 && *d <= (n.len() / 4).clamp(1, 2))
            .min_by_key(|(_, d)| *d)
            .map(|(n, _)| n)
    }
}

/// What a detail says for `context` (the editor's list shows it for the sample buyer).
pub fn sample_value(detail: Detail, context: &super::EmailContext, no_first_name: &str) -> String {
    match detail {
        Detail::FirstName if context.buyer.first_name.is_empty() => no_first_name.to_string(),
        Detail::FirstName => context.buyer.first_name.clone(),
        Detail::FullName => context.buyer.name.clone(),
        Detail::Email => context.buyer.email.clone(),
        Detail::Event => context.event.name.clone(),
        Detail::EventDate => context.event.date.clone(),
        Detail::Venue => context.event.venue.clone(),
        Detail::Tickets => context
            .order
            .tickets
            .iter()
            .map(|t| t.ticket_type.clone())
            .collect::<Vec<_>>()
            .join(", "),
        Detail::Total => context.order.amount.clone(),
        Detail::EventLink => context.links.event.clone(),
        Detail::Reference => context.order.reference.clone(),
        Detail::Organiser if context.organiser.name.is_empty() => "The organisers".into(),
        Detail::Organiser => context.organiser.name.clone(),
    }
}

/// A mistake in the words: which field, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{label}: {message}")]
pub struct WordsError {
    /// The field's key (`subject`, `opening`, ...).
    pub field: &'static str,
    /// The field's label.
    pub label: &'static str,
    /// What is wrong, in words.
    pub message: String,
}

impl Words {
    /// The value of field `key` (one of [`FIELDS`]).
    pub fn get(&self, key: &str) -> &str {
        match key {
            "subject" => &self.subject,
            "preview" => &self.preview,
            "heading" => &self.heading,
            "opening" => &self.opening,
            "payment" => &self.payment,
            "button" => &self.button,
            "closing" => &self.closing,
            "signature" => &self.signature,
            "reason" => &self.reason,
            "no_first_name" => &self.no_first_name,
            _ => "",
        }
    }

    /// Sets field `key` (one of [`FIELDS`]) as typed: line breaks as `\n`.
    pub fn set(&mut self, key: &str, value: &str) {
        let value = value.replace("\r\n", "\n").replace('\r', "\n");
        let slot = match key {
            "subject" => &mut self.subject,
            "preview" => &mut self.preview,
            "heading" => &mut self.heading,
            "opening" => &mut self.opening,
            "payment" => &mut self.payment,
            "button" => &mut self.button,
            "closing" => &mut self.closing,
            "signature" => &mut self.signature,
            "reason" => &mut self.reason,
            "no_first_name" => &mut self.no_first_name,
            _ => return,
        };
        *slot = value;
    }

    /// Reads a `words.toml`; an unknown key, a value that is not a string or an unknown kind of
    /// details is an error naming it.
    pub fn parse(text: &str) -> anyhow::Result<Words> {
        let doc: DocumentMut = text
            .parse()
            .map_err(|e| anyhow::anyhow!("{WORDS_FILE} is not TOML: {e}"))?;
        let mut words = Words::empty();
        for (key, item) in doc.iter() {
            let value = item
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("{WORDS_FILE}: {key} must be a string"))?;
            if key == "details" {
                words.details = Details::parse(value).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{WORDS_FILE}: details = {value:?} is not one of \"none\", \"tickets\", \"payment\""
                    )
                })?;
            } else if FIELDS.iter().any(|(k, ..)| *k == key) {
                words.set(key, value);
            } else {
                anyhow::bail!(
                    "{WORDS_FILE}: {key} is not a field of an email's words (those are details, {})",
                    FIELDS.map(|(k, ..)| k).join(", ")
                );
            }
        }
        Ok(words)
    }

    /// Nothing written yet, no details.
    pub fn empty() -> Words {
        Words {
            subject: String::new(),
            preview: String::new(),
            heading: String::new(),
            opening: String::new(),
            details: Details::None,
            payment: String::new(),
            button: String::new(),
            closing: String::new(),
            signature: String::new(),
            reason: String::new(),
            no_first_name: String::new(),
        }
    }

    /// As `words.toml` holds it.
    pub fn to_toml(&self) -> String {
        let mut doc = DocumentMut::new();
        doc.insert("details", Item::Value(self.details.as_str().into()));
        for (key, ..) in FIELDS {
            if key == "payment" && self.details != Details::Payment {
                continue;
            }
            doc.insert(key, Item::Value(self.get(key).into()));
        }
        format!(
            "# The words of this email, as the editor's simple mode writes them; subject.txt,\n\
             # body.html and body.txt are made from them. [first name], [event] and the other names\n\
             # in brackets are the buyer's details; **bold** and links are the only markup.\n{doc}"
        )
    }

    /// The three files made from the words: `subject.txt`, `body.html`, `body.txt`; or the first
    /// mistake in them.
    pub fn files(&self) -> Result<[String; 3], WordsError> {
        let mut errors = self.errors();
        if !errors.is_empty() {
            return Err(errors.remove(0));
        }
        Ok(self.files_unchecked())
    }

    /// The three files made from the words even with mistakes in them (a misspelt detail is
    /// written as text), for a preview that keeps working while one field is wrong.
    pub fn files_anyway(&self) -> [String; 3] {
        self.files_unchecked()
    }

    /// Every mistake in the words, in the order of [`FIELDS`].
    pub fn errors(&self) -> Vec<WordsError> {
        let mut errors = Vec::new();
        for (key, label, _) in FIELDS {
            if key == "payment" && self.details != Details::Payment {
                continue;
            }
            let error = |message: String| WordsError {
                field: key,
                label,
                message,
            };
            if let Err(message) = parse_inline(self.get(key), true) {
                errors.push(error(message));
            } else if matches!(key, "subject" | "button") && self.get(key).trim().is_empty() {
                errors.push(error(match key {
                    "subject" => "an email needs a subject: write one".into(),
                    _ => "the button needs a label, e.g. \"Get your tickets\"".into(),
                }));
            }
        }
        errors
    }

    fn files_unchecked(&self) -> [String; 3] {
        let html = Target::Html {
            no_first_name: &self.no_first_name,
        };
        let text = Target::Text {
            no_first_name: &self.no_first_name,
        };
        let line = |value: &str, target: Target<'_>| one_line(value, target);
        let subject = line(&self.subject, text);
        let mut body = String::from(
            "{% extends \"_shared/layout.html\" %}\n\
             {#- Made from words.toml by the editor's simple mode. The look, the button's link and the\n    \
             unsubscribe footer are in ../_shared/layout.html. -#}\n\n",
        );
        body.push_str(&format!(
            "{{% block title %}}{}{{% endblock %}}\n\n",
            line(&self.subject, html)
        ));
        body.push_str(&format!(
            "{{% block preheader %}}{}{{% endblock %}}\n\n",
            line(&self.preview, html)
        ));
        body.push_str(&format!(
            "{{% block heading %}}{}{{% endblock %}}\n\n",
            line(&self.heading, html)
        ));
        body.push_str("{% block intro %}");
        for (i, paragraph) in paragraphs(&self.opening).iter().enumerate() {
            let margin = if i == 0 { "24px 0 12px" } else { "0 0 16px" };
            body.push_str(&format!(
                "<p style=\"margin:{margin};\">{}</p>\n",
                block(paragraph, html)
            ));
        }
        body.push_str("{% endblock %}\n\n");
        body.push_str("{% block details %}");
        match self.details {
            Details::None => {}
            Details::Tickets => body.push_str(TICKETS_HTML),
            Details::Payment => {
                body.push_str(PAYMENT_HTML);
                let paragraphs = paragraphs(&self.payment);
                if !paragraphs.is_empty() {
                    body.push_str(PAYMENT_TEXT_OPEN);
                    for (i, paragraph) in paragraphs.iter().enumerate() {
                        let margin = if i + 1 == paragraphs.len() {
                            "0"
                        } else {
                            "0 0 12px"
                        };
                        body.push_str(&format!(
                            "<p style=\"margin:{margin};\">{}</p>\n",
                            block(paragraph, html)
                        ));
                    }
                    body.push_str("</td>\n</tr>\n");
                }
            }
        }
        body.push_str("{% endblock %}\n\n");
        body.push_str(&format!(
            "{{% block button %}}{}{{% endblock %}}\n\n",
            line(&self.button, html)
        ));
        body.push_str(&format!(
            "{{% block sign_off %}}{}{{% endblock %}}\n\n",
            line(&self.closing, html)
        ));
        body.push_str(&format!(
            "{{% block signature %}}{}{{% endblock %}}\n\n",
            line(&self.signature, html)
        ));
        body.push_str(&format!(
            "{{% block reason %}}{}{{% endblock %}}\n",
            block(&self.reason, html)
        ));

        let mut plain = String::new();
        plain.push_str(&wrapped(&self.opening, text));
        plain.push_str("\n\n");
        match self.details {
            Details::None | Details::Tickets => {
                plain.push_str(
                    "{% if event.date %}When: {{ event.date }}\n\
                     {% endif %}{% if event.venue %}Where: {{ event.venue }}\n\
                     {% endif %}{% if event.date or event.venue %}\n{% endif %}",
                );
                if self.details == Details::Tickets {
                    plain.push_str(
                        "{% if order.tickets %}You chose:\n\
                         {% for t in order.tickets %}  - {{ t.type }}{% if t.attendee_name %} ({{ t.attendee_name }}){% endif %}: {{ t.price }}\n\
                         {% endfor %}  Total: {{ order.amount }}\n\n{% endif %}",
                    );
                }
            }
            Details::Payment => {
                plain.push_str(
                    "  Payment reference:  {{ order.reference }}\n  \
                     Amount due:         {{ order.amount }}\n\n",
                );
                if !self.payment.trim().is_empty() {
                    plain.push_str(&wrapped(&self.payment, text));
                    plain.push_str("\n\n");
                }
                plain.push_str(
                    "{% if event.date %}The event is on {{ event.date }}{% if event.venue %} at {{ event.venue }}{% endif %}.\n\n{% endif %}",
                );
            }
        }
        plain.push_str(&format!(
            "{}:\n{{{{ links.event }}}}\n\n",
            line(&self.button, text)
        ));
        plain.push_str(&format!(
            "{}\n— {}\n\n",
            line(&self.closing, text),
            line(&self.signature, text)
        ));
        plain.push_str(&"-".repeat(TEXT_WIDTH));
        plain.push('\n');
        plain.push_str(&wrapped(&self.reason, text));
        plain.push_str("\n\n{% include \"_shared/footer.txt\" %}\n");
        [subject, body, plain]
    }
}

/// The tickets table of the HTML part (as the shipped abandoned email had it).
const TICKETS_HTML: &str = r#"{% if order.tickets %}<tr>
<td style="padding:8px 28px;">
<table role="presentation" class="qf-box" width="100%" border="0" cellpadding="0" cellspacing="0" style="width:100%; background-color:#f7f8fa; border:1px solid #dde1e6; border-radius:6px;">
{% for t in order.tickets %}<tr>
<td class="qf-text qf-rule" style="padding:10px 14px;{% if not loop.first %} border-top:1px solid #dde1e6;{% endif %} font-family:-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; font-size:15px; line-height:20px; color:#1f2933;">{{ t.type }}{% if t.attendee_name %}<br><span class="qf-muted" style="font-size:13px; line-height:18px; color:#52606d;">{{ t.attendee_name }}</span>{% endif %}</td>
<td class="qf-text qf-rule" align="right" valign="top" style="padding:10px 14px;{% if not loop.first %} border-top:1px solid #dde1e6;{% endif %} font-family:-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; font-size:15px; line-height:20px; color:#1f2933; white-space:nowrap;">{{ t.price }}</td>
</tr>
{% endfor %}<tr>
<td class="qf-text qf-rule" style="padding:10px 14px; border-top:1px solid #c4cad2; font-family:-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; font-size:15px; line-height:20px; font-weight:bold; color:#1f2933;">Total</td>
<td class="qf-text qf-rule" align="right" style="padding:10px 14px; border-top:1px solid #c4cad2; font-family:-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; font-size:15px; line-height:20px; font-weight:bold; color:#1f2933; white-space:nowrap;">{{ order.amount }}</td>
</tr>
</table>
</td>
</tr>
{% endif %}"#;

/// The payment box of the HTML part: the reference to quote and the amount due.
const PAYMENT_HTML: &str = r#"<tr>
<td style="padding:8px 28px;">
<table role="presentation" class="qf-box" width="100%" border="0" cellpadding="0" cellspacing="0" style="width:100%; background-color:#f7f8fa; border:1px solid #dde1e6; border-radius:6px;">
<tr>
<td class="qf-text" style="padding:16px 18px 14px; font-family:-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; color:#1f2933;">
<p class="qf-muted" style="margin:0; font-size:13px; line-height:18px; font-weight:bold; letter-spacing:0.5px; text-transform:uppercase; color:#52606d;">Payment reference</p>
<p class="qf-text" style="margin:4px 0 0; font-family:'Courier New', Courier, monospace; font-size:26px; line-height:32px; font-weight:bold; letter-spacing:1px; color:#1f2933; word-break:break-all;">{{ order.reference }}</p>
</td>
</tr>
<tr>
<td class="qf-text qf-rule" style="padding:14px 18px 16px; border-top:1px solid #dde1e6; font-family:-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; color:#1f2933;">
<p class="qf-muted" style="margin:0; font-size:13px; line-height:18px; font-weight:bold; letter-spacing:0.5px; text-transform:uppercase; color:#52606d;">Amount due</p>
<p class="qf-text" style="margin:4px 0 0; font-size:22px; line-height:28px; font-weight:bold; color:#1f2933;">{{ order.amount }}</p>
</td>
</tr>
</table>
</td>
</tr>
"#;

/// The row the payment instructions' paragraphs sit in.
const PAYMENT_TEXT_OPEN: &str = r#"<tr>
<td class="qf-text" style="padding:16px 28px 0; font-family:-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; font-size:16px; line-height:24px; color:#1f2933;">
"#;

/// Which part words are written into.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Html { no_first_name: &'a str },
    Text { no_first_name: &'a str },
}

/// A piece of a line of words.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inline {
    Text(String),
    Detail(Detail),
    Bold(Vec<Inline>),
    Link { label: String, url: String },
    Break,
}

/// The paragraphs of a field: separated by blank lines, each trimmed.
fn paragraphs(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(current.join("\n").trim().to_string());
                current.clear();
            }
        } else {
            current.push(line.trim_end());
        }
    }
    if !current.is_empty() {
        out.push(current.join("\n").trim().to_string());
    }
    out
}

/// Text without control characters (a tab is a space, a line break stays, CR LF and CR are LF).
fn clean(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter_map(|c| match c {
            '\n' => Some('\n'),
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// A one-line field: line breaks are spaces.
fn one_line(value: &str, target: Target<'_>) -> String {
    let flat: String = clean(value)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    render(&parse_inline(&flat, false).unwrap_or_default(), target)
}

/// A paragraph of the HTML part: its single line breaks kept as `<br>`.
fn block(value: &str, target: Target<'_>) -> String {
    let joined = paragraphs(value).join("\n\n");
    render(&parse_inline(&joined, false).unwrap_or_default(), target)
}

/// Paragraphs of the text part, wrapped at [`TEXT_WIDTH`] as they render.
fn wrapped(value: &str, target: Target<'_>) -> String {
    let joined = paragraphs(value).join("\n\n");
    if joined.is_empty() {
        return String::new();
    }
    format!(
        "{{% filter wrap %}}{}{{% endfilter %}}",
        render(&parse_inline(&joined, false).unwrap_or_default(), target)
    )
}

/// Reads the markup of a field: details in brackets, `**bold**`, links. A bracket that names no
/// detail is text, unless it is a near miss of one (then, when `strict`, the error says which was
/// meant).
fn parse_inline(text: &str, strict: bool) -> Result<Vec<Inline>, String> {
    let text = clean(text);
    let mut out: Vec<Inline> = Vec::new();
    let mut bold: Option<Vec<Inline>> = None;
    let mut plain = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    fn flush(plain: &mut String, into: &mut Vec<Inline>) {
        if !plain.is_empty() {
            into.push(Inline::Text(std::mem::take(plain)));
        }
    }
    while i < chars.len() {
        let here = |n: usize| chars.get(i + n).copied();
        let target = match bold.as_mut() {
            Some(b) => b,
            None => &mut out,
        };
        match chars[i] {
            '\n' => {
                flush(&mut plain, target);
                target.push(Inline::Break);
                i += 1;
            }
            '*' if here(1) == Some('*') => {
                flush(&mut plain, target);
                match bold.take() {
                    Some(inner) => out.push(Inline::Bold(inner)),
                    None => bold = Some(Vec::new()),
                }
                i += 2;
            }
            '[' => {
                let close = chars[i + 1..].iter().position(|c| *c == ']' || *c == '\n');
                let Some(close) = close.map(|c| i + 1 + c).filter(|c| chars[*c] == ']') else {
                    plain.push('[');
                    i += 1;
                    continue;
                };
                let inside: String = chars[i + 1..close].iter().collect();
                // [label](https://...)
                if chars.get(close + 1) == Some(&'(') {
                    let end = chars[close + 2..]
                        .iter()
                        .position(|c| *c == ')' || c.is_whitespace())
                        .map(|e| close + 2 + e);
                    if let Some(end) = end.filter(|e| chars[*e] == ')') {
                        let url: String = chars[close + 2..end].iter().collect();
                        if link_ok(&url) && !inside.trim().is_empty() {
                            flush(&mut plain, target);
                            target.push(Inline::Link { label: inside, url });
                            i = end + 1;
                            continue;
                        }
                    }
                }
                if let Some(detail) = Detail::by_name(&inside) {
                    flush(&mut plain, target);
                    target.push(Inline::Detail(detail));
                    i = close + 1;
                    continue;
                }
                if let Some(near) = Detail::nearest(&inside).filter(|_| strict) {
                    return Err(format!(
                        "[{}] is not a detail an email knows. Did you mean [{near}]? (Use the Insert menu.)",
                        inside.trim()
                    ));
                }
                plain.push('[');
                i += 1;
            }
            'h' if starts_with(&chars[i..], "https://") || starts_with(&chars[i..], "http://") => {
                let mut end = i;
                while end < chars.len() && !chars[end].is_whitespace() {
                    end += 1;
                }
                // A sentence's full stop or closing bracket after a link is not part of it.
                while end > i && matches!(chars[end - 1], '.' | ',' | ';' | ':' | '!' | '?' | ')') {
                    end -= 1;
                }
                let url: String = chars[i..end].iter().collect();
                flush(&mut plain, target);
                target.push(Inline::Link {
                    label: url.clone(),
                    url,
                });
                i = end;
            }
            c => {
                plain.push(c);
                i += 1;
            }
        }
    }
    match bold {
        Some(inner) => {
            // An unclosed `**` is text.
            flush(&mut plain, &mut out);
            out.push(Inline::Text("**".into()));
            out.extend(inner);
        }
        None => flush(&mut plain, &mut out),
    }
    Ok(out)
}

fn starts_with(chars: &[char], prefix: &str) -> bool {
    prefix.chars().count() <= chars.len() && prefix.chars().zip(chars).all(|(a, b)| a == *b)
}

/// A link may go to a web page or an email address, nothing else (no `javascript:`).
fn link_ok(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:"))
        && url.len() > 8
}

/// Text as template source for `target`: HTML escaped for the HTML part, and every `{` written
/// as an expression, so that no typed text can open a tag of the template language.
fn literal(text: &str, target: Target<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match (c, target) {
            ('{', _) => out.push_str("{{ \"{\" }}"),
            ('&', Target::Html { .. }) => out.push_str("&amp;"),
            ('<', Target::Html { .. }) => out.push_str("&lt;"),
            ('>', Target::Html { .. }) => out.push_str("&gt;"),
            (c, _) => out.push(c),
        }
    }
    out
}

/// A URL inside an attribute: escaped, and no `{` or `}` left to read as template code.
fn url_literal(url: &str) -> String {
    literal(
        &url.replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace('\'', "%27"),
        Target::Html { no_first_name: "" },
    )
}

fn render(inlines: &[Inline], target: Target<'_>) -> String {
    let mut out = String::new();
    for inline in inlines {
        match inline {
            Inline::Text(text) => out.push_str(&literal(text, target)),
            Inline::Break => out.push_str(match target {
                Target::Html { .. } => "<br>\n",
                Target::Text { .. } => "\n",
            }),
            Inline::Bold(inner) => {
                let inner = render(inner, target);
                match target {
                    Target::Html { .. } => out.push_str(&format!("<strong>{inner}</strong>")),
                    Target::Text { .. } => out.push_str(&format!("*{inner}*")),
                }
            }
            Inline::Link { label, url } => match target {
                Target::Html { .. } => out.push_str(&format!(
                    "<a href=\"{}\" target=\"_blank\" style=\"color:#1a56db;\">{}</a>",
                    url_literal(url),
                    literal(label, target)
                )),
                Target::Text { .. } if label == url => out.push_str(&literal(url, target)),
                Target::Text { .. } => out.push_str(&format!(
                    "{} ({})",
                    literal(label, target),
                    literal(url, target)
                )),
            },
            Inline::Detail(detail) => out.push_str(&detail_source(*detail, target)),
        }
    }
    out
}

/// The template code a detail stands for.
fn detail_source(detail: Detail, target: Target<'_>) -> String {
    let fallback = match target {
        Target::Html { no_first_name } | Target::Text { no_first_name } => no_first_name,
    };
    match detail {
        Detail::FirstName => format!(
            "{{% if buyer.first_name %}}{{{{ buyer.first_name }}}}{{% else %}}{}{{% endif %}}",
            literal(
                &clean(fallback).split_whitespace().collect::<Vec<_>>().join(" "),
                target
            )
        ),
        Detail::Organiser => {
            "{% if organiser.name %}{{ organiser.name }}{% else %}The organisers{% endif %}".into()
        }
        Detail::Tickets => "{{ order.tickets|map(attribute=\"type\")|join(\", \") }}".into(),
        Detail::EventLink => match target {
            Target::Html { .. } => "<a href=\"{{ links.event }}\" target=\"_blank\" style=\"color:#1a56db;\">{{ links.event }}</a>".into(),
            Target::Text { .. } => "{{ links.event }}".into(),
        },
        other => {
            let value = DETAILS
                .iter()
                .find(|(d, ..)| *d == other)
                .map(|(.., value)| *value)
                .unwrap_or("event.name");
            format!("{{{{ {value} }}}}")
        }
    }
}

/// Wraps text at `width` characters: each line on its own, broken at spaces; a word longer than
/// a line (a link) is kept whole.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width.max(1));
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let indent: String = line.chars().take_while(|c| *c == ' ').collect();
        let mut length = 0;
        let mut first = true;
        out.push_str(&indent);
        length += indent.chars().count();
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            let size = word.chars().count();
            if !first && length + 1 + size > width {
                out.push('\n');
                out.push_str(&indent);
                length = indent.chars().count();
                first = true;
            }
            if !first {
                out.push(' ');
                length += 1;
            }
            out.push_str(word);
            length += size;
            first = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_lines_and_long_words() {
        assert_eq!(wrap("a b c", 3), "a b\nc");
        assert_eq!(wrap("one\n\ntwo", 72), "one\n\ntwo");
        let url = format!("https://{}", "x".repeat(80));
        assert_eq!(
            wrap(&format!("see {url} now"), 72),
            format!("see\n{url}\nnow")
        );
    }

    #[test]
    fn markup_details_and_near_misses() {
        assert_eq!(
            parse_inline("Hi [First Name], **go**", true).unwrap(),
            vec![
                Inline::Text("Hi ".into()),
                Inline::Detail(Detail::FirstName),
                Inline::Text(", ".into()),
                Inline::Bold(vec![Inline::Text("go".into())]),
            ]
        );
        let e = parse_inline("Hi [frist name]", true).unwrap_err();
        assert!(e.contains("Did you mean [first name]?"), "{e}");
        // Brackets that name nothing near a detail are text.
        assert_eq!(
            parse_inline("[sic] [", true).unwrap(),
            vec![Inline::Text("[sic] [".into())]
        );
        assert_eq!(
            parse_inline("[site](javascript:alert(1))", true).unwrap(),
            vec![Inline::Text("[site](javascript:alert(1))".into())]
        );
    }

    #[test]
    fn a_toml_round_trip_keeps_every_word() {
        let mut words = Words::empty();
        words.details = Details::Payment;
        for (key, ..) in FIELDS {
            words.set(
                key,
                &format!("{key} \"quoted\"\nline 2 '''\"\"\" \\ {{{{ x }}}}"),
            );
        }
        assert_eq!(Words::parse(&words.to_toml()).unwrap(), words);
        assert!(
            Words::parse("subjct = \"x\"")
                .unwrap_err()
                .to_string()
                .contains("subjct")
        );
    }
}
