//! The arms of the onboarding experiment: `variables.ab_arms` parsed into
//! named shares and the murmur3 bucket range each one owns.
//!
//! `ab_arms = "control=0.34, b=0.33, c=0.33"` gives three arms; empty (the
//! default) gives the two arms of `control_share`: control then treatment.
//! Buckets 0..9999 are dealt in the written order, so an arm owns
//! `[bucket_low, bucket_high)` with `bucket_high = ⌈cumulative share × 10000⌉` (float noise
//! below 10⁻⁶ of a bucket ignored),
//! which for two arms is the `bucket < control_share × 10000` rule.

use crate::error::{Error, Result};

/// Buckets of the assignment (`murmur3 % BUCKETS`).
pub const BUCKETS: u32 = 10_000;

/// One arm of the onboarding experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    pub name: String,
    pub share: f64,
    /// First bucket of the arm.
    pub bucket_low: u32,
    /// One past its last bucket.
    pub bucket_high: u32,
}

impl super::Variables {
    /// The onboarding experiment's arms (`ab_arms`, else `control_share`).
    pub fn arms(&self) -> Result<Vec<Arm>> {
        parse(&self.ab_arms, self.control_share, &self.control_variant)
    }
}

/// The arms of `ab_arms`, or of `control_share` when it is empty; an error
/// names the key and the fix.
pub fn parse(ab_arms: &str, control_share: f64, control: &str) -> Result<Vec<Arm>> {
    let bad = |m: String| Err(Error::Config(format!("variables.ab_arms: {m}")));
    let pairs: Vec<(String, f64)> = if ab_arms.trim().is_empty() {
        vec![
            (control.to_string(), control_share),
            ("treatment".to_string(), 1.0 - control_share),
        ]
    } else {
        let mut pairs = Vec::new();
        for part in ab_arms.split(',') {
            let Some((name, share)) = part.split_once('=') else {
                return bad(format!(
                    "`{}` is not name=share (example: \"control=0.5, treatment=0.5\")",
                    part.trim()
                ));
            };
            let share: f64 = match share.trim().parse() {
                Ok(s) => s,
                Err(_) => return bad(format!("the share of `{}` is not a number", name.trim())),
            };
            pairs.push((name.trim().to_string(), share));
        }
        pairs
    };
    if pairs.len() < 2 {
        return bad("an experiment needs at least two arms".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, share) in &pairs {
        // Names become SQL string literals and column values: keep them plain.
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad(format!(
                "arm name `{name}` must be letters, digits, `_` or `-`"
            ));
        }
        if !seen.insert(name.as_str()) {
            return bad(format!("arm `{name}` is listed twice"));
        }
        if !(share.is_finite() && *share > 0.0 && *share < 1.0) {
            return bad(format!("the share of `{name}` must be within (0, 1)"));
        }
    }
    if !seen.contains(control) {
        return bad(format!(
            "no arm is the control variant `{control}` (variables.control_variant)"
        ));
    }
    let total: f64 = pairs.iter().map(|(_, s)| s).sum();
    if (total - 1.0).abs() > 1e-6 {
        return bad(format!("the shares add up to {total}, not 1"));
    }
    let count = pairs.len();
    let mut arms = Vec::with_capacity(count);
    let mut cumulative = 0.0;
    let mut low = 0;
    for (i, (name, share)) in pairs.into_iter().enumerate() {
        cumulative += share;
        // The tolerance absorbs float noise (0.34 × 10000 = 3400.0000000000005).
        let high = if i + 1 == count {
            BUCKETS
        } else {
            ((cumulative * f64::from(BUCKETS) - 1e-6).ceil().max(0.0) as u32).min(BUCKETS)
        };
        if high <= low {
            return bad(format!(
                "the share of `{name}` is below one bucket in {BUCKETS}"
            ));
        }
        arms.push(Arm {
            name,
            share,
            bucket_low: low,
            bucket_high: high,
        });
        low = high;
    }
    Ok(arms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_default_arms_follow_control_share() {
        let arms = parse("", 0.05, "control").unwrap();
        assert_eq!(arms.len(), 2);
        assert_eq!(
            (
                arms[0].name.as_str(),
                arms[0].bucket_low,
                arms[0].bucket_high
            ),
            ("control", 0, 500)
        );
        assert_eq!(
            (
                arms[1].name.as_str(),
                arms[1].bucket_low,
                arms[1].bucket_high
            ),
            ("treatment", 500, 10_000)
        );
        // A share between buckets keeps `bucket < share × 10000`: 555.5 → 0..=555.
        assert_eq!(parse("", 0.05555, "control").unwrap()[0].bucket_high, 556);
    }

    #[test]
    fn three_arms_split_the_buckets_in_order() {
        let arms = parse("control=0.34, b=0.33, c=0.33", 0.05, "control").unwrap();
        let ranges: Vec<_> = arms.iter().map(|a| (a.bucket_low, a.bucket_high)).collect();
        assert_eq!(ranges, [(0, 3400), (3400, 6700), (6700, 10_000)]);
    }

    #[test]
    fn wrong_arms_name_the_problem() {
        for (text, needle) in [
            ("control=0.5", "at least two arms"),
            ("control=0.5, control=0.5", "listed twice"),
            ("control=0.5, b=0.4", "add up to"),
            ("a=0.5, b=0.5", "no arm is the control"),
            ("control=0.5, b", "not name=share"),
            ("control=0.5, b=x", "not a number"),
            ("control=0.5, 'b=0.5", "letters, digits"),
            ("control=1.5, b=-0.5", "within (0, 1)"),
            ("control=0.99999, b=0.00001", "below one bucket"),
        ] {
            let err = parse(text, 0.05, "control").unwrap_err().to_string();
            assert!(
                err.contains("variables.ab_arms") && err.contains(needle),
                "{text}: {err}"
            );
        }
    }
}
