"""Least-squares fits for the sharpness metric: one edge (MINPACK), or many edges in one batched run.

Every edge has its own parameters, samples and weights (0/1 masks select a sub-range of a shared grid); the
iteration (Marquardt damping scaled by the running maximum of the Jacobian column norms, as MINPACK scales it)
runs in NumPy over all edges together, with analytic Jacobians. It iterates to a much tighter tolerance than
``scipy.optimize.leastsq``'s defaults, so it lands on the same minimum within that optimiser's own tolerance.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import optimize

from opsin.iq.metrics._esf_models import JACOBIANS, gaussian, gaussian_batch, logistic_batch, model_esf

__all__ = ["fit_batch", "fit_curve", "fit_rows"]

ModelJac = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_BATCHED: dict[Callable[..., Any], ModelJac] = {gaussian: gaussian_batch, model_esf: logistic_batch}


def fit_curve(f: Callable[..., Any], x: np.ndarray, y: np.ndarray, p0: Sequence[float]) -> np.ndarray | None:
    """Least-squares fit of ``f(x, *p)`` to ``y`` from ``p0`` (MINPACK Levenberg-Marquardt, as ``curve_fit``).

    Returns:
        The parameters, or None when the optimiser fails or returns non-finite values.
    """
    jac = JACOBIANS.get(f)

    def residuals(p: np.ndarray) -> np.ndarray:
        return np.asarray(f(x, *p) - y)

    def jacobian(p: np.ndarray) -> np.ndarray:
        return np.asarray(jac(x, *p))  # type: ignore[misc]

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            popt, _cov, _info, _msg, status = optimize.leastsq(
                residuals,
                np.asarray(p0, dtype=np.float64),
                Dfun=jacobian if jac is not None else None,
                col_deriv=True,
                full_output=True,
            )
    except (RuntimeError, ValueError, TypeError):
        return None
    if status not in (1, 2, 3, 4) or not np.all(np.isfinite(popt)):
        return None
    return np.asarray(popt)


def fit_rows(
    model: Callable[..., Any], x: np.ndarray, y: np.ndarray, w: np.ndarray, p0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``model`` (:func:`gaussian` or :func:`model_esf`) to every row at once, MINPACK where that stalls.

    A row the batched iteration leaves unconverged at a plausible point (finite, moderate, width above 0.05 px) is
    refitted alone from its ``p0`` as the original did, so a slowly converging but regular fit is not lost.

    Args:
        model: the single-edge model function.
        x: sample positions ``(B, N)``.
        y: values ``(B, N)``.
        w: which samples count ``(B, N)``.
        p0: starting parameters ``(B, P)``.

    Returns:
        ``(params, ok)`` as :func:`fit_batch`.
    """
    # The last few slow rows go to MINPACK: one call each is cheaper than the batch's per-iteration overhead.
    p, ok = fit_batch(_BATCHED[model], x, y, w, p0, tail=max(2, x.shape[0] // 50))
    with np.errstate(invalid="ignore"):
        plausible = np.all(np.isfinite(p), axis=1) & (np.max(np.abs(p), axis=1) < 1e4) & (np.abs(p[:, 2]) > 0.05)
    for i in np.nonzero(~ok & plausible)[0]:
        refit = fit_curve(model, x[i][w[i]], y[i][w[i]], [float(v) for v in p0[i]])
        if refit is not None:
            p[i], ok[i] = refit, True
    return p, ok


def fit_batch(
    fn: ModelJac,
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    p0: np.ndarray,
    *,
    max_iter: int = 300,
    xtol: float = 1e-10,
    tail: int = 0,
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
        tail: after 20 iterations, stop once at most this many rows are still iterating and report them as not
            converged (a few slow rows would otherwise keep the whole batch looping; the caller refits them).

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
        for iteration in range(max_iter):
            idx = np.nonzero(active)[0]
            if idx.size == 0 or (iteration >= 20 and idx.size <= tail):
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
