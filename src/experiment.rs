//! The control group and the A/B variants: which buyer-events are held out, and which variant of
//! a step each one gets. Both are decided by a keyed hash (HMAC-SHA256 under the link secret) of
//! the address key and the event, so the choice is the same on every pass, after a restart and a
//! reload, needs no stored coin flip, and cannot be predicted by anyone without the secret.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Hundredths of a percent in 100 %.
const WHOLE: u32 = 10_000;
/// The largest holdout share: beyond half, more buyers would go without the reminder than get it.
const MAX_SHARE: u32 = WHOLE / 2;

/// A share of buyer-events, `"0%"` to `"50%"` (kept in hundredths of a percent: `"12.5%"` works).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Share(u32);

impl Share {
    /// Parses `"10%"`, `"12.5%"` or `"0%"` (`"0"` too).
    pub fn parse(text: &str) -> Result<Share, String> {
        let t = text.trim();
        let number = t.strip_suffix('%').unwrap_or(t).trim();
        if number != "0" && !t.ends_with('%') {
            return Err(format!("{text:?} must be a percentage such as \"10%\""));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a percentage such as \"10%\""))?;
        if !(0.0..=50.0).contains(&value) {
            return Err(format!(
                "{text:?} is outside 0% to 50% (a larger control group would leave most buyers unreminded)"
            ));
        }
        let hundredths = (value * 100.0).round() as u32;
        Ok(Share(hundredths.min(MAX_SHARE)))
    }

    /// The share in hundredths of a percent (what the database keeps).
    pub fn hundredths(self) -> u32 {
        self.0
    }

    /// The share from hundredths of a percent.
    pub fn from_hundredths(hundredths: u32) -> Share {
        Share(hundredths.min(MAX_SHARE))
    }

    /// The share as a fraction (0.1 for 10 %).
    pub fn fraction(self) -> f64 {
        f64::from(self.0) / f64::from(WHOLE)
    }

    /// Whether nobody is held out.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_multiple_of(100) {
            write!(f, "{}%", self.0 / 100)
        } else {
            write!(f, "{}%", f64::from(self.0) / 100.0)
        }
    }
}

impl Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Share::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Decides groups and variants from the link secret.
#[derive(Clone)]
pub struct Assigner {
    /// The HMAC already keyed with the secret: a pass asks once per buyer-event, and keying it
    /// each time cost more than the hash itself.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for Assigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Assigner { .. }")
    }
}

impl Assigner {
    /// An assigner keyed by `secret` (the link secret kept in the database).
    pub fn new(secret: &str) -> Assigner {
        Assigner {
            keyed: <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        }
    }

    /// A uniform 64-bit number for `purpose` and the parts (each part ends with a newline, so
    /// that no two different lists hash alike).
    fn number(&self, purpose: &str, parts: &[&str]) -> u64 {
        let mut mac = self.keyed.clone();
        mac.update(purpose.as_bytes());
        mac.update(b"\n");
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        let bytes = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        u64::from_be_bytes(first)
    }

    /// Whether the buyer-event falls in the control group of `share`. A larger share holds out
    /// every buyer-event a smaller one does, and more.
    pub fn held_out(&self, email_key: &str, event_id: &str, share: Share) -> bool {
        // Nobody is held out of a zero share, whatever the hash (most installs: no hash per buyer).
        if share.is_zero() {
            return false;
        }
        let n = self.number("holdout", &[email_key, event_id]);
        (n % u64::from(WHOLE)) < u64::from(share.0)
    }

    /// Which of `count` variants of `step` the buyer-event gets (0 when there is one or none).
    pub fn variant(&self, email_key: &str, event_id: &str, step: &str, count: usize) -> usize {
        if count <= 1 {
            return 0;
        }
        let n = self.number("variant", &[email_key, event_id, step]);
        (n % count as u64) as usize
    }

    /// Which of the `count` delays of `step`'s timing experiment `arms` (its delays as text) the
    /// buyer-event gets: a hash of its own, so the arm tells nothing of the variant or the control
    /// group; a new list of delays is a new draw.
    pub fn timing_arm(
        &self,
        email_key: &str,
        event_id: &str,
        step: &str,
        arms: &str,
        count: usize,
    ) -> usize {
        if count <= 1 {
            return 0;
        }
        let n = self.number("timing", &[email_key, event_id, step, arms]);
        (n % count as u64) as usize
    }
}

/// The reason recorded for a step not sent because its buyer-event is in the control group.
pub const HELD_OUT: &str = "held out";

/// What the organiser reads wherever a buyer-event of the control group appears: it is never
/// emailed, and that is deliberate (not a step waiting, nor an email that went out).
pub const CONTROL_GROUP: &str = "in the control group: never emailed, on purpose";

/// The reason a pass gives for a buyer-event of the control group: "held out" (what scripts look
/// for) with what it means.
pub fn held_out_reason() -> String {
    format!("{HELD_OUT}: {CONTROL_GROUP}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_parse_as_percentages_up_to_half() {
        assert_eq!(Share::parse("10%").unwrap().hundredths(), 1000);
        assert_eq!(Share::parse(" 12.5 % ").unwrap().hundredths(), 1250);
        assert_eq!(Share::parse("0").unwrap(), Share::default());
        assert_eq!(Share::parse("50%").unwrap().to_string(), "50%");
        assert_eq!(Share::parse("12.5%").unwrap().to_string(), "12.5%");
        for bad in ["51%", "-1%", "10", "ten%", "", "%"] {
            assert!(Share::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_group_is_stable_keyed_and_close_to_the_share() {
        let a = Assigner::new("secret");
        let share = Share::parse("20%").unwrap();
        let held: Vec<bool> = (0..5000)
            .map(|i| a.held_out(&format!("b{i}@mail.co.za"), "456", share))
            .collect();
        let again: Vec<bool> = (0..5000)
            .map(|i| a.held_out(&format!("b{i}@mail.co.za"), "456", share))
            .collect();
        assert_eq!(held, again, "the same answer every time");
        let n = held.iter().filter(|h| **h).count();
        // Binomial(5000, 0.2): mean 1000, sd 28; 5 sd either way.
        assert!((860..=1140).contains(&n), "{n}");
        // Another secret gives another split.
        let b = Assigner::new("other");
        let other: Vec<bool> = (0..5000)
            .map(|i| b.held_out(&format!("b{i}@mail.co.za"), "456", share))
            .collect();
        assert_ne!(held, other);
        // Growing the share keeps everyone held out before held out.
        let bigger = Share::parse("30%").unwrap();
        for (i, h) in held.iter().enumerate() {
            if *h {
                assert!(a.held_out(&format!("b{i}@mail.co.za"), "456", bigger));
            }
        }
        assert!(!a.held_out("x@mail.co.za", "1", Share::default()));
    }

    #[test]
    fn the_keyed_hash_is_the_hmac_of_the_secret_as_before() {
        // Keyed once and cloned per buyer-event: the same numbers as keying every time, so no
        // buyer-event changes group or variant.
        let a = Assigner::new("secret");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret").unwrap();
        mac.update(b"holdout\nb1@mail.co.za\n456\n");
        let bytes = mac.finalize().into_bytes();
        let want = u64::from_be_bytes(bytes[..8].try_into().unwrap());
        assert_eq!(a.number("holdout", &["b1@mail.co.za", "456"]), want);
        assert_eq!(a.number("holdout", &["b1@mail.co.za", "456"]), want);
    }

    #[test]
    fn variants_are_split_evenly() {
        let a = Assigner::new("secret");
        let mut counts = [0usize; 3];
        for i in 0..3000 {
            counts[a.variant(&format!("b{i}@mail.co.za"), "456", "abandoned-1", 3)] += 1;
        }
        // Each 1000 expected, sd 26.
        assert!(
            counts.iter().all(|c| (870..=1130).contains(c)),
            "{counts:?}"
        );
        assert_eq!(a.variant("x", "1", "s", 1), 0);
    }
}
