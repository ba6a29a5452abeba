"""Frechet-distance fixtures for eval/frechet_test.go, computed with NumPy and SciPy alone.

Writes eval/testdata/frechet.npz. Each case NAME stores NAME_mu1, NAME_sigma1, NAME_mu2, NAME_sigma2
and two reference values:

  NAME_authors    the authors' formula (FSVAE/ESVAE metrics code): scipy.linalg.sqrtm(S1 @ S2),
                  eps = 1e-6 added to both diagonals when the product is singular (non-finite
                  sqrtm), real part taken;
  NAME_symmetric  Tr((sqrt(S1) S2 sqrt(S1))^(1/2)) with scipy's sqrtm for both square roots (the
                  symmetric form the Go code evaluates with eigendecompositions instead).

and a feature matrix `features` (n x d) with its np.mean / np.cov(rowvar=False) as `features_mu`,
`features_sigma`, for FitGaussian. Also writes eval/testdata/stats_numpy.npz with np.savez (float32
mu and sigma, the dtype of the authors' published files) for LoadStats.

Run from the repository root: python tools/reference/make_frechet_fixture.py
(needs numpy and scipy, see requirements.txt; deterministic).
"""
import numpy as np
from scipy import linalg


def authors(mu1, s1, mu2, s2, eps=1e-6):
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def symmetric(mu1, s1, mu2, s2):
    diff = mu1 - mu2
    r = linalg.sqrtm(s1).real
    m = r @ s2 @ r
    m = 0.5 * (m + m.T)
    c = linalg.sqrtm(m).real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(c))


def cov_from(rng, n, d, scale=1.0):
    x = rng.standard_normal((n, d)) @ (rng.standard_normal((d, d)) * scale)
    return np.cov(x, rowvar=False)


def main():
    rng = np.random.default_rng(20231023)
    out = {}
    cases = {}
    d = 64
    # well conditioned: many samples
    cases["well"] = (rng.standard_normal(d), cov_from(rng, 2000, d), rng.standard_normal(d) * 0.5, cov_from(rng, 2000, d, 0.7))
    # identical Gaussians: distance 0
    s = cov_from(rng, 500, 16)
    m = rng.standard_normal(16)
    cases["same"] = (m, s, m.copy(), s.copy())
    # ill conditioned: eigenvalues spread over 10 decades
    q1, _ = np.linalg.qr(rng.standard_normal((d, d)))
    q2, _ = np.linalg.qr(rng.standard_normal((d, d)))
    ev = np.logspace(-8, 2, d)
    s1 = (q1 * ev) @ q1.T
    s2 = (q2 * ev[::-1]) @ q2.T
    cases["ill"] = (rng.standard_normal(d), 0.5 * (s1 + s1.T), rng.standard_normal(d), 0.5 * (s2 + s2.T))
    # rank deficient (fewer samples than dimensions, as with few generated images)
    cases["singular"] = (rng.standard_normal(d), cov_from(rng, 40, d), rng.standard_normal(d), cov_from(rng, 2000, d))
    for name, (mu1, s1, mu2, s2) in cases.items():
        out[name + "_mu1"], out[name + "_sigma1"] = mu1, s1
        out[name + "_mu2"], out[name + "_sigma2"] = mu2, s2
        out[name + "_authors"] = np.array(authors(mu1, s1, mu2, s2))
        out[name + "_symmetric"] = np.array(symmetric(mu1, s1, mu2, s2))
        print(f"{name:9s} authors {out[name + '_authors']:.12g}  symmetric {out[name + '_symmetric']:.12g}")
    feats = rng.standard_normal((300, 12)) * np.linspace(0.5, 3, 12) + np.linspace(-1, 1, 12)
    out["features"] = feats
    out["features_mu"] = np.mean(feats, axis=0)
    out["features_sigma"] = np.cov(feats, rowvar=False)
    np.savez("eval/testdata/frechet.npz", **out)
    np.savez("eval/testdata/stats_numpy.npz", mu=out["well_mu1"].astype(np.float32), sigma=out["well_sigma1"].astype(np.float32))


if __name__ == "__main__":
    main()
