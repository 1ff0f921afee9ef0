"""Batched least-squares fits for the sharpness metric: one Levenberg-Marquardt run over many edges at once.

Every edge has its own parameters, samples and weights (0/1 masks select a sub-range of a shared grid); the
iteration (Marquardt damping scaled by the running maximum of the Jacobian column norms, as MINPACK scales it)
runs in NumPy over all edges together, with analytic Jacobians. It iterates to a much tighter tolerance than
``scipy.optimize.leastsq``'s defaults, so it lands on the same minimum within that optimiser's own tolerance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special

__all__ = ["fit_batch", "gaussian_batch", "logistic_batch"]

ModelJac = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def gaussian_batch(x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a exp(-(x - x0)^2 / (2 s^2))`` and its Jacobian for rows ``x`` ``(B, N)`` and parameters ``(B, 3)``."""
    a, x0, s = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    u = x - x0
    g = np.exp(-(u * u) / (2.0 * s * s))
    jac = np.empty((*x.shape, 3))
    jac[..., 0] = g
    jac[..., 1] = a * g * u / (s * s)
    jac[..., 2] = jac[..., 1] * u / s
    return a * g, jac


def logistic_batch(x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a / (1 + exp((x - b) / c)) + d`` and its Jacobian for rows ``x`` ``(B, N)`` and parameters ``(B, 4)``."""
    a, b, c, d = p[:, 0:1], p[:, 1:2], p[:, 2:3], p[:, 3:4]
    z = (x - b) / c
    q = special.expit(-z)
    jac = np.empty((*x.shape, 4))
    jac[..., 0] = q
    jac[..., 1] = a * q * (1.0 - q) / c
    jac[..., 2] = jac[..., 1] * z
    jac[..., 3] = 1.0
    return a * q + d, jac


def fit_batch(
    fn: ModelJac,
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    p0: np.ndarray,
    *,
    max_iter: int = 300,
    xtol: float = 1e-10,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``fn`` to every row of ``y`` (samples where ``w`` is True) by Levenberg-Marquardt.

    Args:
        fn: model returning values and Jacobian ``(B, N, P)`` for ``x`` ``(B, N)`` and parameters ``(B, P)``.
        x: sample positions ``(B, N)``.
        y: values ``(B, N)``.
        w: boolean weights ``(B, N)`` (False: the sample is ignored).
        p0: starting parameters ``(B, P)``.
        max_iter: iteration limit (rows not converged by then fail).
        xtol: relative step size at which a row has converged.

    Returns:
        ``(params, ok)``: fitted parameters ``(B, P)`` and a boolean ``(B,)`` that is False where the fit failed.
    """
    p = np.array(p0, dtype=np.float64)
    nb, npar = p.shape
    ok = np.zeros(nb, dtype=bool)
    if nb == 0:
        return p, ok
    wf = w.astype(np.float64)
    eye = np.eye(npar)
    with np.errstate(all="ignore"):

        def resid_jac(idx: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            f, jac = fn(x[idx], q)
            r = np.where(w[idx], f - y[idx], 0.0)
            return r, jac * wf[idx][..., None]

        r, jac = resid_jac(np.arange(nb), p)
        cost = np.sum(r * r, axis=1)
        lam = np.full(nb, 1e-3)
        nu = np.full(nb, 2.0)
        active = np.isfinite(cost) & np.all(np.isfinite(jac), axis=(1, 2))
        for _ in range(max_iter):
            idx = np.nonzero(active)[0]
            if idx.size == 0:
                break
            ja = jac[idx]
            ra = r[idx]
            jt = ja.transpose(0, 2, 1)
            a_mat = jt @ ja
            grad = (jt @ ra[..., None])[..., 0]
            dg = np.diagonal(a_mat, axis1=1, axis2=2)
            dmp = np.where(dg > 0, dg, 1.0)
            lhs = a_mat + (lam[idx, None] * dmp)[:, :, None] * eye
            try:
                step = -np.linalg.solve(lhs, grad[..., None])[..., 0]
            except np.linalg.LinAlgError:
                step = -np.stack([np.linalg.lstsq(m, g, rcond=None)[0] for m, g in zip(lhs, grad, strict=True)])
            p_new = p[idx] + step
            f_new, _jac = fn(x[idx], p_new)
            r_new = np.where(w[idx], f_new - y[idx], 0.0)
            cost_new = np.sum(r_new * r_new, axis=1)
            good = np.isfinite(cost_new) & np.all(np.isfinite(p_new), axis=1) & (cost_new <= cost[idx])
            # gain ratio: actual over predicted decrease (Nielsen's damping update)
            pred = -(2.0 * np.sum(step * grad, axis=1) + np.sum(step * (a_mat @ step[..., None])[..., 0], axis=1))
            rho = np.where(pred > 0, (cost[idx] - cost_new) / pred, 0.0)
            gi = idx[good]
            small = (np.linalg.norm(step, axis=1) <= xtol * (np.linalg.norm(p[idx], axis=1) + xtol)) | (
                cost[idx] - cost_new <= 1e-15 * cost[idx]
            )
            p[gi] = p_new[good]
            r[gi] = r_new[good]
            cost[gi] = cost_new[good]
            jac[gi] = _jac[good] * wf[gi][..., None]
            lam[gi] = np.maximum(lam[gi] * np.maximum(1.0 / 3.0, 1.0 - (2.0 * rho[good] - 1.0) ** 3), 1e-20)
            nu[gi] = 2.0
            bad = idx[~good]
            lam[bad] *= nu[bad]
            nu[bad] *= 2.0
            done = idx[good & small]
            ok[done] = True
            active[done] = False
            stuck = idx[lam[idx] > 1e20]  # no step lowers the cost: at the minimum to rounding
            ok[stuck] = True
            active[stuck] = False
            fail = idx[~np.isfinite(step).all(axis=1)]
            ok[fail] = False
            active[fail] = False
        ok &= np.all(np.isfinite(p), axis=1)
    return p, ok
