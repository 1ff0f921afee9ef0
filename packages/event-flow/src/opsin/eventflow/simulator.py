"""ESIM-style event simulator: grey frames with timestamps in, CD events out.

Per pixel: log intensity, per-pixel contrast thresholds (drawn once, spread ``sigma_threshold``), optional
photoreceptor low-pass, leak, threshold crossings with linearly interpolated timestamps, refractory period and shot
noise, following ESIM and v2e.
"""

from __future__ import annotations

import math

import numpy as np

from opsin.core import rng as _named_rng
from opsin.eventflow._events import EVENT_CD
from opsin.eventflow.errors import ConfigError

__all__ = ["PRESETS", "EventSimulator"]

#: Parameter presets accepted by :meth:`EventSimulator.set_config`.
PRESETS: dict[str, dict[str, float]] = {
    "clean": {
        "Cp": 0.2,
        "Cn": 0.2,
        "sigma_threshold": 0.001,
        "cutoff_hz": 0.0,
        "leak_rate_hz": 0.0,
        "shot_noise_rate_hz": 0.0,
        "refractory_period": 0.0,
    },
    "noisy": {
        "Cp": 0.2,
        "Cn": 0.2,
        "sigma_threshold": 0.05,
        "cutoff_hz": 70.0,
        "leak_rate_hz": 0.1,
        "shot_noise_rate_hz": 10.0,
        "refractory_period": 0.0,
    },
}


class EventSimulator:
    """Turns a stream of grey frames into CD events.

    Args:
        height: frame height.
        width: frame width.
        Cp: mean ON threshold (log units).
        Cn: mean OFF threshold (log units).
        refractory_period: minimum time between two events of a pixel, in us.
        sigma_threshold: per-pixel threshold spread (standard deviation).
        cutoff_hz: photoreceptor low-pass cutoff (0: off).
        leak_rate_hz: leak event rate (0: off).
        shot_noise_rate_hz: shot-noise event rate per pixel (0: off).
        log_eps: epsilon of L = ln(I / 255 + eps).
        lin_log: use v2e's lin-log curve (linear below 20 DN) instead.
        seed: seed of the thresholds and of the noise (None: fresh entropy).

    Raises:
        ConfigError: non-positive sizes or thresholds.
    """

    def __init__(
        self,
        height: int,
        width: int,
        Cp: float = 0.2,  # noqa: N803
        Cn: float = 0.2,  # noqa: N803
        refractory_period: float = 0,
        sigma_threshold: float = 0.0,
        cutoff_hz: float = 0,
        leak_rate_hz: float = 0,
        shot_noise_rate_hz: float = 0,
        log_eps: float = 1e-5,
        lin_log: bool = False,
        seed: int | None = None,
    ) -> None:
        if height <= 0 or width <= 0 or Cp <= 0 or Cn <= 0:
            message = f"EventSimulator needs positive sizes and thresholds, got {height}x{width}, Cp={Cp}, Cn={Cn}"
            raise ConfigError(message)
        self.height = int(height)
        self.width = int(width)
        self.Cp = float(Cp)
        self.Cn = float(Cn)
        self.refractory_period = float(refractory_period)
        self.sigma_threshold = float(sigma_threshold)
        self.cutoff_hz = float(cutoff_hz)
        self.leak_rate_hz = float(leak_rate_hz)
        self.shot_noise_rate_hz = float(shot_noise_rate_hz)
        self.log_eps = float(log_eps)
        self.lin_log = bool(lin_log)
        self.seed = seed
        self._threshold_rng = _named_rng(seed, "thresholds") if seed is not None else np.random.default_rng()
        self._noise_rng = _named_rng(seed, "noise") if seed is not None else np.random.default_rng()
        self._draw_thresholds()
        self._chunks: list[np.ndarray] = []
        self.reset()

    def _draw_thresholds(self) -> None:
        shape = (self.height, self.width)
        sigma = self.sigma_threshold
        c_on = self._threshold_rng.normal(self.Cp, sigma, shape) if sigma > 0 else np.full(shape, self.Cp)
        c_off = self._threshold_rng.normal(self.Cn, sigma, shape) if sigma > 0 else np.full(shape, self.Cn)
        self.c_on = np.clip(c_on, 0.01, 1.0)
        self.c_off = np.clip(c_off, 0.01, 1.0)

    def set_config(self, name: str) -> None:
        """Applies a preset (``"clean"`` or ``"noisy"``) and redraws the thresholds.

        Raises:
            ConfigError: unknown preset.
        """
        if name not in PRESETS:
            message = f"unknown simulator preset {name!r}; choices: {sorted(PRESETS)}"
            raise ConfigError(message)
        for key, value in PRESETS[name].items():
            setattr(self, key, float(value))
        self._draw_thresholds()

    def reset(self) -> None:
        """Forgets the previous frames and the pending events (thresholds are kept)."""
        self._l_ref: np.ndarray | None = None
        self._l_prev = np.zeros((self.height, self.width))
        self._lp1 = np.zeros((self.height, self.width))
        self._lp2 = np.zeros((self.height, self.width))
        self._t_prev = 0.0
        self._t_last = np.full((self.height, self.width), -np.inf)
        self._chunks = []

    def log_intensity(self, img: np.ndarray) -> np.ndarray:
        """The log intensity of a frame in DN (0-255)."""
        # Light is never negative: interpolating renderers can undershoot a little, and the log must stay finite.
        intensity = np.maximum(np.asarray(img, dtype=np.float64), 0.0)
        if self.lin_log:
            safe = np.maximum(intensity, 20.0)
            return np.where(intensity <= 20, intensity * math.log(20) / 20, np.log(safe))
        return np.log(intensity / 255.0 + self.log_eps)

    def image_callback(self, img: np.ndarray, ts_us: float) -> None:
        """Feeds one frame taken at ``ts_us``; the first frame only sets the reference.

        Raises:
            ConfigError: wrong frame shape or a timestamp going back in time.
        """
        # Light is never negative; a renderer's undershoot must not drive the photoreceptor filter unstable.
        frame = np.maximum(np.asarray(img, dtype=np.float64), 0.0)
        if frame.shape != (self.height, self.width):
            message = f"frame of shape {frame.shape} does not match the simulator's {(self.height, self.width)}"
            raise ConfigError(message)
        log_now = self.log_intensity(frame)
        if self._l_ref is None:
            self._l_ref = log_now.copy()
            self._l_prev = log_now.copy()
            self._lp1 = log_now.copy()
            self._lp2 = log_now.copy()
            self._t_prev = float(ts_us)
            return
        t0, t1 = self._t_prev, float(ts_us)
        if t1 < t0:
            message = f"frame timestamp {ts_us} is before the previous one ({t0})"
            raise ConfigError(message)
        dt_s = (t1 - t0) * 1e-6
        inten01 = (frame + 20.0) / 275.0
        if self.cutoff_hz > 0:
            tau = 1.0 / (2 * math.pi * self.cutoff_hz)
            a = np.clip(inten01 * dt_s / tau, 0.0, 1.0)
            self._lp1 = (1 - a) * self._lp1 + a * log_now
            self._lp2 = (1 - a) * self._lp2 + a * self._lp1
            signal = self._lp2.copy()
        else:
            signal = log_now
        if self.leak_rate_hz > 0:
            self._l_ref -= dt_s * self.leak_rate_hz * self.c_on
        self._crossings(self._l_prev, signal, t0, t1)
        if self.shot_noise_rate_hz > 0:
            self._shot_noise(inten01, dt_s, t1)
        self._l_prev = signal
        self._t_prev = t1

    def _crossings(self, l0: np.ndarray, l1: np.ndarray, t0: float, t1: float) -> None:
        assert self._l_ref is not None
        delta = l1 - self._l_ref
        pol = np.where(delta > 0, 1.0, -1.0)
        thr = np.where(delta > 0, self.c_on, self.c_off)
        n = np.floor(np.abs(delta) / thr).astype(np.int64)
        ys, xs = np.nonzero(n > 0)
        if ys.size == 0:
            return
        n_px, p_px, c_px = n[ys, xs], pol[ys, xs], thr[ys, xs]
        ref_px, a_px, b_px = self._l_ref[ys, xs], l0[ys, xs], l1[ys, xs]
        slope = b_px - a_px
        out_x, out_y, out_p, out_t = [], [], [], []
        last = self._t_last[ys, xs]
        for j in range(1, int(n_px.max()) + 1):
            active = n_px >= j
            level = ref_px[active] + j * p_px[active] * c_px[active]
            s = slope[active]
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.where(s != 0, np.clip((level - a_px[active]) / np.where(s != 0, s, 1), 0, 1), 1.0)
            t_j = t0 + frac * (t1 - t0)
            if self.refractory_period > 0:
                emit = (t_j - last[active]) >= self.refractory_period
            else:
                emit = np.ones(t_j.size, dtype=bool)
            idx = np.flatnonzero(active)[emit]
            last[idx] = t_j[emit]
            out_x.append(xs[idx])
            out_y.append(ys[idx])
            out_p.append(p_px[idx] > 0)
            out_t.append(np.floor(t_j[emit]).astype(np.int64))
        self._t_last[ys, xs] = last
        self._l_ref[ys, xs] = ref_px + n_px * p_px * c_px
        self._emit(np.concatenate(out_x), np.concatenate(out_y), np.concatenate(out_p), np.concatenate(out_t))

    def _shot_noise(self, inten01: np.ndarray, dt_s: float, t1: float) -> None:
        assert self._l_ref is not None
        base = (self.shot_noise_rate_hz / 2) * dt_s * (1 - 0.75 * inten01)
        p_on = base * (self.Cp / self.c_on)
        p_off = base * (self.Cn / self.c_off)
        u = self._noise_rng.random((self.height, self.width))
        on = u < p_on
        off = (u >= p_on) & (u < p_on + p_off)
        self._l_ref[on] += self.c_on[on]
        self._l_ref[off] -= self.c_off[off]
        ys, xs = np.nonzero(on | off)
        self._emit(xs, ys, on[ys, xs], np.full(ys.size, math.floor(t1), dtype=np.int64))

    def _sort_key(self, ev: np.ndarray) -> np.ndarray:
        return (ev["t"].astype(np.int64) * self.height + ev["y"]) * self.width + ev["x"]

    def _emit(self, xs: np.ndarray, ys: np.ndarray, ps: np.ndarray, ts: np.ndarray) -> None:
        if xs.size == 0:
            return
        ev = np.zeros(xs.size, dtype=EVENT_CD)
        ev["x"], ev["y"], ev["p"], ev["t"] = xs, ys, ps, ts
        # Each frame's events are sorted here, so that get_events mostly only concatenates.
        self._chunks.append(ev[np.argsort(self._sort_key(ev), kind="stable")])

    def get_events(self) -> np.ndarray:
        """The pending events, sorted by t, then y, then x (they stay pending until :meth:`flush_events`)."""
        if not self._chunks:
            return np.zeros(0, dtype=EVENT_CD)
        ev = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        key = self._sort_key(ev)
        if key.size > 1 and (key[1:] < key[:-1]).any():
            ev = ev[np.argsort(key, kind="stable")]
        self._chunks = [ev]
        return ev.copy()

    def flush_events(self) -> None:
        """Drops the pending events."""
        self._chunks = []
