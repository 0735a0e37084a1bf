//! The statistics of the control group, as pure functions: a purchase rate with its Wilson score
//! interval, and the lift (what the emailed group bought beyond what the held-out group's rate
//! predicts) with Newcombe's hybrid score interval for a difference of two proportions.
//!
//! Why not the textbook normal ("Wald") interval: with few purchases, or none, in a small group
//! it collapses to zero width or runs below 0 %, exactly where an organiser starts. Wilson's
//! interval stays inside 0-100 % and keeps its 95 % coverage at small counts; Newcombe (1998,
//! method 10) combines two of them for the difference.

use serde::Serialize;

/// The normal quantile for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// An interval of rates or amounts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Interval {
    /// Its width.
    pub fn width(&self) -> f64 {
        self.high - self.low
    }
}

/// The 95 % Wilson score interval of `successes` out of `n`; `None` for an empty group.
pub fn wilson(successes: u64, n: u64) -> Option<Interval> {
    if n == 0 {
        return None;
    }
    let (n, x) = (n as f64, successes.min(n) as f64);
    let p = x / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Interval {
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// The difference of two rates, `a - b`, with Newcombe's 95 % interval; `None` when a group is
/// empty.
pub fn rate_difference(a: (u64, u64), b: (u64, u64)) -> Option<(f64, Interval)> {
    let (wa, wb) = (wilson(a.0, a.1)?, wilson(b.0, b.1)?);
    let (pa, pb) = (
        a.0.min(a.1) as f64 / a.1 as f64,
        b.0.min(b.1) as f64 / b.1 as f64,
    );
    let d = pa - pb;
    let low = d - ((pa - wa.low).powi(2) + (wb.high - pb).powi(2)).sqrt();
    let high = d + ((wa.high - pa).powi(2) + (pb - wb.low).powi(2)).sqrt();
    Some((d, Interval { low, high }))
}

/// One group's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Buyer-events in the group.
    pub buyer_events: u64,
    /// Of which bought within the attribution window of their first step.
    pub purchases: u64,
    /// What those purchases paid, in cents.
    pub revenue_cents: i64,
}

/// What the reminders added, with its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lift {
    /// Purchase rate emailed minus held out.
    pub rate_difference: f64,
    /// Its interval.
    pub rate_interval: Interval,
    /// Purchases the emails added: the rate difference times the emailed buyer-events.
    pub purchases: f64,
    /// Its interval.
    pub purchases_interval: Interval,
    /// Revenue the emails added: the added purchases times the average purchase.
    pub revenue_cents: i64,
    /// Lower end, cents.
    pub low_cents: i64,
    /// Upper end, cents.
    pub high_cents: i64,
    /// Whether the interval says something: its margin (the larger distance from the estimate
    /// to an end) is smaller than the estimate itself, or it is narrow in absolute terms (under
    /// 5 percentage points wide: "no clear difference" is then an answer too).
    pub conclusive: bool,
}

/// The lift of `emailed` over `held_out`; `None` while either group is empty.
///
/// The added purchases are `(rate_emailed - rate_held_out) * emailed.buyer_events`, with
/// Newcombe's interval scaled the same way; the rand figure multiplies both by the average
/// purchase over both groups (a purchase is worth the same whichever group made it).
pub fn lift(emailed: &Group, held_out: &Group) -> Option<Lift> {
    let (d, interval) = rate_difference(
        (emailed.purchases, emailed.buyer_events),
        (held_out.purchases, held_out.buyer_events),
    )?;
    let n = emailed.buyer_events as f64;
    let purchases = emailed.purchases + held_out.purchases;
    let average = if purchases == 0 {
        0.0
    } else {
        (emailed.revenue_cents + held_out.revenue_cents) as f64 / purchases as f64
    };
    let cents = |rate: f64| (rate * n * average).round() as i64;
    let margin = (d - interval.low).max(interval.high - d);
    let conclusive = margin < d.abs() || interval.width() < 0.05;
    Some(Lift {
        rate_difference: d,
        rate_interval: interval,
        purchases: d * n,
        purchases_interval: Interval {
            low: interval.low * n,
            high: interval.high * n,
        },
        revenue_cents: cents(d),
        low_cents: cents(interval.low),
        high_cents: cents(interval.high),
        conclusive,
    })
}

/// Whether variant `a` is better than `b`: the interval of the difference of their purchase
/// rates lies wholly above zero.
pub fn better(a: (u64, u64), b: (u64, u64)) -> bool {
    rate_difference(a, b).is_some_and(|(_, i)| i.low > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn wilson_matches_the_hand_computed_interval() {
        // 56 of 70: p = 0.8; z^2 = 3.8415; centre = (0.8 + 3.8415/140) / (1 + 3.8415/70)
        // = 0.82744 / 1.05488 = 0.78440; half = 1.96/1.05488 * sqrt(0.16/70 + 3.8415/19600)
        // = 1.85800 * 0.04981 = 0.09256 -> 0.69183 to 0.87695.
        let i = wilson(56, 70).unwrap();
        assert!(close(i.low, 0.69183) && close(i.high, 0.87695), "{i:?}");
        // No purchase at all still gives an honest upper bound (Wald would say 0 to 0).
        let none = wilson(0, 20).unwrap();
        assert_eq!(none.low, 0.0);
        assert!(close(none.high, 0.16113), "{none:?}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn the_difference_matches_newcombes_published_examples() {
        // Newcombe (1998), Statistics in Medicine 17:873, table II, method 10:
        // 56/70 - 48/80 = 0.2000, 95% interval 0.0524 to 0.3339;
        // 9/10 - 3/10 = 0.6000, 0.1705 to 0.8090.
        let (d, i) = rate_difference((56, 70), (48, 80)).unwrap();
        assert!(close(d, 0.2));
        assert!(close(i.low, 0.05243) && close(i.high, 0.33387), "{i:?}");
        let (d, i) = rate_difference((9, 10), (3, 10)).unwrap();
        assert!(close(d, 0.6));
        assert!(close(i.low, 0.17052) && close(i.high, 0.80902), "{i:?}");
    }

    #[test]
    fn the_lift_in_purchases_and_rands_matches_a_hand_computed_example() {
        // 70 emailed, 56 bought for R350 each (R19,600); 80 held out, 48 bought (R16,800).
        // Difference 0.2 (0.05243 to 0.33387); added purchases 0.2 * 70 = 14 (3.67 to 23.37);
        // the average purchase is R350, so R4,900 (R1,284.50 to R8,179.80).
        let emailed = Group {
            buyer_events: 70,
            purchases: 56,
            revenue_cents: 56 * 35_000,
        };
        let held_out = Group {
            buyer_events: 80,
            purchases: 48,
            revenue_cents: 48 * 35_000,
        };
        let l = lift(&emailed, &held_out).unwrap();
        assert!(close(l.purchases, 14.0));
        assert!(close(l.purchases_interval.low, 3.67020), "{l:?}");
        assert!(close(l.purchases_interval.high, 23.37109), "{l:?}");
        assert_eq!(l.revenue_cents, 490_000);
        assert_eq!(l.low_cents, 128_457);
        assert_eq!(l.high_cents, 817_988);
        // The margin (0.2 - 0.05243 = 0.148) is smaller than the estimate.
        assert!(l.conclusive);
    }

    #[test]
    fn small_groups_are_not_conclusive() {
        // 30 of 200 against 4 of 50: 0.07 (-0.0466 to 0.1441): the margin (0.117) is larger
        // than the estimate, and the interval spans zero.
        let l = lift(
            &Group {
                buyer_events: 200,
                purchases: 30,
                revenue_cents: 30 * 10_000,
            },
            &Group {
                buyer_events: 50,
                purchases: 4,
                revenue_cents: 4 * 10_000,
            },
        )
        .unwrap();
        assert!(!l.conclusive);
        assert!(l.low_cents < 0 && l.high_cents > l.revenue_cents);
        assert_eq!(lift(&Group::default(), &Group::default()), None);
    }

    #[test]
    fn a_variant_is_better_only_when_the_interval_says_so() {
        assert!(better((56, 70), (48, 80)));
        assert!(!better((48, 80), (56, 70)));
        assert!(!better((30, 200), (4, 50)));
        assert!(!better((1, 1), (0, 0)));
    }
}
