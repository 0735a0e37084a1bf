//! The send window as an organiser writes it: one string for every day (`"08:00-20:00"`, `""` for
//! any hour, `"za-cpa"`), or hours by day (`{ mon-fri = "08:00-20:00", sat = "09:00-13:00" }`,
//! where a day left out or `""` is never); and `schedule.holidays` (`"ZA"` and/or dates).

use std::collections::BTreeMap;

use chrono::{NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// Seconds in a day: the end of a range that runs to midnight (`24:00`).
pub(super) const DAY: u32 = 86_400;

/// The days in the order a week is written, Monday first.
pub(super) const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// A day's name for people.
pub fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// One range of local time on a day, in seconds from midnight. `end <= start` runs past
/// midnight into the next day until `end` (as opening hours do: `fri = "22:00-02:00"` is Friday
/// night).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first second allowed.
    pub start: u32,
    /// The first second no longer allowed (up to [`DAY`]).
    pub end: u32,
}

impl Range {
    /// Whether the range runs past midnight.
    pub fn overnight(&self) -> bool {
        self.end <= self.start
    }
}

/// The hours of one day: no range is never.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayHours(pub Vec<Range>);

impl DayHours {
    /// Parses `"08:00-20:00"`, several as `"08:00-12:00, 14:00-18:00"`, or `""` (never).
    pub fn parse(text: &str) -> Result<DayHours, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(DayHours(Vec::new()));
        }
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (start, end) = part
                .split_once('-')
                .ok_or_else(|| format!("expected HH:MM-HH:MM, found {part:?}"))?;
            let (start, end) = (seconds(start, false)?, seconds(end, true)?);
            if start == end {
                return Err(format!(
                    "{part:?} is an empty range; leave the day out (or \"\") for never"
                ));
            }
            ranges.push(Range { start, end });
        }
        Ok(DayHours(ranges))
    }

    /// Whether the day allows nothing.
    pub fn is_never(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for DayHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| format!("{}-{}", hhmm(r.start), hhmm(r.end)))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// `HH:MM` for seconds from midnight (86400 is `24:00`).
pub(super) fn hhmm(seconds: u32) -> String {
    format!("{:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
}

fn seconds(text: &str, is_end: bool) -> Result<u32, String> {
    let text = text.trim();
    if is_end && text == "24:00" {
        return Ok(DAY);
    }
    let time = chrono::NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| format!("{text:?} is not a time of day as HH:MM"))?;
    Ok(chrono::Timelike::num_seconds_from_midnight(&time))
}

/// Hours for each day of the week, with the words each day's hours were written in (for the
/// record of what allowed an email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Week {
    /// Monday first.
    pub days: [DayHours; 7],
    /// How each day's hours were written, e.g. `mon-fri = "08:00-20:00"`.
    pub written: [String; 7],
}

impl Week {
    /// The same hours every day.
    pub fn every_day(hours: DayHours, written: String) -> Week {
        Week {
            days: std::array::from_fn(|_| hours.clone()),
            written: std::array::from_fn(|_| written.clone()),
        }
    }

    /// The hours of the Consumer Protection Act's regulation 4: Monday to Friday 08:00-20:00,
    /// Saturday 09:00-13:00, never on Sunday.
    pub fn za_cpa() -> Week {
        let weekdays = DayHours(vec![Range {
            start: 8 * 3600,
            end: 20 * 3600,
        }]);
        let saturday = DayHours(vec![Range {
            start: 9 * 3600,
            end: 13 * 3600,
        }]);
        let mut days: [DayHours; 7] = std::array::from_fn(|_| weekdays.clone());
        days[5] = saturday;
        days[6] = DayHours::default();
        let mut written: [String; 7] =
            std::array::from_fn(|_| "Monday to Friday 08:00-20:00".to_string());
        written[5] = "Saturday 09:00-13:00".into();
        written[6] = "never on Sunday".into();
        Week { days, written }
    }

    /// Parses hours by day: keys are days (`mon`, `monday`) or ranges of days (`mon-fri`,
    /// `fri-mon`); a day left out is never.
    pub fn parse_by_day(entries: &BTreeMap<String, String>) -> Result<Week, String> {
        let mut days: [Option<DayHours>; 7] = Default::default();
        let mut written: [String; 7] = Default::default();
        for (key, value) in entries {
            let hours = DayHours::parse(value).map_err(|e| format!("{key}: {e}"))?;
            for index in day_indexes(key)? {
                if days[index].is_some() {
                    return Err(format!(
                        "{} is given twice (in {key:?} and earlier); give each day once",
                        day_name(WEEK[index])
                    ));
                }
                days[index] = Some(hours.clone());
                written[index] = format!("{key} = {value:?}");
            }
        }
        let days = days.map(Option::unwrap_or_default);
        if days.iter().all(DayHours::is_never) {
            return Err(
                "no day has any hours, so no reminder could ever be sent; give some days hours (e.g. mon-fri = \"08:00-20:00\"), or use \"\" for any hour".into(),
            );
        }
        Ok(Week { days, written })
    }

    /// The hours of `day`.
    pub fn hours(&self, day: Weekday) -> &DayHours {
        &self.days[day.num_days_from_monday() as usize]
    }

    /// How `day`'s hours were written.
    pub fn written(&self, day: Weekday) -> &str {
        &self.written[day.num_days_from_monday() as usize]
    }
}

/// The indexes (Monday = 0) a key names: one day, or a range of days that may wrap (`fri-mon`).
fn day_indexes(key: &str) -> Result<Vec<usize>, String> {
    let day = |text: &str| -> Result<usize, String> {
        let text = text.trim().to_ascii_lowercase();
        WEEK.iter()
            .position(|d| {
                let name = day_name(*d).to_ascii_lowercase();
                text == name || text == name[..3]
            })
            .ok_or_else(|| {
                format!("{text:?} is not a day; write mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri")
            })
    };
    match key.split_once('-') {
        None => Ok(vec![day(key)?]),
        Some((from, to)) => {
            let (from, to) = (day(from)?, day(to)?);
            let mut out = vec![from];
            let mut i = from;
            while i != to {
                i = (i + 1) % 7;
                out.push(i);
            }
            Ok(out)
        }
    }
}

/// The send window as written in the configuration (`[schedule] send_window`, or a step's own).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SendWindow {
    /// Not set: for `[schedule]`, "za-cpa" in Africa/Johannesburg and "08:00-20:00" elsewhere; for
    /// a step, the schedule's window.
    #[default]
    Unset,
    /// `""`: any hour.
    AnyHour,
    /// `"za-cpa"`: the Consumer Protection Act's hours and South Africa's public holidays.
    ZaCpa,
    /// `"08:00-20:00"`: the same hours every day.
    Daily(DayHours),
    /// `{ mon-fri = "08:00-20:00", ... }`.
    ByDay(BTreeMap<String, String>, Box<Week>),
}

impl SendWindow {
    /// Parses the single-string form: `""` (any hour), `"za-cpa"`, or hours for every day.
    pub fn parse(text: &str) -> Result<SendWindow, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(SendWindow::AnyHour);
        }
        if text.eq_ignore_ascii_case("za-cpa") {
            return Ok(SendWindow::ZaCpa);
        }
        DayHours::parse(text).map(SendWindow::Daily).map_err(|e| {
            format!("{e} (write \"HH:MM-HH:MM\" for every day, \"za-cpa\", \"\" for any hour, or hours by day: {{ mon-fri = \"08:00-20:00\", sat = \"09:00-13:00\" }})")
        })
    }

    /// Parses hours by day.
    pub fn by_day(entries: BTreeMap<String, String>) -> Result<SendWindow, String> {
        let week = Week::parse_by_day(&entries)?;
        Ok(SendWindow::ByDay(entries, Box::new(week)))
    }

    /// Whether it was left unset.
    pub fn is_unset(&self) -> bool {
        matches!(self, SendWindow::Unset)
    }
}

impl std::fmt::Display for SendWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendWindow::Unset | SendWindow::AnyHour => Ok(()),
            SendWindow::ZaCpa => f.write_str("za-cpa"),
            SendWindow::Daily(hours) => write!(f, "{hours}"),
            SendWindow::ByDay(entries, _) => {
                let parts: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{k} = {v:?}"))
                    .collect();
                write!(f, "{{ {} }}", parts.join(", "))
            }
        }
    }
}

impl Serialize for SendWindow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SendWindow::ByDay(entries, _) => entries.serialize(serializer),
            other => serializer.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for SendWindow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SendWindow;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "\"HH:MM-HH:MM\", \"za-cpa\", \"\", or hours by day such as { mon-fri = \"08:00-20:00\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SendWindow, E> {
                SendWindow::parse(text).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SendWindow, A::Error> {
                let mut entries = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    entries.insert(key, value);
                }
                SendWindow::by_day(entries).map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[schedule] holidays` as written: `""`, `"ZA"`, a date, or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HolidayList {
    /// South Africa's calendar.
    pub za: bool,
    /// One-off dates.
    pub dates: Vec<NaiveDate>,
    written: Vec<String>,
}

impl HolidayList {
    /// Parses a list of entries, each `"ZA"` or `"YYYY-MM-DD"` (an empty entry is ignored).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<HolidayList, String> {
        let mut list = HolidayList::default();
        for entry in entries {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            if entry.eq_ignore_ascii_case("za") {
                list.za = true;
            } else {
                let date = NaiveDate::parse_from_str(entry, "%Y-%m-%d").map_err(|_| {
                    format!("{entry:?} is neither \"ZA\" (South Africa's public holidays) nor a date as YYYY-MM-DD")
                })?;
                list.dates.push(date);
            }
            list.written.push(entry.to_string());
        }
        Ok(list)
    }

    /// The calendar these entries give.
    pub fn holidays(&self) -> super::Holidays {
        super::Holidays::new(self.za, self.dates.iter().copied())
    }
}

impl Serialize for HolidayList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.written.as_slice() {
            [] => serializer.serialize_str(""),
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for HolidayList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = HolidayList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"ZA\", a date as \"YYYY-MM-DD\", or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<HolidayList, E> {
                HolidayList::parse([text]).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<HolidayList, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = seq.next_element::<String>()? {
                    entries.push(entry);
                }
                HolidayList::parse(entries.iter().map(String::as_str))
                    .map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
