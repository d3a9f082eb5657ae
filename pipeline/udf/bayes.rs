//! The Bayesian comparison of a variant with control (docs/models.md §3.9):
//! with uniform priors each arm's conversion rate has the posterior
//! Beta(1 + x, 1 + n − x); `chance_to_beat_control` is P(p_variant >
//! p_control) and `expected_loss` is E[max(p_control − p_variant, 0)].
//!
//! Both are integrals of the two posterior densities, computed with
//! 10-point Gauss–Legendre panels one standard deviation wide over each
//! posterior's mean ± 40 standard deviations (clipped to [0, 1]; a Beta with
//! both parameters ≥ 1 is log-concave, so the mass left out is below
//! e^-39). The cumulative distribution and first moment of one arm are
//! tabulated at its panel edges once, and completed inside a panel by one
//! more 10-point rule, so each row costs a few thousand density
//! evaluations whatever the counts: no incomplete-beta routine (whose
//! continued fraction needs O(√n) terms and stops short for counts in the
//! millions) and no sampling. Over a panel of one standard deviation a
//! Beta density is so close to a polynomial of degree 19 that the rule's
//! error is at the level of rounding; the tests hold it to 1e-9 against an
//! independent closed form and to 1e-6 against SciPy.

use statrs::function::gamma::ln_gamma;

/// Standard deviations either side of the mean that hold the mass.
const SPAN_SD: f64 = 40.0;
/// A panel whose density stays below this everywhere is left out.
const NEGLIGIBLE: f64 = 1e-30;

/// Beta(a, b) with its normalising constant and its panels.
#[derive(Debug, Clone)]
struct Beta {
    a: f64,
    b: f64,
    ln_beta: f64,
    lo: f64,
    width: f64,
    panels: usize,
}

impl Beta {
    /// The posterior of x conversions out of n under a uniform prior;
    /// `None` unless 0 ≤ x ≤ n and n > 0.
    fn posterior(x: i64, n: i64) -> Option<Beta> {
        if n <= 0 || x < 0 || x > n {
            return None;
        }
        let (a, b) = (1.0 + x as f64, 1.0 + (n - x) as f64);
        let mean = a / (a + b);
        let sd = (a * b / ((a + b) * (a + b) * (a + b + 1.0))).sqrt();
        let lo = (mean - SPAN_SD * sd).max(0.0);
        let hi = (mean + SPAN_SD * sd).min(1.0);
        let panels = ((hi - lo) / sd).ceil().max(1.0);
        Some(Beta {
            a,
            b,
            ln_beta: ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b),
            lo,
            width: (hi - lo) / panels,
            panels: panels as usize,
        })
    }

    fn pdf(&self, t: f64) -> f64 {
        if !(0.0..=1.0).contains(&t) {
            return 0.0;
        }
        // (a − 1) ln t with a = 1 is 0 even at t = 0 (0⁰ = 1).
        let left = if self.a == 1.0 {
            0.0
        } else {
            (self.a - 1.0) * t.ln()
        };
        let right = if self.b == 1.0 {
            0.0
        } else {
            (self.b - 1.0) * (-t).ln_1p()
        };
        (left + right - self.ln_beta).exp()
    }

    fn panel(&self, k: usize) -> (f64, f64) {
        let start = self.lo + k as f64 * self.width;
        (start, start + self.width)
    }

    /// Whether the density is negligible over panel k (checked at its
    /// ends and middle: a log-concave density has one mode).
    fn negligible(&self, k: usize) -> bool {
        let (s, e) = self.panel(k);
        [s, 0.5 * (s + e), e]
            .iter()
            .all(|t| self.pdf(*t) < NEGLIGIBLE)
    }
}

/// An arm's distribution function F and first partial moment M(t) =
/// ∫₀ᵗ u f(u) du, tabulated at its panel edges.
struct Table<'a> {
    beta: &'a Beta,
    cdf: Vec<f64>,
    moment: Vec<f64>,
}

impl<'a> Table<'a> {
    fn new(beta: &'a Beta) -> Table<'a> {
        let (mut cdf, mut moment) = (vec![0.0], vec![0.0]);
        for k in 0..beta.panels {
            let (s, e) = beta.panel(k);
            let (f, m) = if beta.negligible(k) {
                (0.0, 0.0)
            } else {
                gauss_legendre(s, e, |t| {
                    let p = beta.pdf(t);
                    (p, t * p)
                })
            };
            cdf.push(cdf[k] + f);
            moment.push(moment[k] + m);
        }
        Table { beta, cdf, moment }
    }

    /// (F(t), M(t)).
    fn at(&self, t: f64) -> (f64, f64) {
        let beta = self.beta;
        if t <= beta.lo {
            return (0.0, 0.0);
        }
        let k = ((t - beta.lo) / beta.width).floor() as usize;
        if k >= beta.panels {
            return (self.cdf[beta.panels], self.moment[beta.panels]);
        }
        let (s, _) = beta.panel(k);
        let (f, m) = gauss_legendre(s, t, |u| {
            let p = beta.pdf(u);
            (p, u * p)
        });
        (self.cdf[k] + f, self.moment[k] + m)
    }

    fn total(&self) -> (f64, f64) {
        (self.cdf[self.beta.panels], self.moment[self.beta.panels])
    }
}

/// ∫ over `outer`'s panels of outer.pdf(t) · g(t).
fn over_panels(outer: &Beta, g: impl Fn(f64) -> f64) -> f64 {
    (0..outer.panels)
        .filter(|k| !outer.negligible(*k))
        .map(|k| {
            let (s, e) = outer.panel(k);
            gauss_legendre(s, e, |t| (outer.pdf(t) * g(t), 0.0)).0
        })
        .sum()
}

/// P(p_variant > p_control): NULL (`None`) when either arm has no users
/// or more conversions than users.
pub fn chance_to_beat_control(x_c: i64, n_c: i64, x_v: i64, n_v: i64) -> Option<f64> {
    let (c, v) = (Beta::posterior(x_c, n_c)?, Beta::posterior(x_v, n_v)?);
    // ∫ f_c(t) · P(p_v > t) dt.
    let table = Table::new(&v);
    let mass = table.total().0;
    let p = over_panels(&c, |t| mass - table.at(t).0);
    // Normalised by the masses as integrated: ln Γ of counts in the
    // millions carries a relative error near 1e-9 into each density.
    let norm = over_panels(&c, |_| 1.0) * mass;
    Some((p / norm).clamp(0.0, 1.0))
}

/// E[max(p_control − p_variant, 0)]: what choosing the variant costs, in
/// conversion rate, when control is in fact better. NULL as above.
pub fn expected_loss(x_c: i64, n_c: i64, x_v: i64, n_v: i64) -> Option<f64> {
    let (c, v) = (Beta::posterior(x_c, n_c)?, Beta::posterior(x_v, n_v)?);
    // ∫ f_v(u) · E[(p_c − u)⁺] du, with E[(p_c − u)⁺] = ∫ᵤ¹ t f_c − u (1 − F_c(u)).
    let table = Table::new(&c);
    let (mass, first) = table.total();
    let loss = over_panels(&v, |u| {
        let (f, m) = table.at(u);
        ((first - m) - u * (mass - f)).max(0.0)
    });
    let norm = over_panels(&v, |_| 1.0) * mass;
    Some((loss / norm).max(0.0))
}

/// Nodes (positive half) and weights of the 10-point Gauss–Legendre rule on [−1, 1].
const GL_X: [f64; 5] = [
    0.148_874_338_981_631_2,
    0.433_395_394_129_247_2,
    0.679_409_568_299_024_4,
    0.865_063_366_688_984_5,
    0.973_906_528_517_171_7,
];
const GL_W: [f64; 5] = [
    0.295_524_224_714_752_9,
    0.269_266_719_309_996_4,
    0.219_086_362_515_982,
    0.149_451_349_150_580_6,
    0.066_671_344_308_688_14,
];

/// Two integrals over [a, b] at once by the 10-point rule.
fn gauss_legendre(a: f64, b: f64, f: impl Fn(f64) -> (f64, f64)) -> (f64, f64) {
    let (center, half) = (0.5 * (a + b), 0.5 * (b - a));
    let (mut first, mut second) = (0.0, 0.0);
    for (x, w) in GL_X.iter().zip(GL_W) {
        for t in [center - half * x, center + half * x] {
            let (p, q) = f(t);
            first += w * p;
            second += w * q;
        }
    }
    (first * half, second * half)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from SciPy 1.17.1 (`scripts/bayes_reference.py`):
    /// `quad` over the exact incomplete beta (`scipy.special.betaincc`).
    const REFERENCE: [(i64, i64, i64, i64, f64, f64); 8] = [
        (3, 10, 5, 10, 0.806501547988, 2.105487503926e-02),
        (40, 100, 55, 120, 0.806125912138, 7.125300019309e-03),
        (0, 25, 2, 25, 0.882352941176, 4.110658938628e-03),
        (25, 25, 24, 25, 0.245098039216, 4.577218728162e-02),
        (1200, 10000, 1290, 10000, 0.973033814435, 4.806569480926e-05),
        (
            40000,
            2000000,
            40500,
            2000000,
            0.962483820892,
            2.106470854242e-06,
        ),
        (
            400000,
            2000000,
            399000,
            2100000,
            0.000000000000,
            1.000000476189e-02,
        ),
        (3, 2000000, 9, 1900000, 0.962144326400, 2.936673815182e-08),
    ];

    #[test]
    fn agrees_with_the_closed_form_on_small_counts() {
        // Evan Miller's sum for integer parameters, an independent formula.
        fn closed_form(x_c: i64, n_c: i64, x_v: i64, n_v: i64) -> f64 {
            let (a_c, b_c) = (1.0 + x_c as f64, 1.0 + (n_c - x_c) as f64);
            let (a_v, b_v) = (1.0 + x_v as f64, 1.0 + (n_v - x_v) as f64);
            let ln_b = |a: f64, b: f64| ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
            (0..a_v as i64)
                .map(|i| {
                    let i = i as f64;
                    (ln_b(a_c + i, b_c + b_v)
                        - (b_v + i).ln()
                        - ln_b(1.0 + i, b_v)
                        - ln_b(a_c, b_c))
                    .exp()
                })
                .sum()
        }
        for (x_c, n_c, x_v, n_v) in [
            (0, 1, 1, 1),
            (3, 10, 5, 10),
            (40, 100, 55, 120),
            (0, 50, 0, 50),
            (50, 50, 49, 50),
            (120, 1000, 150, 1000),
        ] {
            let got = chance_to_beat_control(x_c, n_c, x_v, n_v).unwrap();
            let want = closed_form(x_c, n_c, x_v, n_v);
            assert!(
                (got - want).abs() < 1e-9,
                "{x_c}/{n_c} vs {x_v}/{n_v}: {got} != {want}"
            );
        }
    }

    #[test]
    fn edges_and_symmetry() {
        assert_eq!(chance_to_beat_control(0, 0, 1, 10), None);
        assert_eq!(expected_loss(5, 10, 0, 0), None);
        assert_eq!(chance_to_beat_control(11, 10, 1, 10), None);
        // Identical arms: an even chance.
        let even = chance_to_beat_control(2_000, 1_000_000, 2_000, 1_000_000).unwrap();
        assert!((even - 0.5).abs() < 1e-9, "{even}");
        // P(v > c) + P(c > v) = 1.
        let a = chance_to_beat_control(1_234, 2_000_000, 1_300, 2_000_000).unwrap();
        let b = chance_to_beat_control(1_300, 2_000_000, 1_234, 2_000_000).unwrap();
        assert!((a + b - 1.0).abs() < 1e-9, "{a} + {b}");
        // E[(c − v)⁺] − E[(v − c)⁺] = E[c] − E[v].
        let (l1, l2) = (
            expected_loss(30, 100, 40, 100).unwrap(),
            expected_loss(40, 100, 30, 100).unwrap(),
        );
        assert!(
            (l1 - l2 - (31.0 / 102.0 - 41.0 / 102.0)).abs() < 1e-9,
            "{l1} {l2}"
        );
    }

    #[test]
    fn matches_scipy() {
        for (x_c, n_c, x_v, n_v, ctbc, loss) in REFERENCE {
            let got = chance_to_beat_control(x_c, n_c, x_v, n_v).unwrap();
            assert!(
                (got - ctbc).abs() < 1e-6,
                "{x_c}/{n_c} vs {x_v}/{n_v}: {got} != {ctbc}"
            );
            let got = expected_loss(x_c, n_c, x_v, n_v).unwrap();
            assert!(
                (got - loss).abs() < 1e-6,
                "loss {x_c}/{n_c} vs {x_v}/{n_v}: {got} != {loss}"
            );
        }
    }
}
