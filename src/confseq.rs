//! Intervals that stay true however often they are looked at: anytime-valid 95 % confidence
//! sequences for the difference between two randomised groups (two timing arms, two template
//! variants, or a group and the control group).
//!
//! Why not the Newcombe interval of [`crate::lift`]: it is right for one look at a sample fixed in
//! advance. An organiser looks every morning; at each look a 95 % interval has a 5 % chance of
//! missing, and over fifty looks the chance that one of them excludes zero by chance alone is far
//! above 5 %: a "winner" that chance produced. A confidence sequence holds at every look at once:
//! the chance that it *ever* misses the true difference, however often it is read, is at most 5 %.
//!
//! Method: the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas
//! ("Time-uniform central limit theory and asymptotic confidence sequences", Annals of Statistics,
//! 2024; arXiv:2103.06476), Theorem 2.2, applied to the inverse-probability-weighted outcome of a
//! randomised experiment (their section on sequential experiments): each buyer-event contributes
//! `y / p_a` if it is in group a, `-y / p_b` if in group b, and 0 otherwise, where `p` is the share
//! the assignment gives each group. Those contributions are independent with mean `mean_a - mean_b`
//! whatever the outcome's distribution, so a running mean with a time-uniform boundary (Robbins'
//! normal mixture, scaled by the running standard deviation) covers the difference at every look.
//! Every figure it needs is a count or a sum, so it is computed from what the store already adds up.

use serde::Serialize;

use crate::lift::Interval;

/// The method's name, as reports and `stats --format json` give it.
pub const METHOD: &str = "asymptotic confidence sequence (Waudby-Smith et al. 2024), 95%";

/// The error rate over every look: 5 %.
const ALPHA: f64 = 0.05;

/// The number of buyer-events at which the sequence is tuned to be narrowest. The width changes
/// little over a wide range around it; chosen, not fitted, so that the data cannot move it.
const TUNED_FOR: f64 = 1000.0;

/// The buyer-events each group needs before the sequence says anything.
const MIN_EACH: u64 = 50;

/// What one group has seen so far: its size and the sum and sum of squares of its outcome (1 or 0
/// for "bought", or the revenue in cents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Tally {
    /// Buyer-events in the group.
    pub n: u64,
    /// Sum of the outcome.
    pub sum: f64,
    /// Sum of the outcome's squares.
    pub sum_sq: f64,
}

impl Tally {
    /// A tally of a yes/no outcome: `yes` of `n`.
    pub fn proportion(yes: u64, n: u64) -> Tally {
        let yes = yes.min(n) as f64;
        Tally {
            n,
            sum: yes,
            sum_sq: yes,
        }
    }

    /// Adds one buyer-event with outcome `y`.
    pub fn push(&mut self, y: f64) {
        self.n += 1;
        self.sum += y;
        self.sum_sq += y * y;
    }

    /// The group's mean outcome, if it has any buyer-event.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// The difference `mean_a - mean_b` with its confidence sequence at this look.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Difference {
    /// The difference of the two groups' observed means.
    pub estimate: f64,
    /// The 95 % confidence sequence at this look.
    pub interval: Interval,
}

impl Difference {
    /// Whether the sequence has ruled out "no difference": a winner, stated once and for all.
    pub fn decided(&self) -> bool {
        self.interval.low > 0.0 || self.interval.high < 0.0
    }
}

/// The difference between group `a` and group `b`, whose buyer-events were assigned with shares
/// `share_a` and `share_b` (of every buyer-event counted in `total`, which includes any other group
/// of the same assignment: other arms, or the control group). `None` until each group has
/// 50 buyer-events and someone in either has bought (before that the spread is unknown, and an
/// interval would claim more than is known), or when the shares are not shares.
pub fn difference(
    a: &Tally,
    b: &Tally,
    share_a: f64,
    share_b: f64,
    total: u64,
) -> Option<Difference> {
    let valid = |p: f64| p > 0.0 && p < 1.0;
    if a.n < MIN_EACH || b.n < MIN_EACH || !valid(share_a) || !valid(share_b) {
        return None;
    }
    if a.sum == 0.0 && b.sum == 0.0 {
        // No outcome yet: nothing is known of the spread, so nothing can be said.
        return None;
    }
    let t = total.max(a.n + b.n) as f64;
    // The weighted contributions' mean and mean square.
    let mean = (a.sum / share_a - b.sum / share_b) / t;
    let mean_sq = (a.sum_sq / (share_a * share_a) + b.sum_sq / (share_b * share_b)) / t;
    let sd = (mean_sq - mean * mean).max(0.0).sqrt();
    let half = sd * half_width_per_sd(t);
    let estimate = a.mean()? - b.mean()?;
    Some(Difference {
        estimate,
        interval: Interval {
            low: mean - half,
            high: mean + half,
        },
    })
}

/// The boundary of Theorem 2.2 for standardised outcomes after `t` of them:
/// `sqrt(2 (t r^2 + 1) / (t^2 r^2) * ln(sqrt(t r^2 + 1) / alpha))`, with `r` tuned for
/// [`TUNED_FOR`] as the paper suggests.
fn half_width_per_sd(t: f64) -> f64 {
    let l = -2.0 * ALPHA.ln();
    let r2 = (l + (l + 1.0).ln()) / TUNED_FOR;
    let v = t * r2 + 1.0;
    (2.0 * v / (t * t * r2) * (v.sqrt() / ALPHA).ln()).sqrt()
}

/// How many buyer-events (of both groups together, split by `share_a` and `share_b`) it takes
/// before a true difference of `gap` between purchase rates near `rate` would be declared, at the
/// usual pace of the sequence; `None` if no number below a hundred million would do.
pub fn buyer_events_to_show(gap: f64, rate: f64, share_a: f64, share_b: f64) -> Option<u64> {
    if !(gap > 0.0 && (0.0..=1.0).contains(&rate) && share_a > 0.0 && share_b > 0.0) {
        return None;
    }
    let rate = rate.max(0.01);
    // The standard deviation of one contribution when the groups' rates sit either side of `rate`.
    let sd = (rate * (1.0 / share_a + 1.0 / share_b) * (share_a + share_b)).sqrt();
    let (mut low, mut high) = (1u64, 100_000_000u64);
    if sd * half_width_per_sd(high as f64) >= gap {
        return None;
    }
    while low < high {
        let mid = low + (high - low) / 2;
        if sd * half_width_per_sd(mid as f64) < gap {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    Some(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: a small, seeded generator (the simulations draw millions of numbers, and the
    /// test build does not optimise `rand`).
    struct StdRng(u64);

    impl StdRng {
        fn seed_from_u64(seed: u64) -> StdRng {
            StdRng(seed)
        }

        fn random_bool(&mut self, p: f64) -> bool {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 11) as f64 / (1u64 << 53) as f64) < p
        }
    }

    /// One simulated experiment of `n` buyer-events split evenly, both groups buying at `rate_a`
    /// and `rate_b`, looked at after every buyer-event: whether any look declared a winner, and
    /// whether any look's interval missed the true difference.
    fn run(rng: &mut StdRng, n: usize, rate_a: f64, rate_b: f64) -> (bool, bool) {
        let (mut a, mut b) = (Tally::default(), Tally::default());
        let (mut declared, mut missed) = (false, false);
        let truth = rate_a - rate_b;
        for i in 1..=n {
            let in_a = rng.random_bool(0.5);
            let bought = rng.random_bool(if in_a { rate_a } else { rate_b });
            let y = if bought { 1.0 } else { 0.0 };
            if in_a {
                a.push(y)
            } else {
                b.push(y)
            }
            if let Some(d) = difference(&a, &b, 0.5, 0.5, i as u64) {
                declared |= d.decided();
                missed |= d.interval.low > truth || d.interval.high < truth;
            }
        }
        (declared, missed)
    }

    #[test]
    fn looked_at_after_every_buyer_event_no_difference_declares_a_winner_at_most_5_percent_of_the_time()
     {
        // 2,000 experiments of 2,000 buyer-events each, no true difference, a look after every
        // buyer-event (4 million looks).
        let mut rng = StdRng::seed_from_u64(20261207);
        let runs = 2000;
        let mut declared = 0;
        for _ in 0..runs {
            declared += usize::from(run(&mut rng, 2000, 0.1, 0.1).0);
        }
        let share = declared as f64 / runs as f64;
        eprintln!(
            "no true difference: {declared} of {runs} experiments ever declared a winner ({:.2} %)",
            share * 100.0
        );
        assert!(share <= 0.05, "{share}");
    }

    #[test]
    fn a_fixed_sample_interval_looked_at_daily_would_declare_false_winners() {
        // The reason for all this: the same looks with a one-look 95 % interval (Newcombe) declare
        // a winner that chance produced far more often than 5 %.
        let mut rng = StdRng::seed_from_u64(7);
        let runs = 400;
        let mut declared = 0;
        for _ in 0..runs {
            let (mut a, mut b) = ((0u64, 0u64), (0u64, 0u64));
            let mut any = false;
            for i in 1..=2000 {
                let g = if rng.random_bool(0.5) { &mut a } else { &mut b };
                g.1 += 1;
                g.0 += u64::from(rng.random_bool(0.1));
                if i % 20 == 0
                    && let Some((_, ci)) = crate::lift::rate_difference(a, b)
                {
                    any |= ci.low > 0.0 || ci.high < 0.0;
                }
            }
            declared += usize::from(any);
        }
        assert!(declared as f64 / runs as f64 > 0.10, "{declared} of {runs}");
    }

    #[test]
    fn a_true_difference_of_10_points_with_3000_buyer_events_a_group_is_found_in_most_runs() {
        let mut rng = StdRng::seed_from_u64(11);
        let runs = 200;
        let mut declared = 0;
        let mut missed = 0;
        for _ in 0..runs {
            let (d, m) = run(&mut rng, 6000, 0.30, 0.20);
            declared += usize::from(d);
            missed += usize::from(m);
        }
        eprintln!("10 points apart: {declared} of {runs} declared; {missed} ever missed the truth");
        assert!(declared as f64 / runs as f64 >= 0.9, "{declared}");
        assert!(missed as f64 / runs as f64 <= 0.05, "{missed}");
    }

    #[test]
    fn low_and_high_purchase_rates_keep_the_truth_inside_at_every_look() {
        // Abandoned checkouts buy back at a few percent; the sequence must hold there too, and
        // where groups differ, not only where they are alike.
        let mut rng = StdRng::seed_from_u64(3);
        for (rate_a, rate_b) in [
            (0.01, 0.01),
            (0.03, 0.03),
            (0.3, 0.3),
            (0.06, 0.03),
            (0.02, 0.01),
        ] {
            let runs = 300;
            let missed: usize = (0..runs)
                .map(|_| usize::from(run(&mut rng, 3000, rate_a, rate_b).1))
                .sum();
            eprintln!(
                "{rate_a} against {rate_b}: {missed} of {runs} experiments ever missed the truth"
            );
            assert!(
                missed as f64 / runs as f64 <= 0.05,
                "{rate_a} {rate_b}: {missed}"
            );
        }
    }

    #[test]
    fn revenue_is_covered_like_rates() {
        // Outcomes in cents: most zero, some a ticket price; the same difference machinery.
        let mut a = Tally::default();
        let mut b = Tally::default();
        for i in 0..400 {
            a.push(if i % 5 == 0 { 35_000.0 } else { 0.0 });
            b.push(if i % 10 == 0 { 35_000.0 } else { 0.0 });
        }
        let d = difference(&a, &b, 0.5, 0.5, 800).unwrap();
        assert!((d.estimate - 3_500.0).abs() < 1e-6, "{d:?}");
        assert!(d.interval.low < d.estimate && d.estimate < d.interval.high);
        assert!(d.decided(), "{d:?}");
    }

    #[test]
    fn nothing_to_say_before_each_group_has_50_buyer_events_and_someone_bought() {
        let a = Tally::proportion(3, 50);
        assert_eq!(
            difference(&a, &Tally::proportion(3, 49), 0.5, 0.5, 99),
            None
        );
        assert_eq!(difference(&a, &Tally::default(), 0.5, 0.5, 50), None);
        assert_eq!(difference(&a, &a, 0.0, 0.5, 100), None);
        let none = Tally::proportion(0, 50);
        assert_eq!(difference(&none, &none, 0.5, 0.5, 100), None);
        let d = difference(&a, &a, 0.5, 0.5, 100).unwrap();
        assert!(!d.decided());
    }

    #[test]
    fn the_interval_narrows_as_buyer_events_add_up() {
        let w = |n: f64| half_width_per_sd(n);
        assert!(w(100.0) > w(1000.0) && w(1000.0) > w(10_000.0));
        // At the tuned size the boundary is about 1.5 times the one-look 1.96: the price of looking
        // as often as one likes.
        let ratio = w(TUNED_FOR) * TUNED_FOR.sqrt() / crate::lift::Z95;
        assert!((1.3..1.8).contains(&ratio), "{ratio}");
    }

    #[test]
    fn the_time_to_show_a_gap_grows_as_the_gap_shrinks() {
        let five = buyer_events_to_show(0.05, 0.1, 0.5, 0.5).unwrap();
        let ten = buyer_events_to_show(0.10, 0.1, 0.5, 0.5).unwrap();
        assert!(five > 3 * ten, "{five} {ten}");
        assert!((1_000..20_000).contains(&five), "{five}");
        assert_eq!(buyer_events_to_show(0.0, 0.1, 0.5, 0.5), None);
    }
}
