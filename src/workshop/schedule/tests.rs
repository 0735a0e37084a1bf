use super::*;

const MAIN: &str = "[schedule]\nfile = \"schedule.toml\"\n";
const FILE: &str = "# Our schedule, by hand.\n[schedule]\nmin_gap = \"12h\"   # one a day is plenty\n\
    dormant_after = \"1h 30m\"\n\n# The first nudge.\n[[reminders]]\nname = \"first\"\nafter = \"1h\"  # soon\n\
    when = [\"checkout_started\", \"checkout_cancelled\"]\ntemplate = \"abandoned\"\neven_if_sold_out = true\n\n\
    [[reminders]]\nname = \"eft\"\nafter = \"1d\"\nwhen = [\"eft_pending\"]\ntemplate = \"eft_pending\"\n";

fn load(schedule: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.toml");
    Config::from_sources(Some(MAIN), Some(&main), Some(schedule)).unwrap()
}

fn pairs(draft: &Draft) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = draft.schedule.clone();
    for (i, s) in draft.steps.iter().enumerate() {
        let mut f = |k: &str, v: &str| p.push((format!("s{i}.{k}"), v.to_string()));
        f("orig", s.orig.as_deref().unwrap_or(""));
        f("name", &s.name);
        f(
            "timing",
            if s.timing == Timing::After {
                "after"
            } else {
                "before_event"
            },
        );
        f("wait", &s.wait);
        for st in &s.states {
            f("state", st.as_str());
        }
        f("template", &s.template);
        f("window", &s.window);
    }
    p.push(("version".into(), "v".into()));
    p.push(("op".into(), "save".into()));
    p
}

#[test]
fn an_unchanged_form_writes_the_file_back_byte_for_byte() {
    let config = load(FILE);
    let draft = Draft::of(&config, Some(FILE));
    let posted = Draft::from_form(&pairs(&draft), chrono::Utc::now()).unwrap();
    assert_eq!(posted.draft, draft);
    assert_eq!(posted.draft.write_into(FILE, MAIN, &config).unwrap(), FILE);
}

#[test]
fn an_added_step_and_a_changed_value_keep_the_comments_and_what_the_form_does_not_show() {
    let config = load(FILE);
    let mut draft = Draft::of(&config, Some(FILE));
    assert!(draft.apply_op(Op::AddStep));
    let new = draft.steps.last_mut().unwrap();
    new.name = "second".into();
    new.wait = "2d".into();
    new.window = "mon-fri 08:00-17:00, sat never".into();
    draft
        .schedule
        .iter_mut()
        .find(|(k, _)| k == "min_gap")
        .unwrap()
        .1 = "6h".into();
    assert!(draft.check().is_empty(), "{:?}", draft.check());
    let text = draft.write_into(FILE, MAIN, &config).unwrap();
    for kept in [
        "# Our schedule, by hand.",
        "# one a day is plenty",
        "# The first nudge.",
        "# soon",
        "even_if_sold_out = true",
        "\"1h 30m\"",
    ] {
        assert!(text.contains(kept), "{kept} lost:\n{text}");
    }
    assert!(
        text.contains("min_gap = \"6h\"   # one a day is plenty"),
        "{text}"
    );
    let saved = load(&text);
    assert_eq!(saved.step_names(), ["first", "eft", "second"]);
    assert_eq!(
        saved.schedule.min_gap,
        std::time::Duration::from_secs(6 * 3600)
    );
    assert!(saved.reminders[0].even_if_sold_out);
    assert!(!saved.reminders[2].send_window.is_unset());
    assert_eq!(
        window_for_form(&saved.reminders[2].send_window),
        "mon-fri 08:00-17:00, sat never"
    );
    assert_eq!(
        summary(&config, &saved),
        "schedule: step second added; min_gap 12h -> 6h"
    );
}

#[test]
fn reordered_and_removed_steps_are_written_in_the_rows_order() {
    let config = load(FILE);
    let mut draft = Draft::of(&config, Some(FILE));
    draft.apply_op(Op::AddStep);
    draft.apply_op(Op::Up(2));
    draft.apply_op(Op::Up(1));
    let text = draft.write_into(FILE, MAIN, &config).unwrap();
    assert_eq!(load(&text).step_names(), ["step-3", "first", "eft"]);
    assert!(text.contains("# soon"), "{text}");
    draft.apply_op(Op::Remove(1));
    let text = draft.write_into(FILE, MAIN, &config).unwrap();
    assert_eq!(load(&text).step_names(), ["step-3", "eft"]);
    // A file without steps (the built-in ones in force) gets them all, once changed.
    let config = load("");
    let mut draft = Draft::of(&config, Some(""));
    draft.steps[0].wait = "2h".into();
    let text = draft.write_into("", MAIN, &config).unwrap();
    assert_eq!(load(&text).step_names(), Config::default().step_names());
    assert_eq!(
        load(&text).reminders[0].after,
        Some(std::time::Duration::from_secs(7200))
    );
}

#[test]
fn bad_values_are_refused_naming_their_field() {
    let config = load(FILE);
    let mut draft = Draft::of(&config, Some(FILE));
    draft.steps[1].wait = "soon".into();
    draft.steps[0].states.clear();
    draft
        .schedule
        .iter_mut()
        .find(|(k, _)| k == "timezone")
        .unwrap()
        .1 = "Mars/Olympus".into();
    draft.steps[0].window = "mon-fri 25:00-26:00".into();
    let errors = draft.check();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["timezone", "s0.state", "s0.window", "s1.wait"],
        "{errors:?}"
    );
    assert!(
        errors[3]
            .message
            .contains("step 2 (eft), delay: give a whole number"),
        "{errors:?}"
    );
    // A state no step can be for, an unknown field, a bad button: refused at the form.
    let mut p = pairs(&Draft::of(&config, Some(FILE)));
    p.push(("s0.state".into(), "checkout_completed".into()));
    let e = Draft::from_form(&p, chrono::Utc::now()).unwrap_err();
    assert_eq!(e.field, "s0.state");
    let mut p = pairs(&Draft::of(&config, Some(FILE)));
    p.push(("s0.colour".into(), "red".into()));
    assert_eq!(
        Draft::from_form(&p, chrono::Utc::now()).unwrap_err().field,
        "s0.colour"
    );
    let mut p = pairs(&Draft::of(&config, Some(FILE)));
    p.push(("server.listen".into(), "0.0.0.0:1".into()));
    assert!(
        Draft::from_form(&p, chrono::Utc::now())
            .unwrap_err()
            .message
            .contains("unknown field server.listen")
    );
}

#[test]
fn a_value_set_in_the_main_file_is_not_written_into_the_schedule_file() {
    let main = "[schedule]\nfile = \"schedule.toml\"\nmin_gap = \"8h\"\n";
    let dir = tempfile::tempdir().unwrap();
    let config =
        Config::from_sources(Some(main), Some(&dir.path().join("m.toml")), Some("")).unwrap();
    let mut draft = Draft::of(&config, Some(""));
    assert_eq!(draft.write_into("", main, &config).unwrap(), "");
    draft
        .schedule
        .iter_mut()
        .find(|(k, _)| k == "min_gap")
        .unwrap()
        .1 = "2h".into();
    let e = draft.write_into("", main, &config).unwrap_err();
    assert!(
        e.field == "min_gap" && e.message.contains("main configuration"),
        "{e:?}"
    );
}

#[test]
fn event_settings_are_written_per_event() {
    let config = load(FILE);
    let mut draft = Draft::of(&config, Some(FILE)).with_events(["77".to_string()]);
    draft.events[0].reminders = false;
    draft.events[0].url = "https://www.quicket.co.za/events/77-jazz/".into();
    let text = draft.write_into(FILE, MAIN, &config).unwrap();
    assert!(
        text.contains("[events.77]") || text.contains("[events.\"77\"]"),
        "{text}"
    );
    let saved = load(&text);
    assert!(!saved.events["77"].reminders);
    assert_eq!(
        saved.events["77"].url.as_deref(),
        Some("https://www.quicket.co.za/events/77-jazz/")
    );
}

#[test]
fn a_number_and_a_unit_pause_and_from_now_on_are_read_and_written_back() {
    let config = load(FILE);
    let draft = Draft::of(&config, Some(FILE));
    let mut p = pairs(&draft);
    p.retain(|(k, _)| k != "s1.wait" && k != "op");
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-08T09:00:00+02:00")
        .unwrap()
        .with_timezone(&chrono::Utc);
    for (k, v) in [
        ("s1.wait.n", "3"),
        ("s1.wait.unit", "days"),
        ("s1.paused", "on"),
        ("s0.applies", "now"),
        ("min_gap.n", "6"),
        ("min_gap.unit", "hours"),
    ] {
        p.push((k.into(), v.into()));
    }
    let posted = Draft::from_form(&p, now).unwrap();
    assert_eq!(posted.draft.steps[1].wait, "3d");
    assert!(posted.draft.steps[1].paused);
    assert_eq!(posted.draft.steps[0].from, Some(now));
    assert_eq!(posted.draft.value("min_gap"), "6h");
    let text = posted.draft.write_into(FILE, MAIN, &config).unwrap();
    assert!(text.contains("after = \"3d\""), "{text}");
    assert!(text.contains("paused = true"), "{text}");
    assert!(text.contains("from = \"2026-12-08T07:00:00Z\""), "{text}");
    assert!(
        text.contains("min_gap = \"6h\"   # one a day is plenty"),
        "{text}"
    );
    let again = load(&text);
    assert!(again.reminders[1].paused);
    assert_eq!(again.reminders[0].from, Some(now));
    // Read back, the moment is kept as it is ("since"), and an unchanged form writes nothing.
    let draft = Draft::of(&again, Some(&text));
    let mut p = pairs(&draft);
    for (i, s) in draft.steps.iter().enumerate() {
        if let Some(from) = s.from {
            p.push((format!("s{i}.from"), from.to_rfc3339()));
            p.push((format!("s{i}.applies"), "since".into()));
        }
        if s.paused {
            p.push((format!("s{i}.paused"), "on".into()));
        }
    }
    let posted = Draft::from_form(&p, now + chrono::TimeDelta::hours(1)).unwrap();
    assert_eq!(posted.draft.write_into(&text, MAIN, &again).unwrap(), text);
    // The sizes of a number: negative, absurd.
    for (n, says) in [
        ("-1", "negative"),
        ("400d", "365 days"),
        ("99999999999999999999d", "365 days"),
    ] {
        assert!(
            duration_problem(n).is_some_and(|e| e.contains(says)),
            "{n}: {:?}",
            duration_problem(n)
        );
    }
    assert_eq!(number_and_unit("1h 30m"), ("90".into(), "minutes"));
    assert_eq!(number_and_unit("14d"), ("14".into(), "days"));
}

#[test]
fn a_new_list_of_delays_is_said_in_the_history_as_a_new_timing_experiment() {
    let before = load(
        "[[reminders]]\nname = \"first\"\nafter = \"1h\"\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\n",
    );
    let arms = load(
        "[[reminders]]\nname = \"first\"\nafter = [\"1h\", \"1d\"]\nwhen = [\"checkout_started\"]\ntemplate = \"abandoned\"\n",
    );
    let line = summary(&before, &arms);
    assert!(
        line.contains("step first: a new timing experiment (1h, 1d)"),
        "{line}"
    );
    let line = summary(&arms, &before);
    assert!(
        line.contains("step first: its timing experiment (1h, 1d) ended"),
        "{line}"
    );
}
