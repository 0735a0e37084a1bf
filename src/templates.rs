//! The organiser's email templates: files read at run time (minijinja, Jinja syntax), strict about
//! unknown names, HTML auto-escaped in `body.html` only. This module is the one seam between the
//! reminder engine and the template engine.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDateTime;
use chrono_tz::Tz;
use minijinja::{Environment, UndefinedBehavior, Value};

use crate::config::{ReminderStep, TemplateSource};
use crate::domain::Cents;

mod context;
mod fields;
pub mod words;

pub use context::{
    BuyerContext, EmailContext, EventContext, LinksContext, OrderContext, OrganiserContext,
    ReminderContext, TicketContext, first_name, format_date, format_money, sample_context,
    sample_contexts,
};
pub use fields::{FIELDS, TICKET_FIELDS, unknown_name};
pub use words::{WORDS_FILE, Words};

/// The directory under `templates.dir` whose files every template may extend or include.
pub const SHARED: &str = "_shared";

/// The three files of a template.
pub const FILES: [&str; 3] = ["subject.txt", "body.html", "body.txt"];

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
    source: TemplateSource,
    /// What file names in errors start with: the directory, or `(built-in)`.
    dir: PathBuf,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("source", &self.source)
            .finish()
    }
}

/// The most one template file may write (an email is a few KiB; a runaway loop is stopped here).
pub const MAX_OUTPUT: usize = 512 * 1024;

/// Instructions one file may execute (the shipped templates need a few thousand even with 100
/// tickets); `{% for i in range(100000) %}` nested twice runs out instead of hanging a pass.
const FUEL: u64 = 2_000_000;

impl Templates {
    /// Reads and compiles every template a step names, then renders each with sample data so that
    /// a misspelt name is an error now rather than at the first send.
    pub fn load(
        source: &TemplateSource,
        steps: &[ReminderStep],
        timezone: Tz,
    ) -> anyhow::Result<Templates> {
        guarded("loading the templates", || {
            Self::load_unguarded(source, steps, timezone)
        })
    }

    /// Loads the templates in a directory (see [`Templates::load`]).
    pub fn load_dir(dir: &Path, steps: &[ReminderStep], timezone: Tz) -> anyhow::Result<Templates> {
        Self::load(&TemplateSource::Dir(dir.to_path_buf()), steps, timezone)
    }

    /// Where these templates were read from.
    pub fn source(&self) -> &TemplateSource {
        &self.source
    }

    fn load_unguarded(
        source: &TemplateSource,
        steps: &[ReminderStep],
        timezone: Tz,
    ) -> anyhow::Result<Templates> {
        let dir = match source {
            TemplateSource::Dir(dir) => dir.clone(),
            TemplateSource::BuiltIn => PathBuf::from("(built-in)"),
        };
        let dir = dir.as_path();
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Debug info lets an error name the undefined value (`order.refrence`), not only its line.
        env.set_debug(true);
        env.set_fuel(Some(FUEL));
        add_filters(&mut env, timezone);
        // Escape HTML in body.html only (the default escapes by file extension).
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        let mut names: Vec<&str> = steps.iter().flat_map(|s| s.templates()).collect();
        names.sort_unstable();
        names.dedup();
        for name in &names {
            for file in FILES {
                let path = dir.join(name).join(file);
                let text = match source {
                    TemplateSource::Dir(_) => std::fs::read_to_string(&path).with_context(|| {
                        format!(
                            "template {name:?} (used by a [[reminders]] step) needs {}",
                            path.display()
                        )
                    })?,
                    TemplateSource::BuiltIn => crate::builtin_templates::get(&format!("{name}/{file}"))
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "template {name:?} (used by a [[reminders]] step) is not built in (those are {}); run `quicket-followup init` and add templates/emails/{name}/, or set templates.dir",
                                crate::builtin_templates::names().join(", ")
                            )
                        })?
                        .to_string(),
                };
                add_template(&mut env, dir, format!("{name}/{file}"), text)?;
            }
        }
        if *source == TemplateSource::BuiltIn {
            for (path, text) in crate::builtin_templates::FILES {
                if path.starts_with(&format!("{SHARED}/")) {
                    add_template(&mut env, dir, path.to_string(), text.to_string())?;
                }
            }
        }
        // Shared pieces (a layout to `{% extends %}`, partials to `{% include %}`) live in
        // `_shared/`, so the look of every email is edited in one place.
        let shared = dir.join(SHARED);
        if matches!(source, TemplateSource::Dir(_)) && shared.is_dir() {
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
                add_template(&mut env, dir, format!("{SHARED}/{file}"), source)?;
            }
        }
        let templates = Templates {
            env,
            source: source.clone(),
            dir: dir.to_path_buf(),
        };
        for name in names {
            for context in sample_contexts() {
                let email = templates.render(name, &context)?;
                lawful(dir, name, &email, &context)?;
            }
        }
        Ok(templates)
    }

    /// Whether template `name` is loaded (a reload may have dropped a variant).
    pub fn has(&self, name: &str) -> bool {
        self.env
            .get_template(&format!("{name}/subject.txt"))
            .is_ok()
    }

    /// Renders template `name` (a directory under `templates.dir`). Whatever the template does
    /// (a bad filter argument, a runaway loop, a bug in a filter), this returns an error naming the
    /// file and line; it never panics and never writes more than [`MAX_OUTPUT`] per file.
    pub fn render(&self, name: &str, context: &EmailContext) -> anyhow::Result<Rendered> {
        let render = |file: &str| -> anyhow::Result<String> {
            let key = format!("{name}/{file}");
            guarded(&key, || {
                let template = self
                    .env
                    .get_template(&key)
                    .map_err(|e| template_error(&self.dir, &e))?;
                let mut out = Capped::default();
                match template.render_captured_to(minijinja::value::Serde(context), &mut out) {
                    Ok(_) => {}
                    Err(_) if out.full => anyhow::bail!(
                        "{}: writes more than {} KiB; look for a loop that never ends",
                        self.dir.join(&key).display(),
                        MAX_OUTPUT / 1024
                    ),
                    Err(e) => return Err(template_error(&self.dir, &e)),
                }
                String::from_utf8(out.bytes)
                    .with_context(|| format!("{}: not UTF-8", self.dir.join(&key).display()))
            })
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

/// Refuses an email the law does not allow to be sent: one without a subject, or whose HTML or
/// text part lacks the unsubscribe link (South Africa's Consumer Protection Act and POPIA require
/// an opt-out in every direct-marketing message). Judged on what the email renders to, so a link
/// in an included footer or the shared layout counts.
fn lawful(dir: &Path, name: &str, email: &Rendered, context: &EmailContext) -> anyhow::Result<()> {
    if email.subject.trim().is_empty() {
        anyhow::bail!(
            "{}: the subject is empty (for the sample buyer{}): every email needs a subject; write one",
            dir.join(name).join("subject.txt").display(),
            if context.buyer.first_name.is_empty() {
                " without a first name"
            } else {
                ""
            }
        );
    }
    let link = &context.links.unsubscribe;
    // The HTML part escapes `/` in attributes (`&#x2f;`).
    let escaped = link.replace('/', "&#x2f;");
    let missing = |file: &str, how: &str| {
        anyhow::anyhow!(
            "{}: the unsubscribe link is missing: the Consumer Protection Act and POPIA require an \
             opt-out in every direct-marketing message, so an email without it is not sent; {how}",
            dir.join(name).join(file).display()
        )
    };
    if !email.html.contains(link.as_str()) && !email.html.contains(&escaped) {
        return Err(missing(
            "body.html",
            "start the file with {% extends \"_shared/layout.html\" %} (its footer holds the link), or link to {{ links.unsubscribe }}",
        ));
    }
    if !email.text.contains(link.as_str()) {
        return Err(missing(
            "body.txt",
            "end it with {% include \"_shared/footer.txt\" %}, or write {{ links.unsubscribe }}",
        ));
    }
    Ok(())
}

/// Runs `work`, turning a panic inside it (a bug in a filter or in the template engine) into an
/// error, so that a template can never take the service down.
fn guarded<T>(what: &str, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".into());
            Err(anyhow::anyhow!(
                "{what}: the template engine failed ({message})"
            ))
        }
    }
}

/// A writer that refuses to grow past [`MAX_OUTPUT`].
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    full: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT {
            self.full = true;
            return Err(std::io::Error::other("template output too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
    // is shown in the configured zone. An optional strftime format replaces the default. An
    // unknown date (`event.starts_at` is then empty) stays empty, as `event.date` does.
    env.add_filter(
        "date",
        move |value: String, format: Option<String>| -> Result<String, minijinja::Error> {
            if value.trim().is_empty() {
                return Ok(String::new());
            }
            let local = parse_local(&value, timezone).ok_or_else(|| {
                minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("date: {value:?} is not a date like 2026-12-12 18:30"),
                )
            })?;
            match format {
                Some(f) => format_strftime(local, &f),
                None => Ok(format_date(Some(local))),
            }
        },
    );
    // `{{ "Lerato Dlamini"|first_name }}` -> Lerato
    env.add_filter("first_name", |value: String| first_name(&value));
    // `{% filter wrap %}...{% endfilter %}`: lines of at most 72 characters (the text part an
    // email's words make); an optional width.
    env.add_filter("wrap", |value: String, width: Option<usize>| {
        words::wrap(&value, width.unwrap_or(words::TEXT_WIDTH).clamp(20, 1000))
    });
}

/// Formats with a strftime format given in a template: an invalid item (`%Q`, a lone `%`) or one
/// that needs what a local time lacks (`%z`) is an error naming the format, never a panic.
fn format_strftime(local: NaiveDateTime, format: &str) -> Result<String, minijinja::Error> {
    use std::fmt::Write as _;
    let invalid = |why: &str| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("date: {format:?} is not a date format ({why}; e.g. \"%d %B %Y at %H:%M\")"),
        )
    };
    let items = chrono::format::StrftimeItems::new(format)
        .parse()
        .map_err(|_| invalid("it has an item chrono does not know"))?;
    let mut out = String::new();
    write!(out, "{}", local.format_with_items(items.iter()))
        .map_err(|_| invalid("it asks for a time zone offset, which a local time has not"))?;
    Ok(out)
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

/// Compiles one file into `env`, after refusing what the budget cannot bound.
fn add_template(
    env: &mut Environment<'static>,
    dir: &Path,
    name: String,
    text: String,
) -> anyhow::Result<()> {
    if let Some(line) = repeated_list_literal(&text) {
        anyhow::bail!(
            "{}, line {line}: a list repeated with `*` (e.g. [1] * 1000) is not allowed in an email \
             template: it can take minutes to compile; write the items you need, or loop with \
             `{{% for %}}`",
            dir.join(&name).display()
        );
    }
    env.add_template_owned(name, text)
        .map_err(|e| template_error(dir, &e))
}

/// The line of the first list literal repeated with `*` (`[1] * n`, `n * ([1] + [2])`), if any.
/// minijinja folds constant expressions while compiling, where no fuel is counted, and folds a
/// repeated list into a lazy sequence of any length (up to 100 million items) that `in` or `==`
/// in the same expression then walks item by item: seconds to minutes of CPU for one line,
/// before the render budget applies. At render time the same work is counted, so only literals
/// need refusing. A `[` that follows a name, `]`, `)` or a string is a subscript, not a list.
fn repeated_list_literal(source: &str) -> Option<u32> {
    use minijinja::machinery::{Token, tokenize};
    let tokens: Vec<(Token<'_>, minijinja::machinery::Span)> =
        tokenize(source, false, Default::default())
            .map_while(Result::ok)
            .collect();
    // A keyword before `[` (`in [1]`, `not [1]`) is an operator, not a name being subscripted.
    let subscript_after = |i: usize| {
        i > 0
            && match &tokens[i - 1].0 {
                Token::Ident(name) => !matches!(
                    *name,
                    "in" | "not" | "and" | "or" | "if" | "elif" | "else" | "is" | "do" | "return"
                ),
                Token::BracketClose | Token::ParenClose | Token::Str(_) | Token::String(_) => true,
                _ => false,
            }
    };
    let list_opens_at = |i: usize| matches!(tokens[i].0, Token::BracketOpen) && !subscript_after(i);
    // The tokens of the group that ends at `end` (a `]` or `)`), or starts at `start`.
    let group_back = |end: usize| -> Option<usize> {
        let mut depth = 0i32;
        for j in (0..=end).rev() {
            match tokens[j].0 {
                Token::BracketClose | Token::ParenClose => depth += 1,
                Token::BracketOpen | Token::ParenOpen => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    };
    let group_forward = |start: usize| -> Option<usize> {
        let mut depth = 0i32;
        for (j, (token, _)) in tokens.iter().enumerate().skip(start) {
            match token {
                Token::BracketOpen | Token::ParenOpen => depth += 1,
                Token::BracketClose | Token::ParenClose => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    };
    let holds_list = |from: usize, to: usize| (from..=to).any(list_opens_at);
    for (i, (token, span)) in tokens.iter().enumerate() {
        if !matches!(token, Token::Mul) {
            continue;
        }
        let before = i
            .checked_sub(1)
            .filter(|&j| matches!(tokens[j].0, Token::BracketClose | Token::ParenClose))
            .and_then(|j| group_back(j).map(|k| holds_list(k, j)))
            .unwrap_or(false);
        let after = tokens
            .get(i + 1)
            .filter(|(t, _)| matches!(t, Token::BracketOpen | Token::ParenOpen))
            .and_then(|_| group_forward(i + 1).map(|k| holds_list(i + 1, k)))
            .unwrap_or(false);
        if before || after {
            return Some(u32::from(span.start_line));
        }
    }
    None
}

/// The name an "undefined" error is about (the engine says "`event.nmae` is undefined").
fn undefined_name(e: &minijinja::Error) -> Option<&str> {
    if e.kind() != minijinja::ErrorKind::UndefinedError {
        return None;
    }
    let detail = e.detail()?;
    let (name, _) = detail.strip_prefix('`')?.split_once("` is undefined")?;
    Some(name)
}

/// An error that names the file, the line and what went wrong (e.g. the unknown name). An error
/// inside an included or extended file names that file, and where it was included from.
fn template_error(dir: &Path, e: &minijinja::Error) -> anyhow::Error {
    let mut chain = vec![e];
    while let Some(inner) = chain
        .last()
        .and_then(|e| std::error::Error::source(*e))
        .and_then(|s| s.downcast_ref::<minijinja::Error>())
    {
        chain.push(inner);
    }
    let place = |e: &minijinja::Error| {
        let file = e
            .name()
            .map(|n| dir.join(n).display().to_string())
            .unwrap_or_else(|| dir.display().to_string());
        match e.line() {
            Some(l) => format!("{file}, line {l}"),
            None => file,
        }
    };
    let innermost = chain.last().copied().unwrap_or(e);
    let what = match innermost.detail() {
        Some(d) => format!("{}: {d}", innermost.kind()),
        None => innermost.kind().to_string(),
    };
    // A misspelt name: the sentence for people first, then the engine's own words.
    let what = match undefined_name(innermost) {
        Some(name) => format!("{} ({what})", unknown_name(name)),
        None => what,
    };
    let mut message = format!("{}: {what}", place(innermost));
    if innermost.kind() == minijinja::ErrorKind::OutOfFuel {
        message.push_str(" (the template does too much work: look for a loop that runs too long)");
    }
    for outer in chain.iter().rev().skip(1) {
        message.push_str(&format!(" (included from {})", place(outer)));
    }
    anyhow::anyhow!(message)
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
        assert_eq!(context::starts_at(Some(d)), "2026-12-12 18:30");
        assert_eq!(context::starts_at(None), "");
        assert_eq!(first_name(" Lerato  Dlamini"), "Lerato");
        assert_eq!(first_name(""), "");
    }

    #[test]
    fn the_shipped_templates_load_and_render() {
        let steps = crate::config::Config::default().reminders;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/emails");
        let templates = Templates::load_dir(&dir, &steps, chrono_tz::Africa::Johannesburg).unwrap();
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
    fn the_event_start_is_a_date_the_date_filter_formats_and_empty_when_unknown() {
        let mut env = Environment::new();
        add_filters(&mut env, chrono_tz::Africa::Johannesburg);
        let render = |c: &EmailContext| {
            env.render_str(
                "{{ event.starts_at|date('%-d %b at %H:%M') }}",
                minijinja::value::Serde(c),
            )
            .unwrap()
        };
        let [usual, detailed, empty] = sample_contexts();
        assert_eq!(render(&usual), "12 Dec at 18:30");
        assert_eq!(render(&detailed), "12 Dec at 18:30");
        assert_eq!(render(&empty), "");
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
        let error = Templates::load_dir(dir.path(), &steps, chrono_tz::Africa::Johannesburg)
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

    /// The shipped templates, copied into a temp dir, with `file` changed by `edit`.
    fn shipped_with(file: &str, edit: impl FnOnce(String) -> String) -> anyhow::Result<Templates> {
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let path = entry.unwrap().path();
                let target = to.join(path.file_name().unwrap());
                if path.is_dir() {
                    copy(&path, &target);
                } else {
                    std::fs::copy(&path, &target).unwrap();
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        copy(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/emails"),
            dir.path(),
        );
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(text)).unwrap();
        let steps = crate::config::Config::default().reminders;
        Templates::load_dir(dir.path(), &steps, chrono_tz::Africa::Johannesburg)
    }

    #[test]
    fn a_misspelt_attribute_in_the_shipped_templates_is_named_with_its_file_and_line() {
        // The last line of body.txt, as the issue reported it.
        let e = shipped_with("abandoned/body.txt", |t| {
            format!("{t}{{{{ order.refrence }}}}\n")
        })
        .unwrap_err()
        .to_string();
        let lines = include_str!("../templates/emails/abandoned/body.txt")
            .lines()
            .count();
        assert!(e.contains("`order.refrence` is undefined"), "{e}");
        assert!(
            e.contains("abandoned/body.txt") && e.contains(&format!("line {}", lines + 1)),
            "{e}"
        );
        // Inside an {% if %} in a block of a body.html that extends the shared layout.
        let e = shipped_with("abandoned/body.html", |t| {
            t.replace(
                "{% if buyer.first_name %}{{ buyer.first_name }}",
                "{% if buyer.first_name %}{{ buyer.frist_name }}",
            )
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("`buyer.frist_name` is undefined"), "{e}");
        assert!(e.contains("abandoned/body.html, line"), "{e}");
        // In the {% else %} branch: caught by the sample without a first name.
        let e = shipped_with("eft_pending/body.txt", |t| {
            t.replacen("{% else %}there", "{% else %}{{ buyer.nam }}", 1)
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("`buyer.nam` is undefined"), "{e}");
        // In an included file: that file is named, and where it was included from.
        let e = shipped_with("_shared/footer.txt", |t| {
            t.replace("links.unsubscribe", "links.unsub")
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("`links.unsub` is undefined"), "{e}");
        assert!(e.contains("_shared/footer.txt, line 3"), "{e}");
        assert!(e.contains("included from") && e.contains("body.txt"), "{e}");
    }

    #[test]
    fn an_email_without_the_unsubscribe_link_in_either_part_or_a_subject_is_refused() {
        let e = shipped_with("abandoned/body.txt", |t| {
            t.replace("{% include \"_shared/footer.txt\" %}", "Bye")
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("abandoned/body.txt: the unsubscribe link is missing")
                && e.contains("POPIA")
                && e.contains("_shared/footer.txt"),
            "{e}"
        );
        // The link may come from the shared layout (or footer): it is what the email renders to
        // that counts.
        let e = shipped_with("_shared/layout.html", |t| {
            t.replace("href=\"{{ links.unsubscribe }}\"", "href=\"#\"")
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("body.html: the unsubscribe link is missing"),
            "{e}"
        );
        let e = shipped_with("last_chance/subject.txt", |_| "  ".into())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("last_chance/subject.txt: the subject is empty"),
            "{e}"
        );
        // Written out in the file instead of included: fine.
        shipped_with("abandoned/body.txt", |t| {
            t.replace(
                "{% include \"_shared/footer.txt\" %}",
                "Unsubscribe: {{ links.unsubscribe }}",
            )
        })
        .unwrap();
    }

    #[test]
    fn every_kind_of_broken_template_is_an_error_never_a_panic_or_a_hang() {
        let cases = [
            ("{{ '2026-12-12 18:30'|date('%Q %') }}", "%Q %"),
            ("{{ '2026-12-12 18:30'|date('%z') }}", "offset"),
            ("{{ order.tickets|date }}", "date"),
            ("{{ order.tickets|money }}", "money"),
            ("{% for i in range(10**9) %}x{% endfor %}", "too many"),
            ("{% if 2 in [1]*100000000 %}x{% endif %}", "list repeated"),
            ("{{ 100000000 * ([1] + [2]) == [] }}", "list repeated"),
            ("{{ (([1]))*100000000 == [] }}", "list repeated"),
            (
                "{% set a = [1] %}{% if 2 in a * 100000000 %}x{% endif %}",
                "fuel",
            ),
            (
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                "fuel",
            ),
            (
                "{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}",
                "KiB",
            ),
            ("{% if %}", "syntax"),
            ("{{ buyer.email.nope.deeper }}", "undefined"),
            ("{% include 'nowhere.txt' %}", "nowhere"),
            ("{{ 1 / 0 }}", "1 / 0"),
        ];
        for (source, needle) in cases {
            let e = match shipped_with("abandoned/body.txt", |t| format!("{t}{source}\n")) {
                Ok(_) => panic!("{source} was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(
                e.contains("abandoned/body.txt")
                    && e.to_lowercase().contains(&needle.to_lowercase()),
                "{source}: {e}"
            );
        }
    }

    #[test]
    fn only_a_list_literal_repeated_with_a_star_is_refused() {
        for fine in [
            "{{ 2 * 3 }}",
            "{{ (1 + 2) * 3 }}",
            "{{ order.tickets[0].price * 2 }}",
            "{{ x[0] * 2 }} and {{ 'ab' * 3 }}",
            "no expression: [1] * 3",
        ] {
            assert_eq!(super::repeated_list_literal(fine), None, "{fine}");
        }
        for bad in [
            "{{ [1] * 3 }}",
            "line one\n{% if 2 in [1]*100000000 %}{% endif %}",
            "{{ 3 * [1] }}",
            "{{ ([1] + [2]) * 3 }}",
            "{{ 3 * (x, [1]) }}",
        ] {
            assert!(super::repeated_list_literal(bad).is_some(), "{bad}");
        }
        assert_eq!(super::repeated_list_literal("a\n{{ [1] * 2 }}"), Some(2));
    }

    #[test]
    fn a_panic_inside_a_render_is_an_error() {
        let e = guarded("abandoned/body.txt", || -> anyhow::Result<()> {
            panic!("a filter bug")
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("a filter bug") && e.contains("abandoned/body.txt"),
            "{e}"
        );
    }

    #[test]
    fn the_built_in_templates_are_the_shipped_ones() {
        let steps = crate::config::Config::default().reminders;
        let tz = chrono_tz::Africa::Johannesburg;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/emails");
        let built_in = Templates::load(&TemplateSource::BuiltIn, &steps, tz).unwrap();
        let files = Templates::load_dir(&dir, &steps, tz).unwrap();
        for name in ["abandoned", "eft_pending", "last_chance"] {
            let context = sample_context();
            assert_eq!(
                built_in.render(name, &context).unwrap(),
                files.render(name, &context).unwrap()
            );
        }
        let mut steps = steps;
        steps[0].template = "mine".into();
        let e = Templates::load(&TemplateSource::BuiltIn, &steps, tz)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"mine\"") && e.contains("not built in") && e.contains("init"),
            "{e}"
        );
    }
}
