"""Edge spread function of one edge patch and the sharpness values derived from it.

Steps 4-8 of section 4.3 of the package specification: sub-pixel edge line, transects, ESF, LSF, model fits,
gates, and RER / FWHM / MTF. ``esf_model="logistic"`` reproduces the original iquaflow numbers; ``"erf"`` fits a
Gaussian-blurred step to the pooled samples and derives the values analytically (accurate for Gaussian PSFs).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import interpolate, optimize, special

from opsin.iq.metrics._fit import fit_batch, gaussian_batch, logistic_batch

__all__ = ["EdgeResult", "gaussian", "measure_edge", "measure_edges", "model_esf", "model_esf_erf"]

EdgeResult = dict[str, Any]

_SQRT2 = math.sqrt(2.0)
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def model_esf(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """Logistic edge model ``a / (1 + exp((x - b) / c)) + d``."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return a / (1.0 + np.exp((x - b) / c)) + d


def model_esf_erf(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """Gaussian-blurred step ``a * Phi((x - b) / c) + d``."""
    return a * 0.5 * (1.0 + special.erf((x - b) / (c * _SQRT2))) + d


def gaussian(x: np.ndarray, a: float, x0: float, sigma: float) -> np.ndarray:
    """``a * exp(-(x - x0)^2 / (2 sigma^2))``."""
    return a * np.exp(-((x - x0) ** 2) / (2.0 * sigma**2))


def _jac_model_esf(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """Column-wise Jacobian (4, n) of :func:`model_esf`."""
    out = np.empty((4, x.size))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        e = np.exp((x - b) / c)
        q = 1.0 / (1.0 + e)
        dq = -(q * q) * e  # d q / d((x - b) / c)
        out[0] = q
        out[1] = -a * dq / c
        out[2] = out[1] * (x - b) / c
    out[3] = 1.0
    return out


def _jac_gaussian(x: np.ndarray, a: float, x0: float, sigma: float) -> np.ndarray:
    """Column-wise Jacobian (3, n) of :func:`gaussian`."""
    out = np.empty((3, x.size))
    u = x - x0
    g = np.exp(-(u * u) / (2.0 * sigma * sigma))
    out[0] = g
    out[1] = a * g * u / (sigma * sigma)
    out[2] = out[1] * u / sigma
    return out


_JACOBIANS: dict[Any, Any] = {}


def _fit(f: Any, x: np.ndarray, y: np.ndarray, p0: list[float]) -> np.ndarray | None:
    """Least-squares fit of ``f(x, *p)`` to ``y`` (MINPACK Levenberg-Marquardt, as ``curve_fit`` runs it)."""
    jac = _JACOBIANS.get(f)

    def resid(p: np.ndarray) -> np.ndarray:
        return np.asarray(f(x, *p) - y)

    def dfun(p: np.ndarray) -> np.ndarray:
        return np.asarray(jac(x, *p))  # type: ignore[misc]

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            popt, _cov, _info, _msg, ier = optimize.leastsq(
                resid,
                np.asarray(p0, dtype=np.float64),
                Dfun=dfun if jac is not None else None,
                col_deriv=True,
                full_output=True,
            )
    except (RuntimeError, ValueError, TypeError):
        return None
    if ier not in (1, 2, 3, 4) or not np.all(np.isfinite(popt)):
        return None
    return np.asarray(popt)


_JACOBIANS[model_esf] = _jac_model_esf
_JACOBIANS[gaussian] = _jac_gaussian


def _cubic_batch(dists: list[np.ndarray], vals: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Not-a-knot cubic splines through each ``(dist, val)`` (sorted, same length >= 4), evaluated on ``x``.

    Equivalent to ``scipy.interpolate.CubicSpline(d, v)(x)`` per row, solved for all rows at once.
    """
    xk = np.stack(dists)
    yk = np.stack(vals)
    t, n = xk.shape
    dx = np.diff(xk, axis=1)
    slope = np.diff(yk, axis=1) / dx
    a = np.zeros((t, n, n))
    b = np.zeros((t, n))
    rows = np.arange(1, n - 1)
    a[:, rows, rows - 1] = dx[:, 1:]
    a[:, rows, rows] = 2.0 * (dx[:, :-1] + dx[:, 1:])
    a[:, rows, rows + 1] = dx[:, :-1]
    b[:, 1:-1] = 3.0 * (dx[:, 1:] * slope[:, :-1] + dx[:, :-1] * slope[:, 1:])
    d0 = xk[:, 2] - xk[:, 0]
    a[:, 0, 0], a[:, 0, 1] = dx[:, 1], d0
    b[:, 0] = ((dx[:, 0] + 2.0 * d0) * dx[:, 1] * slope[:, 0] + dx[:, 0] ** 2 * slope[:, 1]) / d0
    d1 = xk[:, -1] - xk[:, -3]
    a[:, -1, -1], a[:, -1, -2] = dx[:, -2], d1
    b[:, -1] = (dx[:, -1] ** 2 * slope[:, -2] + (2.0 * d1 + dx[:, -1]) * dx[:, -2] * slope[:, -1]) / d1
    sk = np.linalg.solve(a, b[..., None])[..., 0]
    k = np.clip((xk[:, None, :] <= x[None, :, None]).sum(axis=2) - 1, 0, n - 2)
    ti = np.arange(t)[:, None]
    x0, h = xk[ti, k], dx[ti, k]
    y0, y1 = yk[ti, k], yk[ti, k + 1]
    s0, s1 = sk[ti, k], sk[ti, k + 1]
    u = (x[None, :] - x0) / h
    h00, h10 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u
    h01, h11 = -2 * u**3 + 3 * u**2, u**3 - u**2
    return np.asarray(h00 * y0 + h10 * h * s0 + h01 * y1 + h11 * h * s1)


def _edge_line(patch: np.ndarray) -> tuple[float, float] | None:
    """Per inner row, the inflection of a cubic fit; a line ``col = m * row + c`` through them."""
    inner = patch[3:-3]
    cols = np.arange(patch.shape[1], dtype=np.float64)
    coef = np.polyfit(cols, inner.T, 3)
    a, b = coef[0], coef[1]
    if np.any(a == 0):
        return None
    infl = -b / (3.0 * a)
    rows = np.arange(3, patch.shape[0] - 3, dtype=np.float64)
    m, c = np.polyfit(rows, infl, 1)
    return float(m), float(c)


def _transects(patch: np.ndarray, m: float, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``(signed distance, value)`` along lines perpendicular to the edge, every half row from row 3.

    Returns:
        ``(dist, vals)``, each ``(transects, width)``; transects leaving the patch or all zero are dropped.
    """
    nrows, ncols = patch.shape
    cols = np.arange(ncols, dtype=np.float64)
    norm = math.sqrt(1.0 + m * m)
    ys = np.arange(3.0, nrows - 3, 0.5)
    ec = m * ys + c
    rr = np.rint(ys[:, None] - m * (cols[None, :] - ec[:, None])).astype(int)
    inside = (rr.min(axis=1) >= 0) & (rr.max(axis=1) < nrows)
    rr = rr[inside]
    vals = patch[rr, np.arange(ncols)[None, :]]
    nonzero = np.any(vals, axis=1)
    rr, vals = rr[nonzero], vals[nonzero]
    dist = (cols[None, :] - (m * rr + c)) / norm
    return dist, vals


def _rer(f: Any, xs: np.ndarray) -> float:
    fx = f(xs)
    x50 = xs[int(np.argmin(np.abs(fx - 0.5)))]
    return float(f(np.array([x50 + 0.5]))[0] - f(np.array([x50 - 0.5]))[0])


def _fwhm_from_lsf(lsf: np.ndarray) -> float | None:
    if lsf.size < 5:
        return None
    idx = np.arange(lsf.size, dtype=np.float64)
    try:
        roots = interpolate.UnivariateSpline(idx, lsf - lsf.max() / 2.0, s=0).roots()
    except Exception:
        return None
    if len(roots) != 2:
        return None
    return float(abs(roots[1] - roots[0]) / 10.0)


def _mtf_from_lsf(lsf: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    n = lsf.size
    if n < 8:
        return None
    y = np.abs(np.fft.fft(lsf))[: n // 2] * 2.0 / n
    if y[0] <= 0:
        return None
    return np.fft.fftfreq(n, 0.1)[: n // 2], y / y[0]


def measure_edge(
    patch: np.ndarray,
    *,
    r2_threshold: float = 0.995,
    snr_threshold: float = 50.0,
    esf_model: str = "logistic",
    want_mtf_curve: bool = False,
) -> EdgeResult | None:
    """Measure one oriented edge patch (edge along the rows, profile along the columns).

    Args:
        patch: ``rows x width`` float patch from :func:`opsin.iq.metrics._edges.extract_patch`.
        r2_threshold: minimum R^2 of the normalised edge fit.
        snr_threshold: minimum edge SNR (1 / plateau noise of the normalised ESF).
        esf_model: ``"logistic"`` (original) or ``"erf"`` (accurate for Gaussian PSFs).
        want_mtf_curve: also return the MTF curve.

    Returns:
        ``{"RER", "FWHM", "MTF_NYQ", "MTF_halfNYQ", ["mtf_curve"]}`` (values may be None), or None when a gate
        rejects the edge.
    """
    return measure_edges(
        [patch],
        r2_threshold=r2_threshold,
        snr_threshold=snr_threshold,
        esf_model=esf_model,
        want_mtf_curve=want_mtf_curve,
    )[0]


def measure_edges(
    patches: list[np.ndarray],
    *,
    r2_threshold: float = 0.995,
    snr_threshold: float = 50.0,
    esf_model: str = "logistic",
    want_mtf_curve: bool = False,
) -> list[EdgeResult | None]:
    """:func:`measure_edge` for many patches; the logistic mode runs its model fits for all edges at once."""
    out: list[EdgeResult | None] = [None] * len(patches)
    groups: dict[int, list[tuple[int, tuple[np.ndarray, np.ndarray]]]] = {}
    for i, patch in enumerate(patches):
        line = _edge_line(patch)
        if line is None:
            continue
        m, c = line
        if esf_model == "erf":
            if abs(math.degrees(math.atan(m))) <= 15:
                out[i] = _measure_erf(patch, m, c, r2_threshold, snr_threshold)
            continue
        if abs(90.0 - math.degrees(math.atan(c))) > 15:  # the original's gate (on the intercept), kept
            continue
        tr = _transects(patch, m, c)
        if tr[0].shape[0] >= 5:
            groups.setdefault(patch.shape[1], []).append((i, tr))
    for width, items in groups.items():
        esfs = _esf_profiles([tr for _i, tr in items], width)
        chosen = [(i, e) for (i, _tr), e in zip(items, esfs, strict=True) if e is not None]
        if not chosen:
            continue
        res = _logistic_batch(width, np.stack([e for _i, e in chosen]), r2_threshold, snr_threshold, want_mtf_curve)
        for (i, _e), r in zip(chosen, res, strict=True):
            out[i] = r
    return out


def _esf_grid(width: int) -> np.ndarray:
    return np.round(np.arange(-(width // 2), width // 2, 0.1), 1)


def _esf_profiles(trs: list[tuple[np.ndarray, np.ndarray]], width: int) -> list[np.ndarray | None]:
    """Per edge, the mean of its transects resampled on the 0.1 px grid, centred on its steepest step.

    All transects of all edges are sorted and splined together; None where fewer than 5 transects are usable.
    """
    x = _esf_grid(width)
    out: list[np.ndarray | None] = [None] * len(trs)
    if not trs:
        return out
    owner = np.concatenate([np.full(d.shape[0], k) for k, (d, _v) in enumerate(trs)])
    dist = np.concatenate([d for d, _v in trs])
    vals = np.concatenate([v for _d, v in trs])
    order = np.argsort(dist, axis=1, kind="stable")
    dist = np.take_along_axis(dist, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    keep = np.concatenate([np.ones((dist.shape[0], 1), dtype=bool), np.diff(dist, axis=1) > 1e-9], axis=1)
    nkeep = keep.sum(axis=1)
    full = nkeep == dist.shape[1]
    profiles = np.full((dist.shape[0], x.size), np.nan)
    if full.any():
        profiles[full] = _cubic_batch(list(dist[full]), list(vals[full]), x)
    for t in np.nonzero(~full & (nkeep >= 4))[0]:
        profiles[t] = interpolate.CubicSpline(dist[t][keep[t]], vals[t][keep[t]])(x)
    usable = full | (nkeep >= 4)
    central = np.nonzero(np.abs(x[:-1]) <= 3)[0]
    for k in range(len(trs)):
        rows = np.nonzero((owner == k) & usable)[0]
        if rows.size < 5:
            continue
        esf = np.mean(profiles[rows], axis=0)
        diff = np.abs(np.diff(esf))
        peak = int(central[np.argmax(diff[central])])
        out[k] = np.asarray(np.roll(esf, esf.size // 2 - peak))
    return out


def _fit_rows(model: Any, x: np.ndarray, y: np.ndarray, w: np.ndarray, p0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched fits of ``model`` (:func:`gaussian` or :func:`model_esf`) with a per-row MINPACK fallback.

    A row the batched iteration leaves unconverged at a plausible point (finite, moderate, width above 0.05 px) is
    refitted alone from ``p0`` as the original did, so a slowly converging but regular fit is not lost.
    """
    p, ok = fit_batch(gaussian_batch if model is gaussian else logistic_batch, x, y, w, p0)
    with np.errstate(invalid="ignore"):
        plausible = np.all(np.isfinite(p), axis=1) & (np.max(np.abs(p), axis=1) < 1e4) & (np.abs(p[:, 2]) > 0.05)
    for i in np.nonzero(~ok & plausible)[0]:
        res = _fit(model, x[i][w[i]], y[i][w[i]], [float(v) for v in p0[i]])
        if res is not None:
            p[i], ok[i] = res, True
    return p, ok


def _logistic_batch(
    width: int, esfs: np.ndarray, r2_threshold: float, snr_threshold: float, curve: bool
) -> list[EdgeResult | None]:
    """Steps 5-8 for a stack of centred ESFs ``(B, N)`` on the grid of ``width``; the fits run batched."""
    nb = esfs.shape[0]
    out: list[EdgeResult | None] = [None] * nb
    x = _esf_grid(width)
    xl = x[:-1]
    lsf = np.abs(np.diff(esfs, axis=1))
    xl_b = np.broadcast_to(xl, lsf.shape)
    g, ok = _fit_rows(gaussian, xl_b, lsf, np.ones(lsf.shape, dtype=bool), np.tile([50.0, 0.0, 1.0], (nb, 1)))
    x0, s = np.abs(g[:, 1]), np.abs(g[:, 2])
    with np.errstate(invalid="ignore"):
        lim_e = np.round(2 * (x0 + 3 * s)) / 2 + 0.5
        lim_l = np.round(2 * (x0 + 5 * s)) / 2 + 0.5
        sel_e = np.abs(x)[None, :] <= lim_e[:, None]
        sel_l = np.abs(xl)[None, :] <= lim_l[:, None]
    ok &= (sel_e.sum(axis=1) >= 8) & (sel_l.sum(axis=1) >= 5)
    # An edge as wide as the window has no plateau to anchor the logistic fit; there the original's optimiser may
    # stall from its fixed starting point and reject the edge. Keep its exact behaviour: fit those one by one.
    wide = ok & sel_e.all(axis=1)
    for i in np.nonzero(wide)[0]:
        out[int(i)] = _logistic_single(
            x, esfs[i], lsf[i], g[i], sel_l[i], r2_threshold=r2_threshold, snr_threshold=snr_threshold, curve=curve
        )
    ok &= ~wide
    idx = np.nonzero(ok)[0]
    _g2, ok2 = _fit_rows(gaussian, xl_b[idx], lsf[idx], sel_l[idx], g[idx])
    idx = idx[ok2]
    x_b = np.broadcast_to(x, esfs.shape)
    # Start the logistic fit from the Gaussian one (centre x0, scale sqrt(3)/pi s, plateaus from the window ends)
    # rather than the original's fixed guess: the same minimum, reached in a few iterations.
    first = np.argmax(sel_e[idx], axis=1)
    last = x.size - 1 - np.argmax(sel_e[idx][:, ::-1], axis=1)
    rows = np.arange(idx.size)[:, None]
    left = esfs[idx][rows, np.minimum(first[:, None] + np.arange(5), last[:, None])].mean(axis=1)
    right = esfs[idx][rows, np.maximum(last[:, None] - np.arange(5), first[:, None])].mean(axis=1)
    p0 = np.stack([left - right, g[idx, 1], math.sqrt(3.0) / math.pi * s[idx], right], axis=1)
    raw, ok3 = _fit_rows(model_esf, x_b[idx], esfs[idx], sel_e[idx], p0)
    idx, raw = idx[ok3], raw[ok3]
    norms = np.zeros((idx.size, x.size))
    keep = np.zeros(idx.size, dtype=bool)
    vmaxs, vmins = np.zeros(idx.size), np.zeros(idx.size)
    for k, i in enumerate(idx):
        xe = x[sel_e[i]]
        x_start, x_end = float(xe[0]), float(xe[-1])
        vmax = float(np.max(model_esf(np.arange(x_end, x_end + 4, 0.1), *raw[k])))
        vmin = float(np.min(model_esf(np.arange(x_start - 4, x_start, 0.1), *raw[k])))
        if vmax == vmin:
            continue
        keep[k] = True
        vmaxs[k], vmins[k] = vmax, vmin
        norms[k] = (esfs[i] - vmin) / (vmax - vmin)
    idx, raw, norms = idx[keep], raw[keep], norms[keep]
    # The normalised ESF is an affine map of the raw one, so the raw fit mapped the same way is its minimum
    # (up to the logistic's (a, c) -> (-a, -c) symmetry, which gives the same curve); polish it.
    span = (vmaxs - vmins)[keep]
    p0n = np.stack([raw[:, 0] / span, raw[:, 1], raw[:, 2], (raw[:, 3] - vmins[keep]) / span], axis=1)
    nfit, ok4 = _fit_rows(model_esf, x_b[idx], norms, sel_e[idx], p0n)
    for k, i in enumerate(idx):
        if ok4[k]:
            sel = sel_e[i]
            out[int(i)] = _logistic_values(x[sel], norms[k][sel], raw[k], nfit[k], r2_threshold, snr_threshold, curve)
    return out


def _logistic_single(
    x: np.ndarray,
    esf: np.ndarray,
    lsf: np.ndarray,
    g: np.ndarray,
    sel_l: np.ndarray,
    *,
    r2_threshold: float,
    snr_threshold: float,
    curve: bool,
) -> EdgeResult | None:
    """Steps 5-8 for one edge with the original's fits (MINPACK, fixed starting points), from the refit on."""
    xl = x[:-1]
    if _fit(gaussian, xl[sel_l], lsf[sel_l], [float(g[0]), float(g[1]), float(g[2])]) is None:
        return None
    raw = _fit(model_esf, x, esf, [float(np.median(esf)), 0.5, -0.5, float(np.percentile(esf, 5))])
    if raw is None:
        return None
    vmax = float(np.max(model_esf(np.arange(float(x[-1]), float(x[-1]) + 4, 0.1), *raw)))
    vmin = float(np.min(model_esf(np.arange(float(x[0]) - 4, float(x[0]), 0.1), *raw)))
    if vmax == vmin:
        return None
    norm = (esf - vmin) / (vmax - vmin)
    nfit = _fit(model_esf, x, norm, [1.0, 0.5, 0.5, 0.0])
    if nfit is None:
        return None
    return _logistic_values(x, norm, raw, nfit, r2_threshold, snr_threshold, curve)


def _logistic_values(
    xe: np.ndarray,
    norm: np.ndarray,
    raw: np.ndarray,
    nfit: np.ndarray,
    r2_threshold: float,
    snr_threshold: float,
    curve: bool,
) -> EdgeResult | None:
    """Gates of step 7 and values of step 8 from the raw and normalised logistic fits."""
    pred = model_esf(xe, *nfit)
    ss_tot = float(np.sum((norm - norm.mean()) ** 2))
    if ss_tot <= 0 or 1.0 - float(np.sum((norm - pred) ** 2)) / ss_tot < r2_threshold:
        return None
    deriv = np.abs(np.gradient(pred))
    flat = deriv < 0.05 * deriv.max()
    ipk = int(np.argmax(deriv))
    left = np.nonzero(flat[:ipk])[0]
    right = ipk + np.nonzero(flat[ipk:])[0]
    if flat.sum() <= 5 or left.size == 0 or right.size == 0:
        return None
    noise = (float(np.std(norm[left])) + float(np.std(norm[right]))) / 2.0
    if noise > 0 and 1.0 / noise < snr_threshold:
        return None
    out: EdgeResult = {"RER": _rer(lambda t: model_esf(t, *nfit), xe)}
    lsf_model = np.abs(np.diff(model_esf(xe, *raw)))
    out["FWHM"] = _fwhm_from_lsf(lsf_model)
    mtf = _mtf_from_lsf(lsf_model)
    out["MTF_NYQ"] = out["MTF_halfNYQ"] = None
    if mtf is not None:
        f, y = mtf
        sel = f < 1.5
        if sel.sum() >= 2:
            p = interpolate.CubicSpline(f[sel], y[sel])
            out["MTF_NYQ"], out["MTF_halfNYQ"] = float(p(0.5)), float(p(0.25))
            if curve:
                out["mtf_curve"] = (f[sel], y[sel])
    return out


def _measure_erf(
    patch: np.ndarray, m0: float, c0: float, r2_threshold: float, snr_threshold: float
) -> EdgeResult | None:
    """Fit ``a Phi(dist / s) + d`` to every pixel of the patch, the edge line ``col = m row + c`` free."""
    rows, cols = np.mgrid[0 : patch.shape[0], 0 : patch.shape[1]].astype(np.float64)
    rr, cc, v = rows.ravel(), cols.ravel(), patch.ravel().astype(np.float64)
    lo, hi = float(np.percentile(v, 5)), float(np.percentile(v, 95))
    if hi <= lo:
        return None
    rising = float(v[cc > m0 * rr + c0].mean()) > float(v[cc < m0 * rr + c0].mean())
    a0, d0 = (hi - lo, lo) if rising else (lo - hi, hi)

    def model(_x: np.ndarray, a: float, m: float, c: float, s: float, d: float) -> np.ndarray:
        dist = (cc - m * rr - c) / math.sqrt(1.0 + m * m)
        return model_esf_erf(dist, a, 0.0, s, d)

    p = _fit(model, rr, v, [a0, m0, c0, 1.0, d0])
    if p is None:
        return None
    a, m, c, s, _off = (float(t) for t in p)
    s = abs(s)
    if a == 0 or s <= 0 or not 0 <= c + m * patch.shape[0] / 2 < patch.shape[1]:
        return None
    pred = model(rr, *p)
    ss_tot = float(np.sum((v - v.mean()) ** 2))
    if ss_tot <= 0 or 1.0 - float(np.sum((v - pred) ** 2)) / ss_tot < r2_threshold:
        return None
    noise = float(np.std(v - pred)) / abs(a)
    if noise > 0 and 1.0 / noise < snr_threshold:
        return None
    two_pi2s2 = 2.0 * math.pi**2 * s * s
    return {
        "RER": float(special.erf(1.0 / (2.0 * _SQRT2 * s))),
        "FWHM": float(_FWHM_PER_SIGMA * s),
        "MTF_NYQ": float(math.exp(-two_pi2s2 * 0.25)),
        "MTF_halfNYQ": float(math.exp(-two_pi2s2 * 0.0625)),
        "sigma": s,
    }
