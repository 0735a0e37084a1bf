//! Public holidays: South Africa's, computed for any year from the Public Holidays Act 36 of 1994,
//! and the one-off dates an organiser lists (an election day, a declared holiday).
//!
//! No well-kept crate gives South Africa's rules for any year (the holiday crates we found are
//! single releases of tables for a fixed span of years), and the rules are short: ten fixed dates,
//! Good Friday and Family Day from Easter, and a holiday on a Sunday moves to the Monday.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// South Africa's ten public holidays on fixed dates (month, day, name).
const ZA_FIXED: [(u32, u32, &str); 10] = [
    (1, 1, "New Year's Day"),
    (3, 21, "Human Rights Day"),
    (4, 27, "Freedom Day"),
    (5, 1, "Workers' Day"),
    (6, 16, "Youth Day"),
    (8, 9, "National Women's Day"),
    (9, 24, "Heritage Day"),
    (12, 16, "Day of Reconciliation"),
    (12, 25, "Christmas Day"),
    (12, 26, "Day of Goodwill"),
];

/// Western (Gregorian) Easter Sunday of `year`, by the anonymous Gregorian algorithm
/// (Meeus/Jones/Butcher); `None` only for years chrono cannot represent.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// South Africa's public holidays in `year`, in date order, with their names: the fixed dates,
/// Good Friday and Family Day (the Monday after Easter), and, for a holiday on a Sunday, the
/// Monday after it (section 2(1) of the Act; when that Monday is a holiday already, the Act
/// adds nothing, and a day the President declares must be listed in `schedule.holidays`).
pub fn za_public_holidays(year: i32) -> Vec<(NaiveDate, String)> {
    let mut days: BTreeMap<NaiveDate, String> = BTreeMap::new();
    for (month, day, name) in ZA_FIXED {
        if let Some(date) = NaiveDate::from_ymd_opt(year, month, day) {
            days.insert(date, name.to_string());
        }
    }
    if let Some(easter) = easter_sunday(year) {
        if let Some(friday) = easter.checked_sub_days(Days::new(2)) {
            days.insert(friday, "Good Friday".into());
        }
        if let Some(monday) = easter.checked_add_days(Days::new(1)) {
            days.insert(monday, "Family Day".into());
        }
    }
    let sundays: Vec<(NaiveDate, String)> = days
        .iter()
        .filter(|(date, _)| date.weekday() == Weekday::Sun)
        .map(|(date, name)| (*date, name.clone()))
        .collect();
    for (sunday, name) in sundays {
        if let Some(monday) = sunday.checked_add_days(Days::new(1)) {
            days.entry(monday)
                .or_insert_with(|| format!("{name} (moved from Sunday)"));
        }
    }
    days.into_iter().collect()
}

/// Whether `date` is one of South Africa's public holidays (the same days as
/// [`za_public_holidays`]).
fn is_za_public_holiday(date: NaiveDate) -> bool {
    let own = |d: NaiveDate| {
        ZA_FIXED
            .iter()
            .any(|(m, day, _)| d.month() == *m && d.day() == *day)
            || ((3..=4).contains(&d.month())
                && easter_sunday(d.year()).is_some_and(|easter| {
                    easter.checked_sub_days(Days::new(2)) == Some(d)
                        || easter.checked_add_days(Days::new(1)) == Some(d)
                }))
    };
    own(date) || (date.weekday() == Weekday::Mon && date.pred_opt().is_some_and(own))
}

/// The public holidays in force: South Africa's (`"ZA"`) and/or listed dates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holidays {
    za: bool,
    listed: std::collections::BTreeSet<NaiveDate>,
}

impl Holidays {
    /// No public holidays at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// South Africa's public holidays plus `listed`.
    pub fn new(za: bool, listed: impl IntoIterator<Item = NaiveDate>) -> Self {
        Holidays {
            za,
            listed: listed.into_iter().collect(),
        }
    }

    /// The same, with South Africa's public holidays too.
    pub fn with_za(&self) -> Self {
        Holidays {
            za: true,
            listed: self.listed.clone(),
        }
    }

    /// Whether any day is a holiday.
    pub fn is_empty(&self) -> bool {
        !self.za && self.listed.is_empty()
    }

    /// Whether South Africa's calendar is included.
    pub fn includes_za(&self) -> bool {
        self.za
    }

    /// The listed one-off dates.
    pub fn listed(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.listed.iter().copied()
    }

    /// The holiday's name when `date` is one (a listed date is "a listed holiday").
    pub fn name(&self, date: NaiveDate) -> Option<String> {
        if self.za
            && let Some((_, name)) = za_public_holidays(date.year())
                .into_iter()
                .find(|(d, _)| *d == date)
        {
            return Some(name);
        }
        self.listed
            .contains(&date)
            .then(|| "a holiday listed in schedule.holidays".to_string())
    }

    /// Whether `date` is a holiday (without building the year's list: the planner asks often).
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.listed.contains(&date) || (self.za && is_za_public_holiday(date))
    }

    /// Words for people: "South Africa's public holidays and 2029-05-29".
    pub fn describe(&self) -> String {
        let listed: Vec<String> = self.listed.iter().map(|d| d.to_string()).collect();
        match (self.za, listed.is_empty()) {
            (false, true) => "no public holidays".into(),
            (true, true) => "South Africa's public holidays".into(),
            (true, false) => format!("South Africa's public holidays and {}", listed.join(", ")),
            (false, false) => listed.join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn dates(year: i32) -> Vec<String> {
        za_public_holidays(year)
            .into_iter()
            .map(|(d, _)| d.to_string())
            .collect()
    }

    #[test]
    fn easter_sunday_matches_the_published_dates() {
        for (year, easter) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2028, "2028-04-16"),
            // The extremes of the Gregorian range, and a year far off.
            (2285, "2285-03-22"),
            (2038, "2038-04-25"),
            (2000, "2000-04-23"),
        ] {
            assert_eq!(easter_sunday(year), Some(date(easter)), "{year}");
        }
    }

    // The calendars published by the South African government (gov.za, "Public holidays")
    // for 2024 to 2028, without the one-off days declared for an election (2024-05-29).
    #[test]
    fn south_africas_public_holidays_2024_to_2028_match_the_published_calendars() {
        let published: [(i32, &[&str]); 5] = [
            (
                2024,
                &[
                    "2024-01-01",
                    "2024-03-21",
                    "2024-03-29",
                    "2024-04-01",
                    "2024-04-27",
                    "2024-05-01",
                    "2024-06-16",
                    "2024-06-17",
                    "2024-08-09",
                    "2024-09-24",
                    "2024-12-16",
                    "2024-12-25",
                    "2024-12-26",
                ],
            ),
            (
                2025,
                &[
                    "2025-01-01",
                    "2025-03-21",
                    "2025-04-18",
                    "2025-04-21",
                    "2025-04-27",
                    "2025-04-28",
                    "2025-05-01",
                    "2025-06-16",
                    "2025-08-09",
                    "2025-09-24",
                    "2025-12-16",
                    "2025-12-25",
                    "2025-12-26",
                ],
            ),
            (
                2026,
                &[
                    "2026-01-01",
                    "2026-03-21",
                    "2026-04-03",
                    "2026-04-06",
                    "2026-04-27",
                    "2026-05-01",
                    "2026-06-16",
                    "2026-08-09",
                    "2026-08-10",
                    "2026-09-24",
                    "2026-12-16",
                    "2026-12-25",
                    "2026-12-26",
                ],
            ),
            (
                2027,
                &[
                    "2027-01-01",
                    "2027-03-21",
                    "2027-03-22",
                    "2027-03-26",
                    "2027-03-29",
                    "2027-04-27",
                    "2027-05-01",
                    "2027-06-16",
                    "2027-08-09",
                    "2027-09-24",
                    "2027-12-16",
                    "2027-12-25",
                    "2027-12-26",
                    "2027-12-27",
                ],
            ),
            (
                2028,
                &[
                    "2028-01-01",
                    "2028-03-21",
                    "2028-04-14",
                    "2028-04-17",
                    "2028-04-27",
                    "2028-05-01",
                    "2028-06-16",
                    "2028-08-09",
                    "2028-09-24",
                    "2028-09-25",
                    "2028-12-16",
                    "2028-12-25",
                    "2028-12-26",
                ],
            ),
        ];
        for (year, expected) in published {
            assert_eq!(dates(year), expected, "{year}");
        }
    }

    #[test]
    fn a_sunday_holiday_moves_to_the_monday() {
        let holidays = Holidays::new(true, []);
        // Youth Day 2024 and National Women's Day 2026 fell on Sundays.
        assert_eq!(
            holidays.name(date("2024-06-17")).as_deref(),
            Some("Youth Day (moved from Sunday)")
        );
        assert_eq!(
            holidays.name(date("2026-08-10")).as_deref(),
            Some("National Women's Day (moved from Sunday)")
        );
        // The Sunday itself stays a holiday; a Saturday holiday does not move.
        assert!(holidays.contains(date("2026-08-09")));
        assert!(
            !holidays.contains(date("2026-12-28")),
            "Day of Goodwill 2026 is a Saturday"
        );
        // Christmas on a Sunday: the Monday is the Day of Goodwill already; nothing more.
        let y2033 = dates(2033);
        assert!(y2033.contains(&"2033-12-26".to_string()));
        assert!(!y2033.contains(&"2033-12-27".to_string()), "{y2033:?}");
    }

    #[test]
    fn listed_dates_add_one_off_days() {
        let holidays = Holidays::new(true, [date("2024-05-29")]);
        assert!(holidays.contains(date("2024-05-29")));
        assert!(holidays.contains(date("2024-12-16")));
        assert!(!holidays.contains(date("2024-05-30")));
        let only_listed = Holidays::new(false, [date("2024-05-29")]);
        assert!(!only_listed.contains(date("2024-12-16")));
        assert_eq!(only_listed.describe(), "2024-05-29");
        assert_eq!(
            holidays.describe(),
            "South Africa's public holidays and 2024-05-29"
        );
        assert!(Holidays::none().is_empty());
    }

    #[test]
    fn the_quick_test_agrees_with_the_list() {
        let mut date = date("2020-01-01");
        let listed: std::collections::BTreeSet<NaiveDate> = (2019..=2041)
            .flat_map(za_public_holidays)
            .map(|(d, _)| d)
            .collect();
        while date < super::NaiveDate::from_ymd_opt(2041, 1, 1).unwrap() {
            assert_eq!(is_za_public_holiday(date), listed.contains(&date), "{date}");
            date = date.succ_opt().unwrap();
        }
    }

    #[test]
    fn every_year_has_its_twelve_holidays() {
        for year in 1995..2200 {
            let days = za_public_holidays(year);
            assert!((12..=15).contains(&days.len()), "{year}: {days:?}");
            assert!(
                days.iter().all(|(d, _)| d.weekday() != Weekday::Sun
                    || days.iter().any(|(m, _)| *m == d.succ_opt().unwrap())),
                "{year}: a Sunday holiday without its Monday"
            );
        }
    }
}
