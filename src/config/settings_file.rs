//! The settings file: `settings.toml` in the state directory (beside the database), the service's
//! own file for the organiser's choices: who sends (`email.from`, `email.reply_to`), how email
//! leaves (`email.transport`, `email.smtp_url`), DKIM, where links point (`server.public_url`) and
//! who is told (`notify.to`). The main configuration keeps what the host decides (listen, database,
//! paths, secrets of the host). Read after the main file and the schedule file; a key set both
//! here and in the main configuration (or its environment variable) is refused naming both, as
//! the schedule file is. Missing, it changes nothing.

use std::path::{Path, PathBuf};

use toml_edit::DocumentMut;

use super::schedule_file::ScheduleText;
use super::{ConfigError, invalid};

/// The file's name in the state directory.
pub const SETTINGS_FILE_NAME: &str = "settings.toml";

/// The keys the settings file may hold, by section.
pub const SETTINGS_KEYS: &[(&str, &[&str])] = &[
    ("server", &["public_url"]),
    (
        "email",
        &[
            "from",
            "reply_to",
            "transport",
            "smtp_url",
            "dkim_selector",
            "dkim_key",
        ],
    ),
    ("notify", &["to"]),
];

/// The settings file of a service whose database is `database`: beside it.
pub fn path_for(database: &Path) -> PathBuf {
    database
        .parent()
        .unwrap_or(Path::new(""))
        .join(SETTINGS_FILE_NAME)
}

/// Reads the settings file at `path`; `None` when there is none.
pub(super) fn read(path: &Path) -> Result<Option<ScheduleText>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(ScheduleText {
            path: path.to_path_buf(),
            text,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// Checks the settings file: only its own keys, none set in the main configuration `main` too
/// (nor by the environment variables in `env`: (variable, key) of those set).
pub(super) fn check_layers(
    settings: &DocumentMut,
    settings_name: &str,
    main: Option<&DocumentMut>,
    main_name: &str,
    env: &[(&str, &str)],
) -> Result<(), ConfigError> {
    for (section, item) in settings.iter() {
        let Some((_, keys)) = SETTINGS_KEYS.iter().find(|(s, _)| *s == section) else {
            return Err(invalid(
                section,
                format!(
                    "{settings_name} holds only the organiser's settings ({}); move [{section}] \
                     to the main configuration ({main_name})",
                    allowed()
                ),
            ));
        };
        let Some(table) = item.as_table_like() else {
            return Err(invalid(
                section,
                format!("{settings_name}: [{section}] must be a table"),
            ));
        };
        for (key, _) in table.iter() {
            let dotted = format!("{section}.{key}");
            if !keys.contains(&key) {
                return Err(invalid(
                    &dotted,
                    format!(
                        "{settings_name} holds only the organiser's settings ({}); move it to \
                         the main configuration ({main_name})",
                        allowed()
                    ),
                ));
            }
            if main
                .and_then(|m| m.get(section))
                .and_then(|s| s.get(key))
                .is_some()
            {
                return Err(invalid(
                    &dotted,
                    format!(
                        "is set in both {main_name} and {settings_name}; keep it in one of them \
                         (the settings file is the one the browser saves)"
                    ),
                ));
            }
            if let Some((var, _)) = env.iter().find(|(_, k)| *k == dotted) {
                return Err(invalid(
                    &dotted,
                    format!(
                        "is set in both the environment ({var}) and {settings_name}; keep it in \
                         one of them"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn allowed() -> String {
    SETTINGS_KEYS
        .iter()
        .flat_map(|(section, keys)| keys.iter().map(move |k| format!("{section}.{k}")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn dir_with(main: &str, settings: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state/followup.sqlite");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        std::fs::write(
            dir.path().join("main.toml"),
            format!("[database]\npath = {db:?}\n{main}"),
        )
        .unwrap();
        if let Some(settings) = settings {
            std::fs::write(dir.path().join("state/settings.toml"), settings).unwrap();
        }
        dir
    }

    fn load(dir: &tempfile::TempDir) -> Result<Config, String> {
        Config::load(Some(&dir.path().join("main.toml"))).map_err(|e| e.to_string())
    }

    #[test]
    fn the_settings_file_in_the_state_directory_is_read_after_the_main_file() {
        let dir = dir_with(
            "[email]\nmax_per_minute = 30\n",
            Some(
                "[email]\nfrom = \"Jazz Nights <tickets@jazznights.co.za>\"\ntransport = \"smtp\"\n\
                 smtp_url = \"smtps://u:p@smtp.example.net:465\"\n\
                 [server]\npublic_url = \"https://tickets.jazznights.co.za\"\n\
                 [notify]\nto = [\"organiser@jazznights.co.za\"]\n",
            ),
        );
        let config = load(&dir).unwrap();
        assert_eq!(config.email.from, "Jazz Nights <tickets@jazznights.co.za>");
        assert_eq!(config.email.max_per_minute, 30);
        assert_eq!(config.public_url(), "https://tickets.jazznights.co.za");
        assert_eq!(config.notify.to.len(), 1);
        // None: the main file alone.
        let dir = dir_with("[email]\nfrom = \"A <a@b.co.za>\"\n", None);
        assert_eq!(load(&dir).unwrap().email.from, "A <a@b.co.za>");
    }

    #[test]
    fn a_key_in_both_files_is_refused_naming_both() {
        let dir = dir_with(
            "[email]\nfrom = \"A <a@b.co.za>\"\n",
            Some("[email]\nfrom = \"B <b@b.co.za>\"\n"),
        );
        let e = load(&dir).unwrap_err();
        assert!(e.contains("email.from"), "{e}");
        assert!(
            e.contains("main.toml") && e.contains("settings.toml"),
            "{e}"
        );
    }

    #[test]
    fn only_the_organisers_keys_belong_in_the_settings_file() {
        for (text, key) in [
            ("[database]\nretention = \"0\"\n", "database"),
            ("[server]\nlisten = \"0.0.0.0:80\"\n", "server.listen"),
            ("[email]\noutbox_dir = \"/tmp\"\n", "email.outbox_dir"),
            ("email = 3\n", "email"),
        ] {
            let dir = dir_with("", Some(text));
            let e = load(&dir).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
            assert!(e.contains("settings.toml"), "{e}");
        }
    }

    #[test]
    fn a_bad_value_names_the_settings_file_and_never_shows_a_secret() {
        let dir = dir_with(
            "",
            Some(
                "[email]\ntransport = \"pigeon\"\nsmtp_url = \"smtps://u:hunter2-secret@h:465\"\n",
            ),
        );
        let e = load(&dir).unwrap_err();
        assert!(e.contains("transport"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let dir = dir_with("", Some("[email]\nfrom = 5\n"));
        let e = load(&dir).unwrap_err();
        assert!(e.contains("settings.toml"), "{e}");
        let dir = dir_with("", Some("[email\nfrom = \"x\"\n"));
        let e = load(&dir).unwrap_err();
        assert!(e.contains("settings.toml"), "{e}");
    }
}
