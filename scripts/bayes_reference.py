"""Reference values for `pipeline/udf/bayes.rs`, computed independently with
SciPy: chance to beat control and expected loss under Beta(1 + x, 1 + n - x)
posteriors, by `scipy.integrate.quad` over the exact regularised incomplete
beta (`scipy.special.betainc`, Boost's ibeta). Prints Rust tuples
(x_c, n_c, x_v, n_v, chance_to_beat_control, expected_loss).

    python3 -m venv /tmp/sp && /tmp/sp/bin/pip install scipy
    /tmp/sp/bin/python scripts/bayes_reference.py
"""
import numpy as np
import scipy
from scipy import integrate, special, stats

CASES = [
    (3, 10, 5, 10),
    (40, 100, 55, 120),
    (0, 25, 2, 25),
    (25, 25, 24, 25),
    (1200, 10000, 1290, 10000),
    (40000, 2000000, 40500, 2000000),
    (400000, 2000000, 399000, 2100000),
    (3, 2000000, 9, 1900000),
]


def window(a, b, k=40.0):
    mean = a / (a + b)
    sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    return max(0.0, mean - k * sd), min(1.0, mean + k * sd)


def chance(xc, nc, xv, nv):
    ac, bc, av, bv = 1 + xc, 1 + nc - xc, 1 + xv, 1 + nv - xv
    lo, hi = window(ac, bc)
    f = lambda t: stats.beta.pdf(t, ac, bc) * special.betaincc(av, bv, t)
    pts = np.linspace(lo, hi, 81)[1:-1]
    return integrate.quad(f, lo, hi, points=pts, limit=500, epsabs=1e-13, epsrel=1e-12)[0]


def loss(xc, nc, xv, nv):
    ac, bc, av, bv = 1 + xc, 1 + nc - xc, 1 + xv, 1 + nv - xv
    mc = ac / (ac + bc)
    lo, hi = window(av, bv)
    # E[(p_c - u)+] = mc * (1 - I_u(ac + 1, bc)) - u * (1 - I_u(ac, bc))
    inner = lambda u: mc * special.betaincc(ac + 1, bc, u) - u * special.betaincc(ac, bc, u)
    f = lambda u: stats.beta.pdf(u, av, bv) * inner(u)
    pts = np.linspace(lo, hi, 81)[1:-1]
    return integrate.quad(f, lo, hi, points=pts, limit=500, epsabs=1e-13, epsrel=1e-12)[0]


print(f"// SciPy {scipy.__version__}")
for c in CASES:
    print(f"    ({c[0]}, {c[1]}, {c[2]}, {c[3]}, {chance(*c):.12f}, {loss(*c):.12e}),")


# Confidence sequences (docs/models.md §3.9) and the chi-square survival
# function used by the k-arm SRM test.
def seq_interval(x0, n0, x1, n1, alpha=0.05, tuning=5000.0):
    p0, p1 = x0 / n0, x1 / n1
    n = n0 + n1
    v = p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0
    rho = np.sqrt((-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / tuning)
    half = np.sqrt(v * n) * np.sqrt(2 * (n * rho**2 + 1) / (n**2 * rho**2) * np.log(np.sqrt(n * rho**2 + 1) / alpha))
    d = p1 - p0
    return d - half, d + half


for c in [(120, 1000, 150, 1000), (40000, 2000000, 40500, 2000000), (5, 40, 12, 38)]:
    lo, hi = seq_interval(*c)
    print(f"    ({c[0]}, {c[1]}, {c[2]}, {c[3]}, {lo:.15e}, {hi:.15e}),")
for x, df in [(3.2, 2), (0.5, 1), (12.7, 3), (250.0, 4)]:
    print(f"    ({x}, {df}, {stats.chi2.sf(x, df):.15e}),")
