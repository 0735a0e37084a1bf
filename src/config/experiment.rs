//! `[experiment]`: the control group and the link-scanner timing rules.

use super::*;

/// `[experiment]`: the control group that measures what the reminders really add, and the
/// timing rules that tell link scanners' clicks from people's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentConfig {
    /// This share of buyer-events (0% to 50%) is never emailed; see [`crate::experiment`].
    pub holdout: crate::experiment::Share,
    /// A click this soon after the email was sent is a link scanner's.
    #[serde(with = "humantime_serde")]
    pub scanner_after_delivery: Duration,
    /// Two different links of one email fetched this close together are a link scanner's.
    #[serde(with = "humantime_serde")]
    pub scanner_links_within: Duration,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        let timing = crate::scanner::Timing::default();
        Self {
            holdout: crate::experiment::Share::default(),
            scanner_after_delivery: timing.after_delivery.to_std().unwrap_or_default(),
            scanner_links_within: timing.together.to_std().unwrap_or_default(),
        }
    }
}

impl ExperimentConfig {
    /// The scanner rules' timing.
    pub fn scanner_timing(&self) -> crate::scanner::Timing {
        let delta = |d: Duration| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
        crate::scanner::Timing {
            after_delivery: delta(self.scanner_after_delivery),
            together: delta(self.scanner_links_within),
        }
    }
}
