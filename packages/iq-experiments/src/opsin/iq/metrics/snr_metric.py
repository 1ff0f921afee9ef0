"""Signal-to-noise ratio from the image itself: homogeneous blocks (HB) and homogeneous areas (HA).

The default estimators reproduce the original iquaflow numbers (both run 3-9 % high on flat fields: the median of
small-window standard deviations is biased low). ``bias_correction=True`` removes those biases (flat-field
estimates within 2 % of ``mean / noise``).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import special, stats
from skimage.feature import local_binary_pattern

from opsin.core import get_logger, progress
from opsin.iq.io import read_image
from opsin.iq.metrics._runs import image_files, resolve_dataset_images
from opsin.iq.metrics.metric import Metric

__all__ = [
    "SNRBase",
    "SNRHomogeneousArea",
    "SNRHomogeneousBlocks",
    "SNRMetric",
    "snr_function_from_array",
    "snr_function_from_fn",
]

logger = get_logger(__name__)

Pair = tuple[float, float]


def _blocks(x: np.ndarray, p: int, stride: int) -> np.ndarray:
    """Windows ``p x p`` at ``stride`` as an array ``(n, p*p)`` (row-major window order)."""
    view = np.lib.stride_tricks.sliding_window_view(x, (p, p))[::stride, ::stride]
    return view.reshape(-1, p * p)


def _median_std_factor(n: int) -> float:
    """``median(s) / sigma`` for the sample std of ``n`` Gaussian values (ddof 1)."""
    return math.sqrt(float(stats.chi2.ppf(0.5, n - 1)) / (n - 1))


def _inverse_std_factor(n: int) -> float:
    """``E[sigma / s]`` for the sample std of ``n`` Gaussian values (ddof 1)."""
    k = n - 1
    return math.sqrt(k / 2.0) * math.exp(special.gammaln((k - 1) / 2.0) - special.gammaln(k / 2.0))


def combine_channels(pairs: Sequence[tuple[Any, Any]]) -> Pair:
    """Combine per-channel ``(snr, err)`` pairs.

    Channels with a truthy SNR (NaN counts) -> ``nanmean``, error ``max(sqrt(sum err^2) / n, nanstd(snr))``; one
    channel -> its pair; none -> ``(nan, nan)``.
    """
    kept = [(float(s), float(e) if e is not None else float("nan")) for s, e in pairs if s]
    if not kept:
        return (float("nan"), float("nan"))
    if len(kept) == 1:
        return kept[0]
    snr = np.array([k[0] for k in kept])
    err = np.array([k[1] for k in kept])
    n = len(kept)
    return (float(np.nanmean(snr)), float(max(math.sqrt(float(np.nansum(err**2))) / n, float(np.nanstd(snr)))))


class SNRBase:
    """Common driver: per-channel estimate (``_channel``), combined across channels.

    Args:
        each_channel: return ``{"channel i": (snr, err), "mean": (snr, err)}`` instead of one pair.
        debug: log per-channel values at DEBUG level.
        bias_correction: remove the estimators' small-sample biases (new; off reproduces the original).
    """

    def __init__(self, each_channel: bool = False, debug: bool = False, bias_correction: bool = False) -> None:
        self.each_channel = bool(each_channel)
        self.debug = bool(debug)
        self.bias_correction = bool(bias_correction)

    def _channel(self, x: np.ndarray) -> tuple[Any, Any]:
        raise NotImplementedError

    def apply(self, img: np.ndarray) -> Pair | dict[str, Pair]:
        """Estimate the SNR of an ``HxWxC`` (or ``HxW``) image."""
        arr = np.asarray(img)
        if arr.ndim == 2:
            arr = arr[..., None]
        pairs = [self._channel(arr[..., c].astype(np.float64)) for c in range(arr.shape[2])]
        if self.debug:
            logger.debug("%s per channel: %s", type(self).__name__, pairs)
        combined = combine_channels(pairs)
        if self.each_channel:
            out: dict[str, Pair] = {f"channel {i}": (p[0], p[1]) for i, p in enumerate(pairs)}
            out["mean"] = combined
            return out
        return combined


class SNRHomogeneousBlocks(SNRBase):
    """SNR from non-overlapping homogeneous blocks (the original's "HB").

    Per channel: ``med`` = median of the positive pixels; zeros are no-data; per ``p x p`` window the rounded
    mean and the sample std; windows whose rounded mean equals ``med`` give ``s``; ``sigmaclip(s, 4, 2)``;
    noise = median of the clipped; SNR = ``med / noise``, error ``med / noise^2 * std(clipped)``.
    With ``bias_correction`` the noise is ``median(s) / median-factor(p*p)`` (no clipping).
    """

    def __init__(self, patch_size: int = 3, stride: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.stride = int(stride or patch_size)

    def _channel(self, x: np.ndarray) -> tuple[Any, Any]:
        pos = x[x > 0]
        if pos.size == 0:
            return (float("nan"), float("nan"))
        med = float(np.median(pos))
        x = np.where(x == 0, np.nan, x)
        p = self.patch_size
        if x.shape[0] < p or x.shape[1] < p:
            return (float("nan"), float("nan"))
        blocks = _blocks(x, p, self.stride)
        m = np.rint(blocks.mean(axis=1))
        s = blocks.std(axis=1, ddof=1)
        s = s[(m == med) & np.isfinite(s)]
        if s.size == 0:
            return (float("nan"), float("nan"))
        if self.bias_correction:
            noise = float(np.median(s)) / _median_std_factor(p * p)
            spread = float(np.std(s))
        else:
            clipped = stats.sigmaclip(s, low=4, high=2).clipped
            noise = float(np.median(clipped))
            spread = float(np.std(clipped))
        if noise <= 0:
            return (float("nan"), float("nan"))
        return (med / noise, med / noise**2 * spread)


class SNRHomogeneousArea(SNRBase):
    """SNR from homogeneous areas found with local binary patterns (the original's "HA").

    ``local_binary_pattern(x, 8R, R, "uniform")``; a code is flat if ``<= R-1`` or ``>= P-R+1``; windows whose
    flat fraction ``r`` satisfies ``lbp_threshold <= r < 1`` are good (fewer than 10 -> ``(None, None)``). Then
    per good window ``m = int(mean)``, ``s = std(ddof=1)``, ``snr = m / s``; windows with ``m == nanmedian``
    (at least 3) give SNR = mean of their ``snr``, error = their std. With ``bias_correction`` ``m`` is rounded
    and SNR = ``med / sqrt(mean(s^2))`` over those windows (the mean of ratios overestimates by ``E[sigma/s]``).
    """

    def __init__(
        self, patch_size: int = 5, stride: int | None = None, radius: int = 1, lbp_threshold: float = 0.6, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.stride = int(stride or patch_size)
        self.radius = int(radius)
        self.lbp_threshold = float(lbp_threshold)

    def _channel(self, x: np.ndarray) -> tuple[Any, Any]:
        r, p = self.radius, self.patch_size
        npts = 8 * r
        if x.shape[0] < p or x.shape[1] < p:
            return (None, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            lbp = local_binary_pattern(x, npts, r, "uniform")
        flat = ((lbp <= r - 1) | (lbp >= npts - r + 1)).astype(np.float64)
        frac = _blocks(flat, p, self.stride).mean(axis=1)
        good = (frac >= self.lbp_threshold) & (frac < 1)
        if int(good.sum()) < 10:
            return (None, None)
        xn = np.where(x == 0, np.nan, x)
        med = float(np.nanmedian(xn))
        blocks = _blocks(xn, p, self.stride)[good]
        means = blocks.mean(axis=1)
        with np.errstate(invalid="ignore"):
            m = np.rint(means) if self.bias_correction else np.trunc(means)
        s = blocks.std(axis=1, ddof=1)
        s = np.where(s == 0, np.nan, s)
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = m / s
        sel = (m == med) & np.isfinite(snr)
        if int(sel.sum()) < 3:
            return (float("nan"), float("nan"))
        vals = snr[sel]
        if self.bias_correction:
            # unbiased variance pooled over the selected windows instead of the mean of per-window ratios
            noise = math.sqrt(float(np.mean(s[sel] ** 2)))
            return (med / noise, float(np.nanstd(vals)) / _inverse_std_factor(p * p))
        return (float(np.nanmean(vals)), float(np.nanstd(vals)))


def _estimator(method: str, params: dict[str, Any]) -> SNRBase:
    kw = dict(params)
    if method.upper() == "HB":
        return SNRHomogeneousBlocks(**kw)
    if method.upper() == "HA":
        return SNRHomogeneousArea(**kw)
    msg = f"unknown SNR method {method!r}: use 'HB' (homogeneous blocks) or 'HA' (homogeneous areas)"
    raise ValueError(msg)


def snr_function_from_array(
    img: np.ndarray, method: str = "HB", params: dict[str, Any] | None = None
) -> Pair | dict[str, Pair]:
    """SNR of an array. A first axis shorter than 5 means band-first (moved last); 2-D gets a band axis.

    Args:
        img: the image.
        method: ``"HB"`` or ``"HA"``.
        params: estimator options (``patch_size``, ``stride``, ``each_channel``, ``bias_correction``, ...).

    Returns:
        ``(snr, err)``, or per channel with ``each_channel=True``.
    """
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[0] < 5 and arr.shape[2] >= 5:
        arr = np.moveaxis(arr, 0, -1)
    opts = {"patch_size": 3, "debug": False} if params is None else dict(params)
    if method.upper() == "HA" and params is None:
        opts["patch_size"] = 5
    return _estimator(method, opts).apply(arr)


def snr_function_from_fn(
    image: str, ext: str = "tif", method: str = "HB", params: dict[str, Any] | None = None
) -> Pair | dict[str, Pair]:
    """SNR of an image file (``ext`` accepted for compatibility)."""
    arr, _ = read_image(image)
    return snr_function_from_array(arr, method, params)


class SNRMetric(Metric):
    """SNR over the images of a dataset (or of the dataset a run trained on).

    Args:
        experiment_info: an ``ExperimentInfo`` (for :meth:`apply`), or None.
        ext: image extension (``"*"`` for all).
        method: ``"HB"`` or ``"HA"``.
        **kwargs: ``params`` for the estimator (or the estimator options directly).

    ``metric_names``: ``snr_median``, ``snr_mean``, ``snr_std`` (nanmedian, nanmean, nanstd over images).
    """

    name = "snr"

    def __init__(self, experiment_info: Any = None, ext: str = "tif", method: str = "HB", **kwargs: Any) -> None:
        self.experiment_info = experiment_info
        self.ext = ext
        self.method = method
        self.params: dict[str, Any] | None = kwargs.pop("params", None)
        if kwargs:
            self.params = {**(self.params or {}), **kwargs}
        self.metric_names = ["snr_median", "snr_mean", "snr_std"]

    def _summary(self, values: list[float]) -> dict[str, float]:
        arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        if arr.size == 0 or np.isnan(arr).all():
            return dict.fromkeys(self.metric_names, float("nan"))
        return {
            "snr_median": float(np.nanmedian(arr)),
            "snr_mean": float(np.nanmean(arr)),
            "snr_std": float(np.nanstd(arr)),
        }

    def _value(self, res: Any) -> float:
        if isinstance(res, dict):
            res = res["mean"]
        return float("nan") if res[0] is None else float(res[0])

    def apply_array(self, img: np.ndarray) -> dict[str, float]:
        """SNR summary of one array."""
        return self._summary([self._value(snr_function_from_array(img, self.method, self.params))])

    def apply_files(self, files: Sequence[str]) -> dict[str, float]:
        """SNR summary over image files."""
        vals = [
            self._value(snr_function_from_fn(f, self.ext, self.method, self.params))
            for f in progress(list(files), desc="snr", unit="img")
        ]
        return self._summary(vals)

    def apply_folder(self, path: str) -> dict[str, float]:
        """SNR summary over the ``*.<ext>`` images of a folder (a dataset folder: its image folder)."""
        return self.apply_files(image_files(os.fspath(path), self.ext))

    def apply(self, predictions: str, gt_path: str) -> dict[str, float]:
        """SNR summary of the training images of the run whose ``output.json`` is ``predictions``."""
        return self.apply_files(
            image_files(resolve_dataset_images(self.experiment_info, predictions, gt_path), self.ext)
        )
