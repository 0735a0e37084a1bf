use std::collections::BTreeMap;

use chrono::{NaiveDateTime, TimeDelta};
use chrono_tz::Africa::Johannesburg;

use super::*;

/// A local wall-clock time in `tz` (the earlier instant when it occurs twice).
fn local(tz: Tz, text: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
    tz.from_local_datetime(&naive)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
}

fn sa(text: &str) -> DateTime<Utc> {
    local(Johannesburg, text)
}

fn utc(text: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .unwrap()
        .and_utc()
}

fn cpa() -> SendRule {
    SendRule::new(
        &SendWindow::ZaCpa,
        Johannesburg,
        Holidays::none(),
        "schedule.send_window",
    )
}

fn daily(text: &str, tz: Tz) -> SendRule {
    SendRule::new(
        &SendWindow::parse(text).unwrap(),
        tz,
        Holidays::none(),
        "schedule.send_window",
    )
}

fn by_day(entries: &[(&str, &str)]) -> SendWindow {
    SendWindow::by_day(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    )
    .unwrap()
}

#[test]
fn za_cpa_allows_only_the_acts_hours() {
    let rule = cpa();
    let tz = Johannesburg;
    // 2026-12-07 is a Monday, 12 a Saturday, 13 a Sunday.
    for (at, allowed) in [
        ("2026-12-07 07:59", false),
        ("2026-12-07 08:00", true),
        ("2026-12-07 19:59", true),
        ("2026-12-07 20:00", false),
        ("2026-12-11 12:00", true),
        ("2026-12-12 08:59", false),
        ("2026-12-12 09:00", true),
        ("2026-12-12 12:59", true),
        ("2026-12-12 13:00", false),
        ("2026-12-13 10:00", false),
        // Day of Reconciliation (a Wednesday), Christmas (Friday), Day of Goodwill (Saturday).
        ("2026-12-16 10:00", false),
        ("2026-12-17 10:00", true),
        ("2026-12-25 10:00", false),
        ("2026-12-26 10:00", false),
        // National Women's Day 2026 is a Sunday: the Monday after is a public holiday.
        ("2026-08-10 10:00", false),
        ("2026-08-11 10:00", true),
    ] {
        assert_eq!(rule.allows(sa(at), tz), allowed, "{at}");
    }
}

#[test]
fn the_next_allowed_moment_under_za_cpa() {
    let rule = cpa();
    let tz = Johannesburg;
    for (now, opens) in [
        // Sunday morning: Monday 08:00.
        ("2026-12-13 09:00", "2026-12-14 08:00"),
        // Saturday 14:00: Monday 08:00.
        ("2026-12-12 14:00", "2026-12-14 08:00"),
        // Friday night: Saturday 09:00.
        ("2026-12-11 20:00", "2026-12-12 09:00"),
        // Day of Reconciliation: the 17th.
        ("2026-12-16 10:00", "2026-12-17 08:00"),
        // Christmas on a Friday, the Day of Goodwill on the Saturday, then Sunday: Monday.
        ("2026-12-25 07:00", "2026-12-28 08:00"),
        // Good Friday 2026: Saturday 09:00 is allowed (Easter Sunday and Family Day are not).
        ("2026-04-03 11:00", "2026-04-04 09:00"),
        ("2026-04-04 13:30", "2026-04-07 08:00"),
        // Already inside: now.
        ("2026-12-14 10:15", "2026-12-14 10:15"),
    ] {
        assert_eq!(rule.next_open(sa(now), tz), Some(sa(opens)), "from {now}");
    }
}

#[test]
fn za_cpa_says_why_in_the_acts_words() {
    let rule = cpa();
    let tz = Johannesburg;
    assert_eq!(
        rule.closed_reason(sa("2026-12-13 09:00"), tz),
        "Sunday: no direct marketing on Sundays"
    );
    assert_eq!(
        rule.closed_reason(sa("2026-12-12 14:00"), tz),
        "Saturday 14:00: direct marketing on Saturdays only 09:00-13:00"
    );
    assert_eq!(
        rule.closed_reason(sa("2026-12-08 21:30"), tz),
        "Tuesday 21:30: direct marketing on weekdays only 08:00-20:00"
    );
    assert_eq!(
        rule.closed_reason(sa("2026-12-16 10:00"), tz),
        "Day of Reconciliation (public holiday): no direct marketing on public holidays"
    );
    assert_eq!(
        rule.closed_reason(sa("2026-08-10 10:00"), tz),
        "National Women's Day (moved from Sunday) (public holiday): no direct marketing on public holidays"
    );
    assert_eq!(
        rule.allowed_by(sa("2026-12-14 08:00"), tz),
        "za-cpa (Consumer Protection Act): Monday to Friday 08:00-20:00"
    );
    assert_eq!(
        rule.allowed_by(sa("2026-12-12 09:30"), tz),
        "za-cpa (Consumer Protection Act): Saturday 09:00-13:00"
    );
    assert_eq!(rule.allowed_by(sa("2026-12-13 09:30"), tz), "");
}

#[test]
fn za_cpa_in_words() {
    assert_eq!(
        cpa().describe(),
        "Monday to Friday 08:00-20:00 and Saturdays 09:00-13:00, never on Sundays or public holidays (South Africa's Consumer Protection Act)"
    );
    let listed = SendRule::new(
        &SendWindow::ZaCpa,
        Johannesburg,
        Holidays::new(false, [NaiveDate::from_ymd_opt(2029, 5, 29).unwrap()]),
        "schedule.send_window",
    );
    assert!(listed.describe().ends_with("; also never on 2029-05-29"));
    assert!(!listed.allows(sa("2029-05-29 10:00"), Johannesburg));
    // za-cpa implies South Africa's holidays even when schedule.holidays lists only dates.
    assert!(
        !listed.allows(sa("2029-12-17 10:00"), Johannesburg),
        "Reconciliation 2029 is a Sunday: Monday"
    );
}

#[test]
fn unset_is_za_cpa_in_johannesburg_and_eight_to_eight_elsewhere() {
    let sa_default = SendRule::new(&SendWindow::Unset, Johannesburg, Holidays::none(), "s");
    assert!(sa_default.is_za_cpa());
    let london = SendRule::new(
        &SendWindow::Unset,
        chrono_tz::Europe::London,
        Holidays::none(),
        "s",
    );
    assert!(!london.is_za_cpa());
    assert_eq!(london.describe(), "only between 08:00 and 20:00, every day");
    // Sunday is allowed there.
    assert!(london.allows(
        local(chrono_tz::Europe::London, "2026-12-13 10:00"),
        chrono_tz::Europe::London
    ));
}

#[test]
fn hours_by_day_with_ranges_single_days_and_days_left_out() {
    let window = by_day(&[
        ("mon-fri", "08:00-20:00"),
        ("sat", "09:00-13:00"),
        ("sun", ""),
    ]);
    let rule = SendRule::new(
        &window,
        Johannesburg,
        Holidays::none(),
        "schedule.send_window",
    );
    let tz = Johannesburg;
    assert!(rule.allows(sa("2026-12-11 19:00"), tz));
    assert!(!rule.allows(sa("2026-12-12 13:00"), tz));
    assert!(!rule.allows(sa("2026-12-13 10:00"), tz));
    assert_eq!(
        rule.describe(),
        "Monday to Friday 08:00-20:00, Saturday 09:00-13:00, never on Sunday"
    );
    assert_eq!(
        rule.allowed_by(sa("2026-12-12 10:00"), tz),
        "schedule.send_window sat = \"09:00-13:00\""
    );
    assert_eq!(
        rule.closed_reason(sa("2026-12-13 10:00"), tz),
        "Sunday: no emails on Sundays (schedule.send_window sun = \"\")"
    );
    // Without holidays configured, the 16th is an ordinary Wednesday.
    assert!(rule.allows(sa("2026-12-16 10:00"), tz));

    // A day left out is never; a range may wrap around the week.
    let weekend = by_day(&[("fri-mon", "10:00-12:00")]);
    let rule = SendRule::new(&weekend, Johannesburg, Holidays::none(), "w");
    assert!(rule.allows(sa("2026-12-14 11:00"), tz), "Monday");
    assert!(
        !rule.allows(sa("2026-12-15 11:00"), tz),
        "Tuesday is left out"
    );
    assert_eq!(
        rule.closed_reason(sa("2026-12-15 11:00"), tz),
        "Tuesday: no emails on Tuesdays (w: Tuesday is not listed, so never)"
    );
    assert_eq!(
        rule.next_open(sa("2026-12-14 12:00"), tz),
        Some(sa("2026-12-18 10:00"))
    );
}

#[test]
fn public_holidays_take_sundays_hours() {
    let window = by_day(&[("mon-sat", "08:00-20:00"), ("sun", "10:00-12:00")]);
    let holidays = Holidays::new(true, [NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()]);
    let rule = SendRule::new(&window, Johannesburg, holidays, "schedule.send_window");
    let tz = Johannesburg;
    // Day of Reconciliation and a listed Tuesday: Sunday's 10:00-12:00.
    assert!(!rule.allows(sa("2026-12-16 09:00"), tz));
    assert!(rule.allows(sa("2026-12-16 11:00"), tz));
    assert!(!rule.allows(sa("2026-12-01 13:00"), tz));
    assert_eq!(
        rule.next_open(sa("2026-12-16 08:30"), tz),
        Some(sa("2026-12-16 10:00"))
    );
    assert_eq!(
        rule.allowed_by(sa("2026-12-16 11:00"), tz),
        "schedule.send_window sun = \"10:00-12:00\" (Day of Reconciliation: public holiday, Sunday's hours)"
    );
    assert!(rule.describe().ends_with(
        "; on South Africa's public holidays and 2026-12-01 as on Sundays (10:00-12:00)"
    ));
}

#[test]
fn a_window_across_midnight() {
    let tz = Johannesburg;
    let rule = daily("22:00-06:00", tz);
    assert_eq!(
        rule.next_open(sa("2026-12-01 23:00"), tz),
        Some(sa("2026-12-01 23:00"))
    );
    assert_eq!(
        rule.next_open(sa("2026-12-02 05:59"), tz),
        Some(sa("2026-12-02 05:59"))
    );
    assert_eq!(
        rule.next_open(sa("2026-12-02 06:00"), tz),
        Some(sa("2026-12-02 22:00"))
    );
    // By day, an overnight range belongs to the evening it starts on: Friday night.
    let friday_night = SendRule::new(
        &by_day(&[("fri", "22:00-02:00")]),
        tz,
        Holidays::none(),
        "w",
    );
    assert!(friday_night.allows(sa("2026-12-11 23:30"), tz));
    assert!(
        friday_night.allows(sa("2026-12-12 01:59"), tz),
        "Saturday 01:59 is Friday night"
    );
    assert!(!friday_night.allows(sa("2026-12-12 02:00"), tz));
    assert!(
        !friday_night.allows(sa("2026-12-12 23:00"), tz),
        "Saturday night is not listed"
    );
    assert_eq!(
        friday_night.allowed_by(sa("2026-12-12 01:00"), tz),
        "w fri = \"22:00-02:00\""
    );
    assert_eq!(
        friday_night.next_open(sa("2026-12-12 02:00"), tz),
        Some(sa("2026-12-18 22:00"))
    );
    // 24:00 ends a day at midnight.
    let evening = daily("18:00-24:00", tz);
    assert!(evening.allows(sa("2026-12-01 23:59"), tz));
    assert!(!evening.allows(sa("2026-12-02 00:00"), tz));
}

#[test]
fn across_daylight_saving_changes() {
    let london = chrono_tz::Europe::London;
    // 2026-03-29: at 01:00 UTC the clock jumps from 01:00 to 02:00; 01:00-01:59 never happens.
    let rule = daily("01:30-02:30", london);
    assert_eq!(
        rule.next_open(utc("2026-03-29 00:10"), london),
        Some(utc("2026-03-29 01:00")),
        "the window opens when the clock jumps into it"
    );
    assert!(rule.allows(utc("2026-03-29 01:20"), london)); // 02:20 BST
    assert!(!rule.allows(utc("2026-03-29 01:30"), london)); // 02:30 BST
    // A window wholly inside the gap does not open that day.
    let gap = daily("01:10-01:50", london);
    assert_eq!(
        gap.next_open(utc("2026-03-29 00:10"), london),
        Some(utc("2026-03-30 00:10")), // 01:10 BST the next day
    );
    // 2026-10-25: at 01:00 UTC the clock goes back from 02:00 to 01:00; 01:00-01:59 happens twice.
    let twice = daily("01:30-02:00", london);
    assert!(twice.allows(utc("2026-10-25 00:45"), london)); // 01:45 BST
    assert!(!twice.allows(utc("2026-10-25 01:00"), london)); // 01:00 GMT
    assert_eq!(
        twice.next_open(utc("2026-10-25 01:00"), london),
        Some(utc("2026-10-25 01:30")),
        "the second 01:30"
    );
    // An ordinary 08:00-20:00 keeps local hours on both sides of each change.
    let ny = chrono_tz::America::New_York;
    let day = daily("08:00-20:00", ny);
    assert_eq!(
        day.next_open(local(ny, "2026-03-07 21:00"), ny),
        Some(local(ny, "2026-03-08 08:00"))
    );
    assert_eq!(
        day.next_open(local(ny, "2026-03-08 21:00"), ny),
        Some(local(ny, "2026-03-09 08:00"))
    );
    assert_eq!(
        local(ny, "2026-03-09 08:00") - local(ny, "2026-03-08 08:00"),
        TimeDelta::hours(24)
    );
    assert_eq!(
        local(ny, "2026-03-08 08:00") - local(ny, "2026-03-07 08:00"),
        TimeDelta::hours(23)
    );
}

/// next_open's promise, checked every five minutes: the answer is allowed and nothing between
/// `now` and it is.
#[test]
fn the_next_open_moment_is_the_first_allowed_minute() {
    let zones = [
        Johannesburg,
        chrono_tz::Europe::London,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe, // a half-hour change
    ];
    let windows = [
        SendWindow::ZaCpa,
        SendWindow::parse("01:30-02:30").unwrap(),
        SendWindow::parse("22:00-06:00").unwrap(),
        SendWindow::parse("08:00-12:00, 14:00-24:00").unwrap(),
        by_day(&[
            ("sat", "01:00-03:00"),
            ("sun", "02:15-02:45"),
            ("mon", "23:00-01:30"),
        ]),
    ];
    // Weeks around the changes of 2026 in these zones, from every 181 minutes, by 5 minutes (every
    // boundary here is on a multiple of 5 minutes).
    let starts = [
        utc("2026-03-26 00:00"),
        utc("2026-04-02 00:00"),
        utc("2026-10-22 00:00"),
    ];
    for tz in zones {
        for window in &windows {
            let rule = SendRule::new(window, tz, Holidays::new(true, []), "w");
            for start in starts {
                let mut now = start;
                while now < start + TimeDelta::days(7) {
                    let open = rule.next_open(now, tz).unwrap();
                    assert!(open >= now);
                    assert!(rule.allows(open, tz), "{tz} {window} from {now}: {open}");
                    let mut t =
                        now + TimeDelta::minutes(5) - TimeDelta::seconds(now.timestamp() % 300);
                    while t < open {
                        assert!(
                            !rule.allows(t, tz),
                            "{tz} {window} from {now}: {t} is allowed before {open}"
                        );
                        t += TimeDelta::minutes(5);
                    }
                    now += TimeDelta::minutes(181);
                }
            }
        }
    }
}

#[test]
fn bad_windows_are_refused_with_a_reason() {
    assert!(
        SendWindow::parse("25:00-20:00")
            .unwrap_err()
            .contains("25:00")
    );
    assert!(
        SendWindow::parse("08:00-08:00")
            .unwrap_err()
            .contains("empty")
    );
    assert!(SendWindow::parse("24:00-08:00").is_err());
    let entries = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    let twice = SendWindow::by_day(entries(&[
        ("mon-fri", "08:00-20:00"),
        ("fri", "09:00-10:00"),
    ]));
    assert!(twice.unwrap_err().contains("Friday is given twice"));
    let bad_day = SendWindow::by_day(entries(&[("mo-fr", "08:00-20:00")]));
    assert!(bad_day.unwrap_err().contains("not a day"));
    let never = SendWindow::by_day(entries(&[("sun", "")]));
    assert!(never.unwrap_err().contains("no day has any hours"));
    let bad_hours = SendWindow::by_day(entries(&[("sat", "9-13")]));
    assert!(bad_hours.unwrap_err().starts_with("sat:"));
    assert!(HolidayList::parse(["ZA", "2026-13-01"]).is_err());
    let list = HolidayList::parse(["za", "2029-05-29"]).unwrap();
    assert!(list.za);
    assert_eq!(list.dates, [NaiveDate::from_ymd_opt(2029, 5, 29).unwrap()]);
}

#[test]
fn a_window_wider_than_the_act_is_found_with_an_example() {
    let tz = Johannesburg;
    let act = cpa();
    assert_eq!(cpa().allows_beyond(&act, tz), None);
    assert_eq!(
        daily("08:00-20:00", tz).allows_beyond(&act, tz).as_deref(),
        Some("Day of Reconciliation, 2026-12-16 08:00")
    );
    let late_saturday = SendRule::new(
        &by_day(&[("mon-fri", "08:00-20:00"), ("sat", "09:00-14:00")]),
        tz,
        Holidays::new(true, []),
        "w",
    );
    assert_eq!(
        late_saturday.allows_beyond(&act, tz).as_deref(),
        Some("Saturday 13:00")
    );
    let narrower = SendRule::new(
        &by_day(&[("tue-thu", "10:00-12:00")]),
        tz,
        Holidays::new(true, []),
        "w",
    );
    assert_eq!(narrower.allows_beyond(&act, tz), None);
}

#[test]
fn closed_at_answers_as_next_open_and_closed_reason_do_whatever_was_asked_before() {
    let rule = cpa();
    let tz = Johannesburg;
    let moments = [
        "2026-12-13 09:00",
        "2026-12-13 09:00",
        "2026-12-12 14:00",
        "2026-12-14 10:00",
        "2026-12-13 09:00",
    ];
    for at in moments {
        let at = sa(at);
        let expected = (!rule.allows(at, tz)).then(|| Closed {
            opens: rule.next_open(at, tz),
            reason: rule.closed_reason(at, tz),
        });
        assert_eq!(rule.closed_at(at, tz), expected, "{at}");
        // A copy of the rule (shared cache) asked in another zone answers for that zone.
        let london = chrono_tz::Europe::London;
        let copy = rule.clone();
        let other = (!copy.allows(at, london)).then(|| Closed {
            opens: copy.next_open(at, london),
            reason: copy.closed_reason(at, london),
        });
        assert_eq!(copy.closed_at(at, london), other, "{at} in London");
    }
}

#[test]
fn the_ends_of_time_do_not_panic() {
    for tz in [Johannesburg, chrono_tz::Europe::London] {
        for window in [SendWindow::ZaCpa, SendWindow::parse("01:30-02:30").unwrap()] {
            let rule = SendRule::new(&window, tz, Holidays::new(true, []), "w");
            // The ends of what `run-once --now` accepts (RFC 3339 has four-digit years).
            for at in [
                "9999-12-31T23:59:59Z",
                "0000-01-01T00:00:00Z",
                "9999-12-31T12:00:00+14:00",
            ] {
                let at = DateTime::parse_from_rfc3339(at)
                    .unwrap()
                    .with_timezone(&Utc);
                let _ = rule.closed_at(at, tz);
                let _ = rule.allowed_by(at, tz);
            }
        }
    }
}
