//! The overview's honest part: the control group's sentence, both groups' cumulative purchase
//! rate since their first step (an SVG chart), and each step's variants with their figures.

use crate::present::{experiment_sentence, rands};
use crate::store::stats::{Experiment, Stats, StepFigures};

/// One group's row.
pub struct GroupRow {
    /// "Emailed" or "Held out (control group)".
    pub label: &'static str,
    /// Buyer-events.
    pub buyer_events: u64,
    /// Purchases within the attribution window.
    pub purchases: u64,
    /// Purchase rate, for people.
    pub rate: String,
    /// Revenue, for people.
    pub revenue: String,
}

/// A label on the chart.
pub struct Label {
    /// Position.
    pub x: f64,
    /// Position.
    pub y: f64,
    /// `start`, `middle` or `end`.
    pub anchor: &'static str,
    /// Text.
    pub text: String,
}

/// Both groups' cumulative purchase rate.
pub struct Curve {
    /// SVG width.
    pub width: u32,
    /// SVG height.
    pub height: u32,
    /// The x axis' y.
    pub base: f64,
    /// `x,y x,y ...` of the emailed group.
    pub emailed: String,
    /// `x,y x,y ...` of the held-out group.
    pub held_out: String,
    /// Axis labels.
    pub labels: Vec<Label>,
    /// The chart in words, for screen readers.
    pub summary: String,
}

/// One variant's row.
pub struct VariantRow {
    /// The template.
    pub template: String,
    /// Sent.
    pub sent: u64,
    /// People's clicks.
    pub clicked: u64,
    /// Purchases.
    pub purchases: u64,
    /// "12.0% (8.1% to 17.4%)".
    pub rate: String,
    /// Revenue.
    pub revenue: String,
    /// Better than the others by its interval.
    pub better: bool,
}

/// A step and its variants.
pub struct StepVariants {
    /// The step.
    pub step: String,
    /// Its templates' rows.
    pub rows: Vec<VariantRow>,
    /// What the table says, in words.
    pub verdict: String,
}

/// What the overview shows of the control group.
pub struct ExperimentView {
    /// The honest figure, or why there is none.
    pub sentence: String,
    /// Whether a control group exists (then the groups and the chart are shown).
    pub on: bool,
    /// Emailed and held out.
    pub groups: Vec<GroupRow>,
    /// The chart.
    pub curve: Curve,
    /// The steps, each with its variants.
    pub steps: Vec<StepVariants>,
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// The chart's size, its plot area's left edge, top and base line.
const WIDTH: u32 = 640;
const HEIGHT: u32 = 220;
const LEFT: f64 = 44.0;
const TOP: f64 = 10.0;
const BASE: f64 = 190.0;

fn curve(x: Option<&Experiment>) -> Curve {
    let (width, height) = (WIDTH, HEIGHT);
    let (left, top, base) = (LEFT, TOP, BASE);
    let points = x.map(|x| x.curve.as_slice()).unwrap_or_default();
    let hours = points.last().map_or(1.0, |p| p.hours.max(1.0));
    let top_rate = points
        .iter()
        .map(|p| p.emailed.max(p.held_out))
        .fold(0.0_f64, f64::max);
    // The y axis ends at the next 5 % above the highest rate.
    let y_max = ((top_rate * 20.0).ceil() / 20.0).max(0.05);
    let r = |v: f64| (v * 10.0).round() / 10.0;
    let at = |h: f64, rate: f64| {
        format!(
            "{},{}",
            r(left + h / hours * (f64::from(width) - left - 8.0)),
            r(base - rate / y_max * (base - top))
        )
    };
    let line = |pick: &dyn Fn(&crate::store::stats::CurvePoint) -> f64| {
        points
            .iter()
            .map(|p| at(p.hours, pick(p)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let labels = axis_labels(hours, y_max, |h| {
        r(left + h / hours * (f64::from(width) - left - 8.0))
    });
    let end = points.last().filter(|p| p.hours > 0.0);
    Curve {
        width,
        height,
        base,
        emailed: line(&|p| p.emailed),
        held_out: line(&|p| p.held_out),
        labels,
        summary: match end {
            Some(p) => format!(
                "After {}, {} of the emailed buyers and {} of the held-out buyers had bought \
                 (counting only buyers whose first step is that old; the curve stops at the \
                 oldest, since nothing later is known yet)",
                span_words(p.hours),
                percent(p.emailed),
                percent(p.held_out)
            ),
            None if points.is_empty() => "No buyers in the control group yet".into(),
            None => "Too soon for a curve: the first steps fell due only now".into(),
        },
    }
}

/// A span of hours in words: "5 hours", "2.5 days".
fn span_words(hours: f64) -> String {
    if hours < 1.0 {
        let m = (hours * 60.0).round().max(1.0);
        format!("{m} minute{}", if m == 1.0 { "" } else { "s" })
    } else if hours < 48.0 {
        let h = hours.round().max(1.0);
        format!("{h} hour{}", if h == 1.0 { "" } else { "s" })
    } else {
        let d = (hours / 24.0 * 10.0).round() / 10.0;
        format!("{d} days")
    }
}

/// The y axis's 0% and top rate; the x axis's first step and each day after it, or each few
/// hours when the data is younger than two days (`x` places an hour after the first step).
fn axis_labels(hours: f64, y_max: f64, x: impl Fn(f64) -> f64) -> Vec<Label> {
    let (left, top, base, height) = (LEFT, TOP, BASE, f64::from(HEIGHT));
    let mut labels = vec![
        Label {
            x: left - 4.0,
            y: base,
            anchor: "end",
            text: "0%".into(),
        },
        Label {
            x: left - 4.0,
            y: top + 10.0,
            anchor: "end",
            text: format!("{:.0}%", y_max * 100.0),
        },
    ];
    // Ticks at whole days, or at 6, 12 ... hours while the data is younger than two days; no
    // tick past the data's age.
    let step = if hours >= 48.0 {
        24.0
    } else {
        6.0_f64.min(hours)
    };
    let mut h = 0.0;
    while h <= hours + 1e-9 {
        // A label at the right edge ends there, so that it is not cut.
        let last = h > hours * 0.92;
        labels.push(Label {
            x: x(h),
            y: height - 4.0,
            anchor: if h == 0.0 {
                "start"
            } else if last {
                "end"
            } else {
                "middle"
            },
            text: if h == 0.0 {
                "first step".into()
            } else if hours < 1.0 {
                format!("+{}m", (h * 60.0).round())
            } else if step >= 24.0 {
                format!("+{}d", (h / 24.0).round())
            } else {
                format!("+{}h", h.round())
            },
        });
        if step <= 0.0 {
            break;
        }
        h += step;
    }
    labels
}

fn variants(steps: &[StepFigures]) -> Vec<StepVariants> {
    let mut out: Vec<StepVariants> = Vec::new();
    for f in steps {
        let row = VariantRow {
            template: f.template.clone(),
            sent: f.sent,
            clicked: f.clicked,
            purchases: f.purchases,
            rate: format!(
                "{} ({} to {})",
                percent(f.rate),
                percent(f.rate_low),
                percent(f.rate_high)
            ),
            revenue: rands(f.revenue_cents),
            better: f.better,
        };
        match out.last_mut() {
            Some(last) if last.step == f.step => last.rows.push(row),
            _ => out.push(StepVariants {
                step: f.step.clone(),
                rows: vec![row],
                verdict: String::new(),
            }),
        }
    }
    for s in out.iter_mut() {
        s.verdict = if s.rows.len() < 2 {
            String::new()
        } else if let Some(best) = s.rows.iter().find(|r| r.better) {
            format!(
                "{} does better: its interval lies above the others'",
                best.template
            )
        } else {
            "No email of this step does better yet: their intervals overlap.".into()
        };
    }
    out
}

/// The overview's control-group part.
pub fn view(stats: &Stats) -> ExperimentView {
    let x = stats.experiment.as_ref();
    let groups = x
        .map(|x| {
            [
                ("Emailed", &x.emailed),
                ("Held out (control group)", &x.held_out),
            ]
            .into_iter()
            .map(|(label, g)| GroupRow {
                label,
                buyer_events: g.buyer_events,
                purchases: g.purchases,
                rate: if g.buyer_events == 0 {
                    "-".into()
                } else {
                    percent(g.purchases as f64 / g.buyer_events as f64)
                },
                revenue: rands(g.revenue_cents),
            })
            .collect()
        })
        .unwrap_or_default();
    ExperimentView {
        sentence: experiment_sentence(x),
        on: x.is_some(),
        groups,
        curve: curve(x),
        steps: variants(&stats.steps),
    }
}
