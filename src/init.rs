//! `init [DIR]`: writes a commented `quicket-followup.toml` (every key with its default, all
//! commented out) naming the schedule file `schedule.toml` (the `[schedule]`, `[[reminders]]` and
//! `[events]` part, commented too: the part `/admin/schedule` edits), and the shipped templates
//! into `templates/emails/`, to start editing from. It never overwrites a file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::builtin_templates;
use crate::config::DEFAULT_CONFIG_FILE;

/// The example configuration: every key with its default and one line on what it does.
pub const EXAMPLE_CONFIG: &str = include_str!("../quicket-followup.example.toml");

/// Where `init` puts the templates, under DIR (the directory read when `templates.dir` is unset).
pub const TEMPLATES_DIR: &str = "templates/emails";

/// The schedule file `init` writes beside the config (and names in it).
pub const SCHEDULE_FILE: &str = "schedule.toml";

/// The example with every setting commented out, so that the file changes nothing until a line
/// is uncommented (and later versions' defaults still apply to what was left alone).
pub fn commented_config() -> String {
    let mut out = String::from(
        "# Written by `quicket-followup init`. Every setting below is commented out and shows its\n\
         # built-in default: uncomment a [section] line and the keys you change under it.\n\
         # `quicket-followup check` validates the file and the templates.\n#\n",
    );
    for line in EXAMPLE_CONFIG.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(line);
        } else {
            out.push_str("# ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The example split in two: the main configuration's part, and the schedule file's
/// (`[schedule]`, `[[reminders]]`, `[events]`). Paragraphs (blank-line separated) go with the
/// section whose header they hold (`# [events."123"]` counts), else with the one before.
pub fn split_example() -> (String, String) {
    let (mut main, mut schedule) = (String::new(), String::new());
    let mut in_schedule = false;
    for paragraph in EXAMPLE_CONFIG.split("\n\n") {
        let header = paragraph.lines().find_map(|line| {
            let line = line.trim_start();
            let line = line
                .strip_prefix("# ")
                .filter(|l| l.starts_with('['))
                .unwrap_or(line);
            let name = line.strip_prefix('[')?.trim_start_matches('[');
            Some(
                name.split(['.', ']'])
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            )
        });
        if let Some(section) = header {
            in_schedule = crate::config::SCHEDULE_FILE_SECTIONS.contains(&section.as_str());
        }
        let out = if in_schedule {
            &mut schedule
        } else {
            &mut main
        };
        for line in paragraph.lines() {
            // The key naming the schedule file stays in the main file.
            if in_schedule
                && line
                    .trim_start()
                    .trim_start_matches("# ")
                    .starts_with("file =")
            {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    (
        main.trim_end().to_string() + "\n",
        schedule.trim_end().to_string() + "\n",
    )
}

fn commented(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(line);
        } else {
            out.push_str("# ");
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The main configuration `init` writes: every setting commented out but the one naming the
/// schedule file.
pub fn commented_main_config() -> String {
    let (main, _) = split_example();
    format!(
        "# Written by `quicket-followup init`. Every setting below is commented out and shows its\n\
         # built-in default: uncomment a [section] line and the keys you change under it.\n\
         # `quicket-followup check` validates this file, {SCHEDULE_FILE} and the templates.\n#\n\
         {}\n\
         # The reminder schedule ([schedule], [[reminders]] and [events.\"ID\"]) is in a file of its\n\
         # own, which /admin/schedule edits (keeping your comments) and `check`, `serve` and a reload\n\
         # read together with this one. A relative path is read from this file's directory. A key is\n\
         # set in one of the two files, never in both.\n\
         [schedule]\n\
         file = \"{SCHEDULE_FILE}\"\n",
        commented(&main)
    )
}

/// The schedule file `init` writes: its settings commented out (the built-in schedule applies).
pub fn commented_schedule_file() -> String {
    let (_, schedule) = split_example();
    format!(
        "# The reminder schedule of quicket-followup, named by `[schedule] file` in\n\
         # {DEFAULT_CONFIG_FILE}. Edit it in the browser (/admin/schedule) or here; after an edit\n\
         # here, `quicket-followup check`, then reload the service (SIGHUP). Every setting below is\n\
         # commented out and shows its built-in default.\n#\n{}",
        commented(&schedule)
    )
}

/// The files `init` writes, relative to DIR, with their text.
pub fn files() -> Vec<(PathBuf, String)> {
    let mut files = vec![
        (PathBuf::from(DEFAULT_CONFIG_FILE), commented_main_config()),
        (PathBuf::from(SCHEDULE_FILE), commented_schedule_file()),
    ];
    for (path, text) in builtin_templates::FILES {
        files.push((Path::new(TEMPLATES_DIR).join(path), (*text).to_string()));
    }
    files
}

/// Writes [`files`] into `dir` (created when missing). Refuses, writing nothing, when any of them
/// already exists; returns the paths written.
pub fn init(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let files = files();
    let existing: Vec<String> = files
        .iter()
        .map(|(rel, _)| dir.join(rel))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        let more = match existing.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        anyhow::bail!(
            "{}{more} already exists; init never overwrites a file: move it away or give another directory (quicket-followup init DIR)",
            existing[0]
        );
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // create_new: a file that appeared since the check above is still not overwritten.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_commented_config_changes_nothing_and_uncommented_gives_every_default() {
        let commented = Config::from_toml(Some(&commented_config()), None).unwrap();
        let defaults = serde_json::to_value(Config::default()).unwrap();
        assert_eq!(serde_json::to_value(&commented).unwrap(), defaults);
        // The example is the same file with its settings in force.
        let all = Config::from_toml(Some(EXAMPLE_CONFIG), None).unwrap();
        assert_eq!(serde_json::to_value(&all).unwrap(), defaults);
    }

    #[test]
    fn the_split_example_keeps_every_line_and_each_part_in_its_file() {
        let (main, schedule) = split_example();
        for section in [
            "[server]",
            "[database]",
            "[email]",
            "[templates]",
            "[quicket]",
            "[experiment]",
        ] {
            assert!(
                main.contains(section) && !schedule.contains(section),
                "{section}"
            );
        }
        for section in ["[schedule]", "[[reminders]]", "# [events.\"123\"]"] {
            assert!(
                schedule.contains(section) && !main.contains(section),
                "{section}"
            );
        }
        // Uncommented, the two parts are the example: every default, and no key in both.
        let dir = tempfile::tempdir().unwrap();
        let main_path = dir.path().join("main.toml");
        std::fs::write(
            &main_path,
            format!("{main}\n[schedule]\nfile = \"s.toml\"\n"),
        )
        .unwrap();
        let mut config = Config::from_sources(
            Some(&std::fs::read_to_string(&main_path).unwrap()),
            Some(&main_path),
            Some(&schedule),
        )
        .unwrap();
        config.schedule.file = None;
        let defaults = serde_json::to_value(Config::default()).unwrap();
        assert_eq!(serde_json::to_value(&config).unwrap(), defaults);
        let lines = |t: &str| t.lines().filter(|l| !l.trim().is_empty()).count();
        let dropped = EXAMPLE_CONFIG
            .lines()
            .filter(|l| {
                l.trim_start()
                    .trim_start_matches("# ")
                    .starts_with("file =")
            })
            .count();
        assert_eq!(
            lines(&main) + lines(&schedule) + dropped,
            lines(EXAMPLE_CONFIG)
        );
    }

    #[test]
    fn the_example_names_every_key_with_a_line_on_what_it_does() {
        // Every key of every section of the defaults appears as `key = ` in the example.
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let mut missing = Vec::new();
        for (section, value) in defaults.as_object().unwrap() {
            let keys: Vec<&String> = match value {
                serde_json::Value::Object(map) => map.keys().collect(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .filter_map(|i| i.as_object())
                    .flat_map(|m| m.keys())
                    .collect(),
                _ => vec![section],
            };
            for key in keys {
                let written = EXAMPLE_CONFIG.lines().any(|l| {
                    l.trim_start()
                        .trim_start_matches("# ")
                        .starts_with(&format!("{key} ="))
                });
                if !written {
                    missing.push(format!("{section}.{key}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "not in quicket-followup.example.toml: {missing:?}"
        );
    }

    #[test]
    fn init_writes_everything_once_and_then_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let written = init(dir.path()).unwrap();
        assert_eq!(written.len(), 2 + builtin_templates::FILES.len());
        // The split layout: what check reads there is the built-in configuration.
        let config = Config::load(Some(&dir.path().join(DEFAULT_CONFIG_FILE))).unwrap();
        assert_eq!(
            config.schedule.file.as_deref(),
            Some(dir.path().join(SCHEDULE_FILE).as_path())
        );
        assert!(
            dir.path()
                .join("templates/emails/abandoned/body.html")
                .is_file()
        );
        let before = std::fs::read_to_string(dir.path().join(DEFAULT_CONFIG_FILE)).unwrap();
        std::fs::write(
            dir.path().join("templates/emails/abandoned/subject.txt"),
            "mine",
        )
        .unwrap();
        let e = init(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("already exists") && e.contains("never overwrites"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("templates/emails/abandoned/subject.txt"))
                .unwrap(),
            "mine"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(DEFAULT_CONFIG_FILE)).unwrap(),
            before
        );
    }
}
