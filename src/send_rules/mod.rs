//! When reminders may leave: the send window by day of the week, public holidays (treated as
//! Sundays), and South Africa's Consumer Protection Act (`"za-cpa"`). Pure: every function takes
//! the instant it is asked about, so the planner stays a pure function.

mod holidays;
mod window;

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

pub use holidays::{Holidays, easter_sunday, za_public_holidays};
use window::{DAY, WEEK, hhmm};
pub use window::{DayHours, HolidayList, Range, SendWindow, Week, day_name};

/// How far ahead the next allowed moment is looked for (a window that opens later than this is
/// treated as never opening).
const LOOK_AHEAD_DAYS: i64 = 400;

/// A send window in force: the hours of each day, the public holidays (which take Sunday's
/// hours), and where it was configured (named in the record of what allowed an email).
#[derive(Debug, Clone)]
pub struct SendRule {
    /// `None`: any hour.
    week: Option<Week>,
    holidays: Holidays,
    /// The Consumer Protection Act's rule (`"za-cpa"`), which is described in its own words.
    cpa: bool,
    /// The key it came from, e.g. `schedule.send_window`.
    source: String,
    /// The last answer of [`SendRule::closed_at`]: a pass asks about the same moment for every
    /// buyer-event it defers. Only a cache: the answer depends on nothing but the arguments.
    last_closed: std::sync::Arc<std::sync::Mutex<Option<LastClosed>>>,
}

/// The moment and zone [`SendRule::closed_at`] answered for last, and its answer.
type LastClosed = (DateTime<Utc>, Tz, Closed);

impl PartialEq for SendRule {
    fn eq(&self, other: &Self) -> bool {
        (&self.week, &self.holidays, self.cpa, &self.source)
            == (&other.week, &other.holidays, other.cpa, &other.source)
    }
}

impl Eq for SendRule {}

/// Why an email may not leave at a moment, and when it next may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The next allowed moment (`None`: not within a year and more).
    pub opens: Option<DateTime<Utc>>,
    /// Why not now, in the rule's words.
    pub reason: String,
}

impl SendRule {
    /// Emails at any hour of any day.
    pub fn any_hour(source: impl Into<String>) -> SendRule {
        SendRule {
            week: None,
            holidays: Holidays::none(),
            cpa: false,
            source: source.into(),
            last_closed: Default::default(),
        }
    }

    /// The rule a configured window gives. `holidays` are `schedule.holidays`; `"za-cpa"` adds
    /// South Africa's to them. `Unset` is the zone's default: `"za-cpa"` in Africa/Johannesburg,
    /// else `"08:00-20:00"`.
    pub fn new(
        window: &SendWindow,
        timezone: Tz,
        holidays: Holidays,
        source: impl Into<String>,
    ) -> SendRule {
        let source = source.into();
        let daily = |hours: &DayHours| {
            Week::every_day(hours.clone(), format!("{source} = \"{hours}\" (every day)"))
        };
        let (week, cpa) = match window {
            SendWindow::Unset if timezone == chrono_tz::Africa::Johannesburg => {
                (Some(Week::za_cpa()), true)
            }
            SendWindow::Unset => (
                Some(daily(&DayHours(vec![Range {
                    start: 8 * 3600,
                    end: 20 * 3600,
                }]))),
                false,
            ),
            SendWindow::AnyHour => (None, false),
            SendWindow::ZaCpa => (Some(Week::za_cpa()), true),
            SendWindow::Daily(hours) => (Some(daily(hours)), false),
            SendWindow::ByDay(_, week) => {
                let mut week = Week::clone(week);
                for w in week.written.iter_mut() {
                    if !w.is_empty() {
                        *w = format!("{source} {w}");
                    }
                }
                (Some(week), false)
            }
        };
        SendRule {
            holidays: if cpa { holidays.with_za() } else { holidays },
            week,
            cpa,
            source,
            last_closed: Default::default(),
        }
    }

    /// Whether this is the Consumer Protection Act's rule.
    pub fn is_za_cpa(&self) -> bool {
        self.cpa
    }

    /// Whether any hour is allowed.
    pub fn is_any_hour(&self) -> bool {
        self.week.is_none()
    }

    /// The public holidays in force.
    pub fn holidays(&self) -> &Holidays {
        &self.holidays
    }

    /// The hours that apply on a date: Sunday's on a public holiday.
    fn hours_on<'a>(&self, week: &'a Week, date: NaiveDate) -> &'a DayHours {
        if self.holidays.contains(date) {
            week.hours(chrono::Weekday::Sun)
        } else {
            week.hours(date.weekday())
        }
    }

    /// The range that allows a local time, and the date whose hours it belongs to (the day
    /// before, for the part of an overnight range after midnight).
    fn allowing(&self, week: &Week, local: NaiveDateTime) -> Option<(NaiveDate, Range)> {
        let date = local.date();
        let t = chrono::Timelike::num_seconds_from_midnight(&local.time());
        let today = self.hours_on(week, date).0.iter().find(|r| {
            if r.overnight() {
                t >= r.start
            } else {
                r.start <= t && t < r.end
            }
        });
        if let Some(r) = today {
            return Some((date, *r));
        }
        let yesterday = date.pred_opt()?;
        self.hours_on(week, yesterday)
            .0
            .iter()
            .find(|r| r.overnight() && t < r.end)
            .map(|r| (yesterday, *r))
    }

    /// Whether an email may leave at `at`.
    pub fn allows(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        match &self.week {
            None => true,
            Some(week) => self
                .allowing(week, at.with_timezone(&tz).naive_local())
                .is_some(),
        }
    }

    /// The first moment at or after `now` when an email may leave; `None` when the window does
    /// not open within [`LOOK_AHEAD_DAYS`]. Correct across midnight and daylight-saving changes:
    /// the answer is always allowed, and no earlier moment after `now` is.
    pub fn next_open(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let Some(week) = &self.week else {
            return Some(now);
        };
        if self.allows(now, tz) {
            return Some(now);
        }
        // The allowed moments begin where local time reaches a range's start, or where the
        // clock jumps (daylight saving) into a range: those are the only candidates.
        let today = now.with_timezone(&tz).date_naive();
        let mut best: Option<DateTime<Utc>> = None;
        let mut found_on: Option<i64> = None;
        for k in -1..=LOOK_AHEAD_DAYS {
            if found_on.is_some_and(|f| k > f + 1) {
                break;
            }
            let Some(date) = add_days(today, k) else {
                continue;
            };
            let mut candidates = Vec::new();
            for r in &self.hours_on(week, date).0 {
                candidates.extend(instants_at_or_after(tz, date.and_time(time_of(r.start))));
            }
            candidates.extend(instants_at_or_after(
                tz,
                date.and_time(chrono::NaiveTime::MIN),
            ));
            candidates.extend(clock_change(tz, date));
            for c in candidates {
                if c > now && self.allows(c, tz) && best.is_none_or(|b| c < b) {
                    best = Some(c);
                    found_on.get_or_insert(k);
                }
            }
        }
        best
    }

    /// `None` when an email may leave at `now`; else why not and when it next may.
    pub fn closed_at(&self, now: DateTime<Utc>, tz: Tz) -> Option<Closed> {
        if self.allows(now, tz) {
            return None;
        }
        if let Ok(last) = self.last_closed.lock()
            && let Some((at, zone, closed)) = last.as_ref()
            && *at == now
            && *zone == tz
        {
            return Some(closed.clone());
        }
        let closed = Closed {
            opens: self.next_open(now, tz),
            reason: self.closed_reason(now, tz),
        };
        if let Ok(mut last) = self.last_closed.lock() {
            *last = Some((now, tz, closed.clone()));
        }
        Some(closed)
    }

    /// Why an email may not leave at `at` (for `run-once` and the record), in the Act's words
    /// for `"za-cpa"`: "Sunday: no direct marketing on Sundays".
    pub fn closed_reason(&self, at: DateTime<Utc>, tz: Tz) -> String {
        let Some(week) = &self.week else {
            return String::new();
        };
        let local = at.with_timezone(&tz).naive_local();
        let date = local.date();
        let day = day_name(date.weekday());
        let time = local.format("%H:%M");
        if let Some(holiday) = self.holidays.name(date) {
            return if self.cpa {
                format!("{holiday} (public holiday): no direct marketing on public holidays")
            } else {
                format!(
                    "{holiday} (public holiday, Sunday's hours): outside the send window ({})",
                    written_or_never(week, chrono::Weekday::Sun, &self.source)
                )
            };
        }
        if self.cpa {
            return match date.weekday() {
                chrono::Weekday::Sun => "Sunday: no direct marketing on Sundays".into(),
                chrono::Weekday::Sat => {
                    format!("Saturday {time}: direct marketing on Saturdays only 09:00-13:00")
                }
                _ => format!("{day} {time}: direct marketing on weekdays only 08:00-20:00"),
            };
        }
        if week.hours(date.weekday()).is_never() {
            return format!(
                "{day}: no emails on {day}s ({})",
                written_or_never(week, date.weekday(), &self.source)
            );
        }
        format!(
            "{day} {time}: outside the send window ({})",
            written_or_never(week, date.weekday(), &self.source)
        )
    }

    /// The rule that allows an email at `at`, for the record: `za-cpa (Consumer Protection Act):
    /// Monday to Friday 08:00-20:00`, `schedule.send_window sat = "09:00-13:00"`. Empty when it
    /// is not allowed.
    pub fn allowed_by(&self, at: DateTime<Utc>, tz: Tz) -> String {
        let Some(week) = &self.week else {
            return format!("{} = \"\" (any hour)", self.source);
        };
        let local = at.with_timezone(&tz).naive_local();
        let Some((date, _)) = self.allowing(week, local) else {
            return String::new();
        };
        let holiday = self.holidays.name(date);
        let day = if holiday.is_some() {
            chrono::Weekday::Sun
        } else {
            date.weekday()
        };
        let rule = if self.cpa {
            format!("za-cpa (Consumer Protection Act): {}", week.written(day))
        } else {
            week.written(day).to_string()
        };
        match holiday {
            Some(name) => format!("{rule} ({name}: public holiday, Sunday's hours)"),
            None => rule,
        }
    }

    /// The rule in words, for `check` and `/admin`: "Monday to Friday 08:00-20:00 and Saturdays
    /// 09:00-13:00, never on Sundays or public holidays (South Africa's Consumer Protection Act)".
    pub fn describe(&self) -> String {
        let Some(week) = &self.week else {
            return "at any hour".into();
        };
        let listed: Vec<String> = self.holidays.listed().map(|d| d.to_string()).collect();
        if self.cpa {
            let mut text = "Monday to Friday 08:00-20:00 and Saturdays 09:00-13:00, never on Sundays or public holidays (South Africa's Consumer Protection Act)".to_string();
            if !listed.is_empty() {
                text.push_str(&format!("; also never on {}", listed.join(", ")));
            }
            return text;
        }
        let mut text = if week.days.iter().all(|d| *d == week.days[0]) {
            let ranges: Vec<String> = week.days[0]
                .0
                .iter()
                .map(|r| format!("between {} and {}", hhmm(r.start), hhmm(r.end)))
                .collect();
            format!("only {}, every day", ranges.join(" or "))
        } else {
            describe_week(week)
        };
        if !self.holidays.is_empty() {
            let sunday = week.hours(chrono::Weekday::Sun);
            if sunday.is_never() {
                text.push_str(&format!("; never on {}", self.holidays.describe()));
            } else {
                text.push_str(&format!(
                    "; on {} as on Sundays ({sunday})",
                    self.holidays.describe()
                ));
            }
        }
        text
    }
}

impl SendRule {
    /// A moment this rule allows and `limit` forbids, in words ("Sunday 10:00"), found by
    /// looking at every quarter hour of a reference fortnight (14 to 27 December 2026: every
    /// day of the week, and three public holidays); `None` when there is none.
    pub fn allows_beyond(&self, limit: &SendRule, tz: Tz) -> Option<String> {
        let first = NaiveDate::from_ymd_opt(2026, 12, 14)?.and_time(chrono::NaiveTime::MIN);
        (0..14 * 96)
            .map(|quarter| first + chrono::TimeDelta::minutes(15 * quarter))
            .flat_map(|local| instants_at_or_after(tz, local))
            .find(|t| self.allows(*t, tz) && !limit.allows(*t, tz))
            .map(|t| {
                let local = t.with_timezone(&tz).naive_local();
                let day = match limit.holidays.name(local.date()) {
                    Some(holiday) => format!("{holiday}, {}", local.date()),
                    None => day_name(local.date().weekday()).to_string(),
                };
                format!("{day} {}", local.format("%H:%M"))
            })
    }
}

/// "Monday to Friday 08:00-20:00, Saturday 09:00-13:00, never on Sunday".
fn describe_week(week: &Week) -> String {
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for i in 0..7 {
        match groups.last_mut() {
            Some((_, end)) if week.days[*end] == week.days[i] => *end = i,
            _ => groups.push((i, i)),
        }
    }
    let name = |(a, b): (usize, usize)| {
        if a == b {
            day_name(WEEK[a]).to_string()
        } else {
            format!("{} to {}", day_name(WEEK[a]), day_name(WEEK[b]))
        }
    };
    let open: Vec<String> = groups
        .iter()
        .filter(|(a, _)| !week.days[*a].is_never())
        .map(|g| format!("{} {}", name(*g), week.days[g.0]))
        .collect();
    let never: Vec<String> = groups
        .iter()
        .filter(|(a, _)| week.days[*a].is_never())
        .map(|g| name(*g))
        .collect();
    let mut text = open.join(", ");
    if !never.is_empty() {
        text.push_str(&format!(", never on {}", never.join(" or ")));
    }
    text
}

fn written_or_never(week: &Week, day: chrono::Weekday, source: &str) -> String {
    let written = week.written(day);
    if written.is_empty() {
        format!("{source}: {} is not listed, so never", day_name(day))
    } else {
        written.to_string()
    }
}

fn add_days(date: NaiveDate, k: i64) -> Option<NaiveDate> {
    if k >= 0 {
        date.checked_add_days(Days::new(k.unsigned_abs()))
    } else {
        date.checked_sub_days(Days::new(k.unsigned_abs()))
    }
}

fn time_of(seconds: u32) -> chrono::NaiveTime {
    chrono::NaiveTime::from_num_seconds_from_midnight_opt(seconds.min(DAY - 1), 0)
        .unwrap_or(chrono::NaiveTime::MIN)
}

/// The instants at which local time reaches `local`: one, two in an autumn overlap, or, when
/// `local` falls in a spring gap, the moment the clock jumps past it.
fn instants_at_or_after(tz: Tz, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
        LocalResult::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
        LocalResult::None => {
            // The first instant whose local reading is at or past `local`.
            let guess = local.and_utc();
            let reached = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local() >= local;
            let day = chrono::TimeDelta::hours(26);
            match (guess.checked_sub_signed(day), guess.checked_add_signed(day)) {
                (Some(low), Some(high)) => first_where(low, high, reached).into_iter().collect(),
                _ => Vec::new(),
            }
        }
    }
}

/// The moment of a daylight-saving change during `date`, if there is one.
fn clock_change(tz: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
    let start = *instants_at_or_after(tz, date.and_time(chrono::NaiveTime::MIN)).first()?;
    let end = start.checked_add_signed(chrono::TimeDelta::hours(25))?;
    let offset = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local() - t.naive_utc();
    let first = offset(start);
    if offset(end) == first {
        return None;
    }
    first_where(start, end, |t| offset(t) != first)
}

/// The first whole second in `[low, high]` where `test` holds, for a `test` false at `low` that,
/// once true, stays true up to `high`.
fn first_where(
    low: DateTime<Utc>,
    high: DateTime<Utc>,
    test: impl Fn(DateTime<Utc>) -> bool,
) -> Option<DateTime<Utc>> {
    let at = |s: i64| DateTime::<Utc>::from_timestamp(s, 0);
    let (mut low, mut high) = (low.timestamp(), high.timestamp());
    if !test(at(high)?) {
        return None;
    }
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if test(at(mid)?) {
            high = mid;
        } else {
            low = mid;
        }
    }
    at(high)
}

#[cfg(test)]
mod tests;
