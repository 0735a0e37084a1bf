//! The overview's daily chart: reminders sent (bars) and purchases recovered (dots), as SVG
//! geometry for the page to draw.

use crate::store::stats::Stats;

/// One day's reminders sent.
pub(super) struct ChartBar {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) w: f64,
    pub(super) h: f64,
    pub(super) title: String,
}

/// One day's purchases recovered.
pub(super) struct ChartDot {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) title: String,
}

/// A date under the bars.
pub(super) struct ChartLabel {
    pub(super) x: f64,
    pub(super) anchor: &'static str,
    pub(super) text: String,
}

/// The whole chart.
pub(super) struct Chart {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) base: f64,
    pub(super) max: i64,
    pub(super) bars: Vec<ChartBar>,
    pub(super) dots: Vec<ChartDot>,
    pub(super) labels: Vec<ChartLabel>,
}

/// The chart of `stats.daily`.
pub(super) fn chart(stats: &Stats) -> Chart {
    let (width, height, left, base) = (640u32, 180u32, 30.0, 160.0);
    let max = stats
        .daily
        .iter()
        .map(|d| d.sent.max(d.recovered))
        .max()
        .unwrap_or(0)
        .max(1);
    let step = (f64::from(width) - left) / stats.daily.len().max(1) as f64;
    let scale = |n: i64| (base - 10.0) * n as f64 / max as f64;
    // One decimal is plenty for an SVG this size and keeps the page small.
    let r = |v: f64| (v * 10.0).round() / 10.0;
    let mut chart = Chart {
        width,
        height,
        base,
        max,
        bars: Vec::new(),
        dots: Vec::new(),
        labels: Vec::new(),
    };
    for (i, day) in stats.daily.iter().enumerate() {
        let x = left + i as f64 * step;
        let h = scale(day.sent);
        chart.bars.push(ChartBar {
            x: r(x + step * 0.15),
            y: r(base - h),
            w: r(step * 0.7),
            h: r(h),
            title: format!("{}: {} sent", day.date, day.sent),
        });
        if day.recovered > 0 {
            chart.dots.push(ChartDot {
                x: r(x + step / 2.0),
                y: r(base - scale(day.recovered)),
                title: format!("{}: {} recovered", day.date, day.recovered),
            });
        }
        let last = i + 1 == stats.daily.len();
        // Weekly labels, and today's; a weekly one too close to today's would overlap it.
        if last || (i % 7 == 0 && stats.daily.len() - i > 4) {
            let text = chrono::NaiveDate::parse_from_str(&day.date, "%Y-%m-%d")
                .map(|d| d.format("%-d %b").to_string())
                .unwrap_or_else(|_| day.date.clone());
            // Today's label ends at the right edge instead of running past it.
            let (x, anchor) = if last {
                (f64::from(width), "end")
            } else {
                (r(x + step / 2.0), "middle")
            };
            chart.labels.push(ChartLabel { x, anchor, text });
        }
    }
    chart
}
