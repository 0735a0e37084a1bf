//! The schedule file: `[schedule] file = "..."` in the main configuration names a file of its own
//! holding `[schedule]`, `[[reminders]]` and `[events]`, the part an organiser changes every week
//! (by hand or in `/admin/schedule`). It lives where the service may write (the state directory),
//! while the main file with the secrets, `[server]`, `[database]` and `[email]` stays read-only.
//! One reader for `check`, `serve`, a reload and the editor's validation.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item};

use super::{ConfigError, invalid};

/// The top-level keys a schedule file may hold.
pub const SCHEDULE_FILE_SECTIONS: &[&str] = &["schedule", "reminders", "events"];

/// The main configuration's key that names the schedule file.
pub const SCHEDULE_FILE_KEY: &str = "schedule.file";

/// The schedule file as read (or as the editor would write it).
#[derive(Debug, Clone)]
pub struct ScheduleText {
    /// Where it is (resolved against the main file's directory).
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// Parses TOML for the layering below, naming `name` in the error.
pub(super) fn parse(text: &str, name: &str) -> Result<DocumentMut, ConfigError> {
    text.parse::<DocumentMut>().map_err(|e| {
        ConfigError::Parse(syntax_error(
            text,
            name,
            e.message(),
            e.span().map(|s| s.start),
        ))
    })
}

/// A TOML syntax error in words that name the file, the line and the key, and never quote the
/// line: the parser's own text shows it, and the line may be `smtp_url` with its password (the
/// error goes to the log, `check`'s output and `/admin`).
pub(super) fn syntax_error(text: &str, name: &str, message: &str, at: Option<usize>) -> String {
    // The parser's message says what it expected; only its first line, which quotes nothing.
    let message = message.lines().next().unwrap_or_default().trim();
    let Some(at) = at.map(|at| at.min(text.len())) else {
        return format!("{name}: not valid TOML: {message}");
    };
    let before = text.get(..at).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(1, |l| l.chars().count() + 1);
    let key = key_on_line(text, line)
        .map(|k| format!(" (the key {k})"))
        .unwrap_or_default();
    format!(
        "{name}: line {line}, column {column}: not valid TOML{key}: {message}; the line is not shown, as it may hold a secret"
    )
}

/// The dotted key set on line `line` (1-based), with the table it is in: `email.smtp_url`.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let this = lines.get(line.checked_sub(1)?)?;
    let (key, _) = this.split_once('=')?;
    let key = key.trim();
    let bare = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.\" ".contains(c))
    };
    if !bare(key) {
        return None;
    }
    let key: String = key.chars().filter(|c| !c.is_whitespace()).collect();
    let table = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        let inner = l.strip_prefix('[')?.split(']').next()?;
        let inner = inner.trim_start_matches('[').trim();
        bare(inner).then(|| inner.to_string())
    });
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key,
    })
}

/// The schedule file the main configuration names, resolved: a relative path is read from the
/// main file's directory (like an include), or the working directory when there is no file.
pub(super) fn named_by(
    main: &DocumentMut,
    origin: Option<&Path>,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(item) = main.get("schedule").and_then(|s| s.get("file")) else {
        return Ok(None);
    };
    let Some(raw) = item.as_str() else {
        return Err(invalid(
            SCHEDULE_FILE_KEY,
            "must be a path in quotes, e.g. file = \"/var/lib/quicket-followup/schedule.toml\"",
        ));
    };
    if raw.trim().is_empty() {
        return Err(invalid(
            SCHEDULE_FILE_KEY,
            "is empty; name the file (e.g. \"schedule.toml\") or remove the key",
        ));
    }
    let path = Path::new(raw);
    if path.is_absolute() {
        return Ok(Some(path.to_path_buf()));
    }
    let base = origin.and_then(Path::parent).unwrap_or(Path::new(""));
    Ok(Some(base.join(path)))
}

/// Reads the schedule file at `path`; a missing one is an error naming the key (never silently
/// the built-in schedule).
pub(super) fn read(path: &Path) -> Result<ScheduleText, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(ScheduleText {
            path: path.to_path_buf(),
            text,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(invalid(
            SCHEDULE_FILE_KEY,
            format!(
                "{} does not exist; create it (an empty file keeps the built-in schedule; \
                 `quicket-followup init` writes a commented one), or remove schedule.file",
                path.display()
            ),
        )),
        Err(e) => Err(invalid(
            SCHEDULE_FILE_KEY,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Checks a schedule file against the main configuration: only its own sections, and no key
/// set in both (tables are compared key by key; `reminders` is one key).
pub(super) fn check_layers(
    main: &DocumentMut,
    main_name: &str,
    schedule: &DocumentMut,
    schedule_name: &str,
) -> Result<(), ConfigError> {
    for (key, _) in schedule.iter() {
        if !SCHEDULE_FILE_SECTIONS.contains(&key) {
            return Err(invalid(
                key,
                format!(
                    "{schedule_name} holds only [schedule], [[reminders]] and [events]; \
                     move [{key}] to the main configuration ({main_name})"
                ),
            ));
        }
    }
    if schedule
        .get("schedule")
        .and_then(|s| s.get("file"))
        .is_some()
    {
        return Err(invalid(
            SCHEDULE_FILE_KEY,
            format!("belongs in the main configuration ({main_name}), not in {schedule_name}"),
        ));
    }
    both(main.as_item(), schedule.as_item(), "")
        .map(|key| {
            Err(invalid(
                key,
                format!(
                    "is set in both {main_name} and {schedule_name}; keep it in one of them \
                     (the schedule file is the one /admin/schedule edits)"
                ),
            ))
        })
        .unwrap_or(Ok(()))
}

/// The first key set in both `a` and `b` (tables merge, so only their leaves can clash).
fn both(a: &Item, b: &Item, prefix: &str) -> Option<String> {
    let (Some(a), Some(b)) = (a.as_table_like(), b.as_table_like()) else {
        return Some(prefix.to_string());
    };
    for (key, b_item) in b.iter() {
        if let Some(a_item) = a.get(key) {
            let path = if prefix.is_empty() {
                key.to_string()
            } else if prefix != "events"
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                format!("{prefix}.{key}")
            } else {
                format!("{prefix}.\"{key}\"")
            };
            if let Some(found) = both(a_item, b_item, &path) {
                return Some(found);
            }
        }
    }
    None
}

/// Whether the schedule file holds the setting at `path` (figment's path segments: a section,
/// then a key or an event id), so that an error about it names that file. No key is in both
/// files ([`check_layers`] ran first), so the first two segments decide.
pub(super) fn holds(schedule: &DocumentMut, path: &[String]) -> bool {
    let Some(head) = path.first() else {
        return false;
    };
    let section = schedule.get(head);
    match (head.as_str(), path.get(1)) {
        ("reminders", _) => section.is_some(),
        (_, Some(key)) => section.and_then(|s| s.get(key)).is_some(),
        (_, None) => section.is_some(),
    }
}

/// [`holds`] for a validation error's key (`schedule.min_gap`, `reminders[1].after`,
/// `events."7".url`).
pub(super) fn holds_key(schedule: &DocumentMut, key: &str) -> bool {
    let head: String = key.chars().take_while(|c| *c != '.' && *c != '[').collect();
    let rest = key[head.len()..].trim_start_matches('.');
    let second: String = if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next().unwrap_or_default().to_string()
    } else {
        rest.chars()
            .take_while(|c| *c != '.' && *c != '[')
            .collect()
    };
    let path = if second.is_empty() {
        vec![head]
    } else {
        vec![head, second]
    };
    holds(schedule, &path)
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use std::time::Duration;

    const MAIN: &str = "[server]\nlisten = \"127.0.0.1:0\"\n[schedule]\nfile = \"schedule.toml\"\nscan = \"0 0 * * * *\"\n";

    fn dir_with(schedule: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.toml"), MAIN).unwrap();
        std::fs::write(dir.path().join("schedule.toml"), schedule).unwrap();
        dir
    }

    fn load(dir: &tempfile::TempDir) -> Result<Config, String> {
        Config::load(Some(&dir.path().join("main.toml"))).map_err(|e| e.to_string())
    }

    #[test]
    fn the_schedule_file_is_read_beside_the_main_file_and_merged() {
        let dir = dir_with(
            "# mine\n[schedule]\nmin_gap = \"2h\"\n\n[[reminders]]\nname = \"only\"\nafter = \"3h\"\n\
             when = [\"checkout_started\"]\ntemplate = \"abandoned\"\n\n[events.\"7\"]\nreminders = false\n",
        );
        let config = load(&dir).unwrap();
        assert_eq!(config.schedule.min_gap, Duration::from_secs(7200));
        assert_eq!(config.schedule.scan, "0 0 * * * *");
        assert_eq!(config.step_names(), ["only"]);
        assert!(!config.events["7"].reminders);
        assert_eq!(
            config.schedule.file.as_deref(),
            Some(dir.path().join("schedule.toml").as_path())
        );
    }

    #[test]
    fn an_empty_schedule_file_keeps_the_built_in_schedule() {
        let dir = dir_with("");
        let config = load(&dir).unwrap();
        assert_eq!(config.step_names(), Config::default().step_names());
    }

    #[test]
    fn a_key_in_both_files_is_an_error_naming_both() {
        let dir = dir_with("[schedule]\nscan = \"0 * * * * *\"\n");
        let e = load(&dir).unwrap_err();
        assert!(e.contains("schedule.scan"), "{e}");
        assert!(
            e.contains("main.toml") && e.contains("schedule.toml"),
            "{e}"
        );
        // Events merge by id: another event is fine, the same event's key is not.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.toml"),
            "[schedule]\nfile = \"s.toml\"\n[events.\"1\"]\nurl = \"https://a.example/\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("s.toml"),
            "[events.\"2\"]\nreminders = false\n",
        )
        .unwrap();
        Config::load(Some(&dir.path().join("main.toml"))).unwrap();
        std::fs::write(
            dir.path().join("s.toml"),
            "[events.\"1\"]\nurl = \"https://b.example/\"\n",
        )
        .unwrap();
        let e = Config::load(Some(&dir.path().join("main.toml")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("events.\"1\".url") && e.contains("both"), "{e}");
        // [[reminders]] in both: one key.
        let main = format!(
            "{MAIN}[[reminders]]\nname = \"a\"\nafter = \"1h\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\n"
        );
        let dir = dir_with(
            "[[reminders]]\nname = \"b\"\nafter = \"1h\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\n",
        );
        std::fs::write(dir.path().join("main.toml"), main).unwrap();
        let e = load(&dir).unwrap_err();
        assert!(
            e.contains("config key reminders:") && e.contains("both"),
            "{e}"
        );
    }

    #[test]
    fn other_sections_and_the_file_key_belong_in_the_main_file() {
        let e = load(&dir_with("[server]\nlisten = \"0.0.0.0:1\"\n")).unwrap_err();
        assert!(
            e.contains("server") && e.contains("main configuration"),
            "{e}"
        );
        let e = load(&dir_with("[schedule]\nfile = \"x.toml\"\n")).unwrap_err();
        assert!(
            e.contains("schedule.file") && e.contains("main configuration"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_schedule_file_is_an_error_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.toml"), MAIN).unwrap();
        let e = load(&dir).unwrap_err();
        assert!(
            e.contains("schedule.file") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn errors_in_the_schedule_file_name_it_and_the_key() {
        let e = load(&dir_with("[schedule]\nmin_gap = \"soon\"\n")).unwrap_err();
        assert!(
            e.contains("schedule.toml: ") && e.contains("min_gap"),
            "{e}"
        );
        let e = load(&dir_with("[schedule\n")).unwrap_err();
        assert!(e.contains("schedule.toml") && e.contains("line 1"), "{e}");
        let step = "[[reminders]]\nname = \"x\"\nafter = \"1h\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\n";
        let e = load(&dir_with(&format!("{step}{step}"))).unwrap_err();
        assert!(e.contains("reminders[1].name") && e.contains("(in "), "{e}");
        let e = load(&dir_with(
            "[[reminders]]\nname = \"x\"\nafter = \"1h\"\nwhen = [\"checkout_paid\"]\ntemplate = \"abandoned\"\n",
        ))
        .unwrap_err();
        assert!(e.contains("schedule.toml: ") && e.contains("when"), "{e}");
        // An error in the main file still names the main file.
        let dir = dir_with("");
        std::fs::write(
            dir.path().join("main.toml"),
            format!("{MAIN}[email]\nmax_per_minute = \"x\"\n"),
        )
        .unwrap();
        let e = load(&dir).unwrap_err();
        assert!(
            e.contains("main.toml: ") && !e.contains("schedule.toml"),
            "{e}"
        );
    }

    #[test]
    fn the_editor_validates_its_text_in_place_of_the_file() {
        let dir = dir_with("[schedule]\nmin_gap = \"2h\"\n");
        let main = dir.path().join("main.toml");
        let edited = Config::from_sources(
            Some(MAIN),
            Some(&main),
            Some("[schedule]\nmin_gap = \"3h\"\n"),
        )
        .unwrap();
        assert_eq!(edited.schedule.min_gap, Duration::from_secs(3 * 3600));
        let e = Config::from_sources(Some("[server]\n"), Some(&main), Some("[schedule]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("schedule.file") && e.contains("nothing to save"),
            "{e}"
        );
    }
}
