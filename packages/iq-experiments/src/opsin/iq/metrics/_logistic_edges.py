"""The original's edge measurement: logistic fits to the ESF, gates, and the values of the accepted edges.

For a stack of centred ESFs (one patch width), all at once where the work is array-shaped:

1. LSF = ``|diff(ESF)|``; a Gaussian fitted to it (without the samples the centring rolled around) sets the
   windows: ESF within ``round(2 (|x0| + 3 s)) / 2 + 0.5`` of the centre, LSF within the ``5 s`` analogue; a
   second Gaussian fit on the LSF window must succeed.
2. A logistic fitted to the ESF window gives the plateaus ``vmin`` / ``vmax`` (the model 4 px beyond the window);
   the ESF normalised by them gets a second logistic fit.
3. Gates: R^2 of that fit, and the edge SNR (1 / noise of the flat ends of the normalised ESF).
4. Values: RER on the normalised fit; FWHM and MTF from the LSF of the raw fit.

Window edges, index pairings and gates are the original's (they decide which edges count and how many samples
the MTF sees); the fits start from guesses derived from the Gaussian fit instead of the original's fixed ones and
converge to the same minima in a few iterations.
"""

from __future__ import annotations

import math

import numpy as np

from opsin.iq.metrics._edge_values import EdgeResult, fwhm_from_lsf, mtf_from_lsf, mtf_nyquist, rer_from_esf
from opsin.iq.metrics._esf_models import gaussian, model_esf
from opsin.iq.metrics._esf_profile import EsfProfile, esf_grid
from opsin.iq.metrics._fit import fit_rows

__all__ = ["measure_logistic"]

_LSF_GUESS = (50.0, 0.0, 1.0)


def _windows(x: np.ndarray, shifts: np.ndarray, lsf_fit: np.ndarray, fitted: np.ndarray) -> tuple[np.ndarray, ...]:
    """Masks of the ESF window (on ``x``) and of the LSF window (on the LSF index), per edge."""
    last = float(x[-1])
    with np.errstate(invalid="ignore"):
        esf_lim = np.where(fitted, np.round((np.abs(lsf_fit[:, 1]) + 3 * lsf_fit[:, 2]) * 2) / 2 + 0.5, last)
        lsf_lim = np.where(fitted, np.round((np.abs(lsf_fit[:, 1]) + 5 * lsf_fit[:, 2]) * 2) / 2 + 0.5, last)
    esf_lim = np.where(esf_lim <= 0, last, esf_lim)
    esf_sel = (x[None, :] >= -esf_lim[:, None]) & (x[None, :] <= esf_lim[:, None])
    esf_sel[np.arange(x.size) == np.argmax(esf_sel, axis=1)[:, None]] = False  # the original drops the first
    lsf_sel = (x[None, :] >= -lsf_lim[:, None]) & (x[None, :] <= lsf_lim[:, None])
    rank = np.cumsum(lsf_sel, axis=1) - 1
    count = lsf_sel.sum(axis=1)
    # When the window reaches x[-shift] it loses `shift` samples at each end (all of them when shift is 0).
    trim = lsf_lim >= x[-shifts]
    cut = np.where(trim, shifts, 0)
    keep = lsf_sel & (rank >= cut[:, None]) & (rank < (count - cut)[:, None])
    keep &= ~(trim & (shifts == 0))[:, None]
    # Pairs LSF[t] with x[t + 1] for t in the window but its last sample.
    lsf_window = keep[:, :-1] & (np.cumsum(keep, axis=1)[:, :-1] < keep.sum(axis=1)[:, None])
    return esf_sel, lsf_window


def measure_logistic(
    profiles: list[EsfProfile], width: int, *, r2_threshold: float, snr_threshold: float, want_mtf_curve: bool
) -> list[EdgeResult | None]:
    """Measure the edges of one patch width (see the module docstring); None where a gate rejects an edge."""
    nb = len(profiles)
    out: list[EdgeResult | None] = [None] * nb
    if nb == 0:
        return out
    x = esf_grid(width)
    esfs = np.stack([p.esf for p in profiles])
    shifts = np.abs(np.array([p.shift for p in profiles]))
    lsf = np.abs(np.diff(esfs, axis=1))
    x_lsf = np.broadcast_to(x[1:], lsf.shape)
    t = np.arange(lsf.shape[1])[None, :]
    unrolled = (t >= shifts[:, None]) & (t <= lsf.shape[1] - 1 - shifts[:, None])
    guess = np.tile(_LSF_GUESS, (nb, 1))
    lsf_fit, fitted = fit_rows(gaussian, x_lsf, lsf, unrolled, guess)
    esf_sel, lsf_window = _windows(x, shifts, lsf_fit, fitted)
    # Only a gate (the fit must succeed); started from the first fit, it converges in a few steps.
    _refit, refitted = fit_rows(gaussian, x_lsf, lsf, lsf_window, np.where(fitted[:, None], lsf_fit, guess))
    alive = refitted & (lsf_window.sum(axis=1) >= 3)
    # An edge whose window spans the whole grid has no plateau to anchor the fit; there the original's optimiser
    # may stall from its fixed guess and reject the edge. Keep that: fit those from the same fixed guesses.
    wide = np.nonzero(alive & (esf_sel.sum(axis=1) >= x.size - 1))[0]
    for i, result in zip(wide, _measure_wide(x[1:], esfs[wide][:, 1:], r2_threshold, snr_threshold, want_mtf_curve)):
        out[int(i)] = result
    alive[wide] = False
    idx = np.nonzero(alive)[0]
    if idx.size == 0:
        return out
    sel = esf_sel[idx]
    first = np.argmax(sel, axis=1)
    last = x.size - 1 - np.argmax(sel[:, ::-1], axis=1)
    rows = np.arange(idx.size)[:, None]
    left = esfs[idx][rows, np.minimum(first[:, None] + np.arange(5), last[:, None])].mean(axis=1)
    right = esfs[idx][rows, np.maximum(last[:, None] - np.arange(5), first[:, None])].mean(axis=1)
    scale = math.sqrt(3.0) / math.pi * np.abs(lsf_fit[idx, 2])
    start = np.stack([left - right, lsf_fit[idx, 1], np.where(fitted[idx], scale, 0.5), right], axis=1)
    x_esf = np.broadcast_to(x, (idx.size, x.size))
    raw, raw_ok = fit_rows(model_esf, x_esf, esfs[idx], sel, start)
    kept, norms, spans, lows = [], [], [], []
    for k in np.nonzero(raw_ok)[0]:
        xs = x[sel[k]]
        low, high = _plateaus(xs, raw[k])
        if high == low:
            continue
        kept.append(k)
        norms.append((esfs[idx[k]] - low) / (high - low))
        spans.append(high - low)
        lows.append(low)
    if not kept:
        return out
    ks = np.array(kept)
    span_of, low_of = np.array(spans), np.array(lows)
    # The normalised ESF is an affine map of the raw one, so the raw fit mapped the same way is its minimum
    # (up to the logistic's (a, c) -> (-a, -c) symmetry, which draws the same curve); polish it there.
    norm_start = np.stack([raw[ks, 0] / span_of, raw[ks, 1], raw[ks, 2], (raw[ks, 3] - low_of) / span_of], axis=1)
    norm_fit, norm_ok = fit_rows(model_esf, x_esf[ks], np.stack(norms), sel[ks], norm_start)
    for j, k in enumerate(ks):
        if norm_ok[j]:
            mask = sel[k]
            out[int(idx[k])] = _edge_result(
                x[mask], norms[j][mask], raw[k], norm_fit[j], r2_threshold, snr_threshold, want_mtf_curve
            )
    return out


def _plateaus(xs: np.ndarray, raw: np.ndarray) -> tuple[float, float]:
    """``(vmin, vmax)``: the raw fit's extremes over 4 px before and after the window (0.1 px steps)."""
    high = float(np.max(model_esf(np.arange(float(xs[-1]), float(xs[-1]) + 4, 0.1), *raw)))
    low = float(np.min(model_esf(np.arange(float(xs[0]) - 4, float(xs[0]), 0.1), *raw)))
    return low, high


def _measure_wide(
    xs: np.ndarray, esfs: np.ndarray, r2_threshold: float, snr_threshold: float, want_mtf_curve: bool
) -> list[EdgeResult | None]:
    """Steps 2-4 for edges whose window is all of ``xs``, from the original's fixed starting points."""
    out: list[EdgeResult | None] = [None] * esfs.shape[0]
    if not out:
        return out
    x_rows = np.broadcast_to(xs, esfs.shape)
    every = np.ones(esfs.shape, dtype=bool)
    start = np.stack(
        [np.median(esfs, axis=1), np.full(len(out), 0.5), np.full(len(out), -0.5), np.quantile(esfs, 0.05, axis=1)],
        axis=1,
    )
    raw, raw_ok = fit_rows(model_esf, x_rows, esfs, every, start)
    kept, norms = [], []
    for k in np.nonzero(raw_ok)[0]:
        low, high = _plateaus(xs, raw[k])
        if high != low:
            kept.append(int(k))
            norms.append((esfs[k] - low) / (high - low))
    if not kept:
        return out
    norm_start = np.tile([1.0, 0.5, 0.5, 0.0], (len(kept), 1))
    norm_fit, norm_ok = fit_rows(model_esf, x_rows[kept], np.stack(norms), every[kept], norm_start)
    for j, row in enumerate(kept):
        if norm_ok[j]:
            out[row] = _edge_result(xs, norms[j], raw[row], norm_fit[j], r2_threshold, snr_threshold, want_mtf_curve)
    return out


def _edge_snr_ok(xs: np.ndarray, norm: np.ndarray, norm_fit: np.ndarray, snr_threshold: float) -> bool:
    """The original's edge-SNR gate: noise of the flat ends (slope below 5 % of the steepest) of the ESF."""
    slope = np.diff(model_esf(xs, *norm_fit))
    with np.errstate(divide="ignore", invalid="ignore"):
        flat = np.nonzero(slope / np.max(slope) < 0.05)[0]
    if flat.size <= 5:
        return False
    gaps = np.nonzero(np.diff(flat) > 1)[0]
    if gaps.size == 0:
        return False
    left, right = norm[: flat[gaps[0]]], norm[flat[gaps[0] + 1] :]
    if left.size == 0 or right.size == 0:
        return False
    noise = float(np.nanmean([np.std(left), np.std(right)]))
    return noise > 0 and 1.0 / noise >= snr_threshold


def _edge_result(
    xs: np.ndarray,
    norm: np.ndarray,
    raw: np.ndarray,
    norm_fit: np.ndarray,
    r2_threshold: float,
    snr_threshold: float,
    want_mtf_curve: bool,
) -> EdgeResult | None:
    """Gates (R^2, edge SNR) and values of one edge from its raw and normalised fits."""
    predicted = model_esf(xs, *norm_fit)
    total = float(np.sum((norm - norm.mean()) ** 2))
    if total <= 0 or 1.0 - float(np.sum((norm - predicted) ** 2)) / total < r2_threshold:
        return None
    if not _edge_snr_ok(xs, norm, norm_fit, snr_threshold):
        return None
    lsf = np.abs(np.diff(model_esf(xs, *raw)))
    curve = mtf_from_lsf(lsf)
    nyq, half_nyq = mtf_nyquist(curve)
    return EdgeResult(
        rer=rer_from_esf(lambda t: model_esf(t, *norm_fit), xs),
        fwhm=fwhm_from_lsf(lsf),
        mtf_nyq=nyq,
        mtf_half_nyq=half_nyq,
        mtf_curve=curve if want_mtf_curve and nyq is not None else None,
    )
