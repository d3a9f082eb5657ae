//! The statistics of docs/models.md §3.8, shared by every A/B table: a two-proportion
//! z-test with pooled standard error, the unpooled 95 % confidence interval
//! of the difference, relative lift, and the sample-ratio-mismatch χ² test.
//! Φ and erfc come from `statrs`; any division by zero gives `None` (NULL in
//! SQL), never NaN or infinity.

use statrs::distribution::{ContinuousCDF, Normal};
use statrs::function::erf::erfc;

/// z for a two-sided 95 % interval (docs/models.md §3.8).
pub const Z_95: f64 = 1.959964;

/// Treatment (1) against control (0): x successes out of n users.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoProportion {
    pub control_rate: Option<f64>,
    pub treatment_rate: Option<f64>,
    pub abs_diff: Option<f64>,
    pub relative_lift: Option<f64>,
    pub z_score: Option<f64>,
    pub p_value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub significant: bool,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    if den == 0.0 { None } else { finite(num / den) }
}

/// Standard normal CDF Φ.
pub fn phi(z: f64) -> f64 {
    // Mean 0, sd 1 are valid parameters: construction cannot fail.
    Normal::new(0.0, 1.0).map(|n| n.cdf(z)).unwrap_or(f64::NAN)
}

/// Two-sided p-value of a z statistic: 2 (1 − Φ(|z|)), computed as
/// erfc(|z| / √2) so that tiny p-values keep their precision.
pub fn two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2)
}

pub fn two_proportion(x0: i64, n0: i64, x1: i64, n1: i64, alpha: f64) -> TwoProportion {
    let (x0, n0, x1, n1) = (x0 as f64, n0 as f64, x1 as f64, n1 as f64);
    let p0 = ratio(x0, n0);
    let p1 = ratio(x1, n1);
    let diff = p0.zip(p1).map(|(p0, p1)| p1 - p0);
    let relative_lift = p0.zip(diff).and_then(|(p0, d)| ratio(d, p0));
    let pooled = ratio(x0 + x1, n0 + n1);
    let z = match (pooled, diff) {
        (Some(p), Some(d)) => {
            let se = (p * (1.0 - p) * (1.0 / n0 + 1.0 / n1)).sqrt();
            ratio(d, se)
        }
        _ => None,
    };
    let p_value = z.map(two_sided_p).and_then(finite);
    let (ci_low, ci_high) = match (p0, p1, diff) {
        (Some(p0), Some(p1), Some(d)) => {
            let se = (p1 * (1.0 - p1) / n1 + p0 * (1.0 - p0) / n0).sqrt();
            (finite(d - Z_95 * se), finite(d + Z_95 * se))
        }
        _ => (None, None),
    };
    TwoProportion {
        control_rate: p0,
        treatment_rate: p1,
        abs_diff: diff,
        relative_lift,
        z_score: z,
        p_value,
        ci_low,
        ci_high,
        significant: p_value.is_some_and(|p| p < alpha),
    }
}

/// Sample ratio mismatch: χ² over the two groups (1 degree of freedom) and
/// p = erfc(√(χ²/2)). `None` when there are no users or the share is 0 or 1.
pub fn srm(
    control: i64,
    treatment: i64,
    expected_control_share: f64,
) -> (Option<f64>, Option<f64>) {
    let total = (control + treatment) as f64;
    let e0 = total * expected_control_share;
    let e1 = total * (1.0 - expected_control_share);
    if total == 0.0 || e0 <= 0.0 || e1 <= 0.0 {
        return (None, None);
    }
    let chi = (control as f64 - e0).powi(2) / e0 + (treatment as f64 - e1).powi(2) / e1;
    (finite(chi), finite(erfc((chi / 2.0).sqrt())))
}

/// The peeking-safe interval of p₁ − p₀ (docs/models.md §3.9): an
/// asymptotic confidence sequence with tuning N* = `tuning`, valid however
/// often it is looked at. `None` when an arm is empty or the variance is 0.
pub fn seq_interval(
    x0: i64,
    n0: i64,
    x1: i64,
    n1: i64,
    alpha: f64,
    tuning: f64,
) -> Option<(f64, f64)> {
    let (n0, n1) = (n0 as f64, n1 as f64);
    let (p0, p1) = (ratio(x0 as f64, n0)?, ratio(x1 as f64, n1)?);
    let n = n0 + n1;
    let v = p1 * (1.0 - p1) / n1 + p0 * (1.0 - p0) / n0;
    // Written so that a NaN in any of them is refused too.
    let positive = |x: f64| x > 0.0;
    let probability = |x: f64| x > 0.0 && x < 1.0;
    if !positive(v) || !positive(tuning) || !probability(alpha) {
        return None;
    }
    let l = -2.0 * alpha.ln();
    let rho2 = (l + (l + 1.0).ln()) / tuning;
    let half = (v * n).sqrt()
        * (2.0 * (n * rho2 + 1.0) / (n * n * rho2) * ((n * rho2 + 1.0).sqrt() / alpha).ln()).sqrt();
    let d = p1 - p0;
    Some((finite(d - half)?, finite(d + half)?))
}

/// The χ² survival function P(X > x) with `df` degrees of freedom (the
/// k-arm SRM test, df = k − 1); `None` for df < 1 or a negative x.
pub fn chi2_sf(x: f64, df: i64) -> Option<f64> {
    use statrs::distribution::ChiSquared;
    // A NaN x is refused with the negatives.
    if df < 1 || x.is_nan() || x < 0.0 {
        return None;
    }
    ChiSquared::new(df as f64)
        .ok()
        .map(|d| d.sf(x))
        .and_then(finite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a value");
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
    }

    /// Expected values computed independently with Python 3.11, SciPy 1.17.1
    /// (`scipy.stats.norm.sf` for the p-value) and plain float arithmetic for
    /// the formulas of docs/models.md §3.8.
    #[test]
    fn two_proportion_matches_scipy() {
        // (x0, n0, x1, n1) → (z, p, ci_low, ci_high, lift)
        let cases = [
            (
                (50, 1000, 65, 1000),
                (
                    1.440793230951582,
                    0.14964310637037262,
                    -0.005394459060546922,
                    0.03539445906054692,
                    0.3,
                ),
            ),
            (
                (120, 400, 95, 410),
                (
                    -2.2007002625507033,
                    0.027757250223967692,
                    -0.12899440934955886,
                    -0.007590956504099619,
                    -0.22764227642276416,
                ),
            ),
            (
                (5, 20, 18, 25),
                (
                    3.134107282544429,
                    0.0017237782045240162,
                    0.21117341436606446,
                    0.7288265856339355,
                    1.88,
                ),
            ),
        ];
        for ((x0, n0, x1, n1), (z, p, lo, hi, lift)) in cases {
            let r = two_proportion(x0, n0, x1, n1, 0.05);
            close(r.z_score, z);
            close(r.p_value, p);
            close(r.ci_low, lo);
            close(r.ci_high, hi);
            close(r.relative_lift, lift);
            assert_eq!(r.significant, p < 0.05);
        }
    }

    #[test]
    fn divisions_by_zero_are_none_not_nan() {
        // No control users: rates, z, p, CI and lift of the missing side are NULL.
        let r = two_proportion(0, 0, 3, 10, 0.05);
        assert_eq!(r.control_rate, None);
        assert_eq!(
            (r.z_score, r.p_value, r.ci_low, r.relative_lift),
            (None, None, None, None)
        );
        assert!(!r.significant);
        // Nobody succeeded anywhere: pooled SE is 0 → z NULL; control rate 0 → lift NULL.
        let r = two_proportion(0, 10, 0, 12, 0.05);
        assert_eq!((r.z_score, r.p_value, r.relative_lift), (None, None, None));
        assert_eq!(
            (r.abs_diff, r.ci_low, r.ci_high),
            (Some(0.0), Some(0.0), Some(0.0))
        );
        // Everybody succeeded on both sides: same, lift is 0.
        let r = two_proportion(7, 7, 9, 9, 0.05);
        assert_eq!((r.z_score, r.relative_lift), (None, Some(0.0)));
        // One-sided extreme: 0 % vs 100 % is defined and hugely significant.
        let r = two_proportion(0, 30, 30, 30, 0.05);
        close(r.z_score, 7.745966692414835);
        // SciPy: 2 · norm.sf(7.745966692414835) = 9.485737571073745e-15.
        let p = r.p_value.unwrap();
        assert!((p - 9.485737571073745e-15).abs() < 1e-20, "{p}");
        assert!(r.significant);
    }

    /// Expected values from SciPy 1.17.1 `scipy.stats.chisquare([c, t], f_exp=[N·s, N·(1−s)])`.
    #[test]
    fn srm_matches_scipy_chisquare() {
        let (chi, p) = srm(480, 520, 0.5);
        close(chi, 1.6);
        close(p, 0.20590321073206466);
        let (chi, p) = srm(70, 930, 0.05);
        close(chi, 8.421052631578947);
        close(p, 0.0037090099909748053);
        assert_eq!(srm(0, 0, 0.5), (None, None));
        assert_eq!(srm(5, 5, 0.0), (None, None));
    }

    #[test]
    fn phi_is_the_normal_cdf() {
        assert!((phi(0.0) - 0.5).abs() < 1e-15);
        assert!((phi(1.959964) - 0.975).abs() < 1e-6);
        assert!((two_sided_p(1.959964) - 0.05).abs() < 1e-6);
    }

    #[test]
    fn confidence_sequences_and_chi_square_match_scipy() {
        // scripts/bayes_reference.py (NumPy for the §3.9 formula, SciPy 1.17.1 for χ²).
        for (x0, n0, x1, n1, lo, hi) in [
            (
                120,
                1000,
                150,
                1000,
                -1.769264958194792e-02,
                7.769264958194791e-02,
            ),
            (
                40000,
                2000000,
                40500,
                2000000,
                -2.893229577338796e-04,
                7.893_229_577_338_8e-4,
            ),
            (5, 40, 12, 38, -4.924904636953154e-01, 8.740694110637364e-01),
        ] {
            let (l, h) = seq_interval(x0, n0, x1, n1, 0.05, 5000.0).unwrap();
            assert!((l - lo).abs() < 1e-12 && (h - hi).abs() < 1e-12, "{l} {h}");
        }
        assert_eq!(
            seq_interval(0, 10, 0, 10, 0.05, 5000.0),
            None,
            "no variance"
        );
        assert_eq!(seq_interval(1, 0, 1, 10, 0.05, 5000.0), None, "empty arm");
        for (x, df, p) in [
            (3.2, 2, 2.018965179946554e-01),
            (0.5, 1, 4.795001221869534e-01),
            (12.7, 3, 5.332401703679799e-03),
            (250.0, 4, 6.509689997375721e-53),
        ] {
            let got = chi2_sf(x, df).unwrap();
            assert!(
                (got - p).abs() <= 1e-12 * p.max(1e-300) + 1e-15,
                "χ²({x}, {df}) = {got}, want {p}"
            );
        }
        assert_eq!(chi2_sf(1.0, 0), None);
    }
}
