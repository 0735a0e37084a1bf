//! Reading an amount as Quicket or an organiser writes it: `350`, `"350.00"`, `"350,00"`,
//! `"R 1 250,50"`, `"1,250.00"`. An amount that could be read two ways is not guessed.

use serde::{Deserialize, Serialize};

/// An amount of money in cents (Quicket sends rands with cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cents(pub i64);

impl Cents {
    /// Parses an amount as [`parse_amount`] does; `None` when it is unreadable or ambiguous.
    pub fn parse_decimal(text: &str) -> Option<Self> {
        parse_amount(text).ok()
    }

    /// The amount in rands, for JSON output.
    pub fn to_rands(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// The amount as a plain decimal, `150.00`.
    pub fn to_decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// Why an amount could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a number at all (`"lots"`, `"-5"`, `"1e3"`).
    #[error("is not an amount")]
    Unreadable,
    /// A number that could mean two amounts (`"1,5"`, `"1.250,5"`): recorded as unknown.
    #[error("could be read as more than one amount, so it is recorded as unknown")]
    Ambiguous,
}

/// Parses an amount of rands. Spaces (also non-breaking and thin ones) and, where they group
/// digits in threes, commas or dots separate thousands; the decimal separator is a dot, or a comma
/// followed by exactly two digits at the end. `R`, `ZAR` and a trailing `ZAR` are allowed.
pub fn parse_amount(text: &str) -> Result<Cents, AmountError> {
    let text = text.trim();
    let text = text
        .strip_prefix("ZAR")
        .or_else(|| text.strip_prefix('R'))
        .or_else(|| text.strip_suffix("ZAR"))
        .unwrap_or(text);
    // Spaces group thousands ("1 250,50"); Unicode spaces too (NBSP, thin space, narrow NBSP).
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '\u{202f}' | '\u{2009}' | '\u{a0}'))
        .collect();
    if compact.is_empty()
        || !compact
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '.')
    {
        return Err(AmountError::Unreadable);
    }
    let commas = compact.matches(',').count();
    let dots = compact.matches('.').count();
    let last_comma = compact.rfind(',');
    let last_dot = compact.rfind('.');
    // Which character (if any) is the decimal separator, and which groups thousands.
    let (whole, frac, grouping) = match (last_comma, last_dot) {
        (None, None) => (compact.as_str(), "", None),
        // Only dots: one dot is a decimal point ("350.5"); several group thousands ("1.250.000").
        (None, Some(d)) => {
            if dots == 1 {
                (&compact[..d], &compact[d + 1..], None)
            } else {
                (compact.as_str(), "", Some('.'))
            }
        }
        // Only commas: ",dd" at the end is a decimal comma ("350,00", "1,250,50"); otherwise the
        // commas group thousands ("1,250"), and anything else ("1,5", "12,3456") is ambiguous.
        (Some(c), None) => {
            let after = &compact[c + 1..];
            if after.len() == 2 {
                (&compact[..c], after, Some(','))
            } else if after.len() == 3 {
                (compact.as_str(), "", Some(','))
            } else {
                return Err(AmountError::Ambiguous);
            }
        }
        // Both: the later one is the decimal separator ("1,250.00", "1.250,00").
        (Some(c), Some(d)) if d > c => {
            if dots > 1 {
                return Err(AmountError::Ambiguous);
            }
            (&compact[..d], &compact[d + 1..], Some(','))
        }
        (Some(c), Some(_)) => {
            if commas > 1 || compact.len() - c - 1 != 2 {
                return Err(AmountError::Ambiguous);
            }
            (&compact[..c], &compact[c + 1..], Some('.'))
        }
    };
    let whole = ungroup(whole, grouping)?;
    if whole.is_empty() && frac.is_empty() {
        return Err(AmountError::Unreadable);
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(AmountError::Unreadable);
    }
    let rands: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| AmountError::Unreadable)?
    };
    // Round half up on the third decimal; amounts are never finer than cents in practice.
    let mut digits = frac.chars().map(|c| i64::from(c as u8 - b'0'));
    let tens = digits.next().unwrap_or(0);
    let ones = digits.next().unwrap_or(0);
    let round = i64::from(digits.next().unwrap_or(0) >= 5);
    rands
        .checked_mul(100)
        .and_then(|c| c.checked_add(tens * 10 + ones + round))
        .map(Cents)
        .ok_or(AmountError::Unreadable)
}

/// The digits of a whole part whose thousands may be grouped by `sep`: every group after the
/// first has exactly three digits ("1,250,000"); anything else is ambiguous ("12,50,0").
fn ungroup(whole: &str, sep: Option<char>) -> Result<String, AmountError> {
    let Some(sep) = sep else {
        return if whole.chars().all(|c| c.is_ascii_digit()) {
            Ok(whole.to_string())
        } else {
            Err(AmountError::Ambiguous)
        };
    };
    if !whole.contains(sep) {
        return if whole.chars().all(|c| c.is_ascii_digit()) {
            Ok(whole.to_string())
        } else {
            Err(AmountError::Ambiguous)
        };
    }
    let groups: Vec<&str> = whole.split(sep).collect();
    let first_ok = (1..=3).contains(&groups[0].len());
    let rest_ok = groups[1..].iter().all(|g| g.len() == 3);
    let digits_ok = groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()));
    if first_ok && rest_ok && digits_ok {
        Ok(groups.concat())
    } else {
        Err(AmountError::Ambiguous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_as_written_and_what_is_stored() {
        use AmountError::{Ambiguous, Unreadable};
        let table: &[(&str, Result<i64, AmountError>)] = &[
            ("350", Ok(35_000)),
            ("350.00", Ok(35_000)),
            ("350.5", Ok(35_050)),
            ("350,00", Ok(35_000)),
            ("R350,00", Ok(35_000)),
            ("R 350,00", Ok(35_000)),
            ("R 1 250,50", Ok(125_050)),
            ("R\u{a0}1\u{a0}250,50", Ok(125_050)),
            ("1 250.50", Ok(125_050)),
            ("1,250.00", Ok(125_000)),
            ("R1,250.00", Ok(125_000)),
            ("1,250", Ok(125_000)),
            ("1,250,000", Ok(125_000_000)),
            ("1,250,50", Ok(125_050)),
            ("1.250,50", Ok(125_050)),
            ("1.250.000", Ok(125_000_000)),
            ("ZAR 99.99", Ok(9_999)),
            ("99.99 ZAR", Ok(9_999)),
            ("0", Ok(0)),
            ("0.00", Ok(0)),
            (".5", Ok(50)),
            ("19.999", Ok(2_000)),
            // Ambiguous: recorded as unknown, never guessed.
            ("1,5", Err(Ambiguous)),
            ("350,0", Err(Ambiguous)),
            ("12,3456", Err(Ambiguous)),
            ("1.250.00", Err(Ambiguous)),
            ("1,2,3.00", Err(Ambiguous)),
            ("12,50,000.00", Err(Ambiguous)),
            ("1.2,50", Err(Ambiguous)),
            // Not amounts at all.
            ("", Err(Unreadable)),
            ("R", Err(Unreadable)),
            ("lots", Err(Unreadable)),
            ("-5", Err(Unreadable)),
            ("1e3", Err(Unreadable)),
            ("$5", Err(Unreadable)),
            ("99999999999999999999", Err(Unreadable)),
        ];
        for (text, expected) in table {
            assert_eq!(parse_amount(text).map(|c| c.0), *expected, "{text:?}");
        }
    }
}
