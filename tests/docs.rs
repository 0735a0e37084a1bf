//! The documents in `docs/` say what the program does: the configuration reference names every
//! key with its real default, and the interface page every command; neither points outside the
//! repository.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap, helpers included

mod common;

use std::collections::{BTreeMap, BTreeSet};

use quicket_followup::config::{Config, EventConfig, ReminderStep, SendWindow};
use quicket_followup::domain::OrderState;
use serde_json::Value;

const CONFIGURATION: &str = include_str!("../docs/configuration.md");
const INTERFACE: &str = include_str!("../docs/interface.md");
const README: &str = include_str!("../README.md");
const EXAMPLE: &str = include_str!("../quicket-followup.example.toml");
const ARCHITECTURE: &str = include_str!("../ARCHITECTURE.md");
const LIB: &str = include_str!("../src/lib.rs");

/// One row of a key table: the key, and the second column (the default, or an example).
struct Row {
    key: String,
    second: String,
}

/// The key tables of configuration.md by section heading (`server`, `[reminders]`, `events."ID"`).
fn tables() -> BTreeMap<String, Vec<Row>> {
    let mut tables: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut section = None;
    for line in CONFIGURATION.lines() {
        if let Some(heading) = line.strip_prefix("## `[") {
            section = heading.strip_suffix("]`").map(str::to_string);
            continue;
        }
        let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) else {
            continue;
        };
        let cells: Vec<&str> = row.split(" | ").collect();
        let key = cells[0].trim_end_matches('`').to_string();
        tables.entry(section.clone()).or_default().push(Row {
            key,
            second: cells.get(1).unwrap_or(&"").trim().to_string(),
        });
    }
    tables
}

/// The TOML value in a cell: all of a cell in backticks, or the part after "e.g." in backticks.
fn literal(cell: &str) -> Option<&str> {
    let cell = cell
        .split_once("e.g. ")
        .map_or(cell, |(_, example)| example);
    cell.strip_prefix('`')?.strip_suffix('`')
}

fn load(text: &str) -> Result<Value, String> {
    Config::from_toml(Some(text), None)
        .map(|c| serde_json::to_value(c).unwrap())
        .map_err(|e| e.to_string())
}

/// The keys of the example file's `[section]`, written or commented out (`# key = `).
fn example_keys(section: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut current = String::new();
    for line in EXAMPLE.lines() {
        let line = line.trim_start_matches("# ");
        if let Some(name) = line.strip_prefix('[') {
            current = name
                .split(']')
                .next()
                .unwrap()
                .trim_matches('[')
                .to_string();
        } else if current == section
            && let Some((key, _)) = line.split_once(" = ")
            && !key.contains(' ')
        {
            keys.insert(key.to_string());
        }
    }
    keys
}

#[test]
fn the_configuration_reference_states_every_key_of_every_section_with_its_default() {
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let tables = tables();
    let mut problems = Vec::new();
    for (section, value) in defaults.as_object().unwrap() {
        let Value::Object(keys) = value else { continue };
        if section == "events" {
            continue;
        }
        let Some(rows) = tables.get(section) else {
            problems.push(format!("no table for [{section}]"));
            continue;
        };
        let documented: BTreeSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        for key in keys.keys() {
            if !documented.contains(key.as_str()) {
                problems.push(format!("{section}.{key} is not documented"));
            }
        }
        let in_example = example_keys(section);
        for row in rows {
            let key = &row.key;
            if !in_example.contains(key) {
                problems.push(format!(
                    "{section}.{key} is not in quicket-followup.example.toml"
                ));
            }
            let Some(text) = literal(&row.second) else {
                problems.push(format!(
                    "{section}.{key}: the default column is neither `VALUE` nor \"unset; e.g. `VALUE`\": {}",
                    row.second
                ));
                continue;
            };
            match load(&format!("[{section}]\n{key} = {text}\n")) {
                Err(e) => problems.push(format!("{section}.{key} = {text} is refused: {e}")),
                Ok(loaded) if row.second.starts_with("unset") => {
                    if keys.contains_key(key) {
                        problems.push(format!("{section}.{key} is said to be unset by default"));
                    }
                    if loaded[section][key].is_null() {
                        problems.push(format!("{section}.{key} = {text} is not read"));
                    }
                }
                Ok(loaded) => {
                    if loaded[section][key] != keys[key] {
                        problems.push(format!(
                            "{section}.{key}: the reference says {text}, the default is {}",
                            keys[key]
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/configuration.md:\n{}",
        problems.join("\n")
    );
}

/// Every field of a type, as the loader writes it back with each one set.
fn fields(value: Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn the_configuration_reference_names_every_key_of_a_step_and_of_an_event() {
    // Struct literals: a new field fails to compile here until it is documented.
    let step = ReminderStep {
        name: "n".into(),
        after: Some(std::time::Duration::from_secs(60)),
        before_event: Some(std::time::Duration::from_secs(60)),
        when: vec![OrderState::Started],
        template: "t".into(),
        variants: vec!["v".into()],
        arms: Vec::new(),
        even_if_sold_out: true,
        send_window: SendWindow::parse("08:00-20:00").unwrap(),
        paused: true,
        from: Some(chrono::Utc::now()),
        label: Some("First reminder".into()),
    };
    let event = EventConfig {
        url: Some("https://example.org/".into()),
        reminders: false,
    };
    let tables = tables();
    for (section, expected, base) in [
        (
            "[reminders]",
            fields(serde_json::to_value(step).unwrap()),
            "[[reminders]]\nname = \"n\"\nwhen = [\"checkout_started\"]\n",
        ),
        (
            "events.\"ID\"",
            fields(serde_json::to_value(event).unwrap()),
            "[events.\"1\"]\n",
        ),
    ] {
        let rows = &tables[section];
        let documented: BTreeSet<String> = rows.iter().map(|r| r.key.clone()).collect();
        assert_eq!(documented, expected, "the keys of [{section}]");
        for row in rows {
            // Each example is read by the loader (beside what a step needs to be whole).
            let example = literal(&row.second).unwrap();
            let mut text = base.replace(&format!("{} = ", row.key), "# was: ");
            text.push_str(&format!("{} = {example}\n", row.key));
            if row.key != "after" && row.key != "before_event" && section == "[reminders]" {
                text.push_str("after = \"1h\"\n");
            }
            if row.key != "template" && row.key != "variants" && section == "[reminders]" {
                text.push_str("template = \"abandoned\"\n");
            }
            let loaded = load(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let value = if section == "[reminders]" {
                loaded["reminders"][0][&row.key].clone()
            } else {
                loaded["events"]["1"][&row.key].clone()
            };
            assert!(!value.is_null(), "{} = {example} is not read", row.key);
        }
    }
}

#[test]
fn the_interface_page_names_every_command_of_the_binary() {
    let (code, help, _) = common::run_cli(&["--help"], &[]);
    assert_eq!(code, 0);
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 10, "{help}");
    for command in commands {
        assert!(
            INTERFACE.contains(&format!("\n  {command} ")),
            "docs/interface.md does not describe `{command}`"
        );
    }
}

#[test]
fn the_documents_point_nowhere_outside_the_repository_and_the_readme_links_them() {
    for (name, text) in [
        ("docs/configuration.md", CONFIGURATION),
        ("docs/interface.md", INTERFACE),
    ] {
        for outside in ["../", "CONTRACT", "shared/", "contract section"] {
            assert!(!text.contains(outside), "{name} refers to {outside:?}");
        }
    }
    assert!(
        README.contains("(docs/configuration.md)"),
        "README links the reference"
    );
    assert!(
        README.contains("(docs/interface.md)"),
        "README links the promises"
    );
}

#[test]
fn the_architecture_names_every_module_and_the_readme_links_it() {
    assert!(
        README.contains("(ARCHITECTURE.md)"),
        "README links the architecture"
    );
    for outside in ["../", "CONTRACT", "shared/"] {
        assert!(
            !ARCHITECTURE.contains(outside),
            "ARCHITECTURE.md refers to {outside:?}"
        );
    }
    let modules: Vec<&str> = LIB
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
        .collect();
    assert!(modules.len() > 20, "{modules:?}");
    for module in modules {
        assert!(
            ARCHITECTURE.contains(&format!("src/{module}.rs"))
                || ARCHITECTURE.contains(&format!("src/{module}/")),
            "ARCHITECTURE.md does not say where {module} is or what it does"
        );
    }
}
