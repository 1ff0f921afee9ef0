"""HDF5 files of precomputed features: dataset ``data`` (N, C, H, W), one row per ``delta_t`` window.

Row i is the feature of ``[start_ts + i*delta_t, start_ts + (i+1)*delta_t)`` computed on its own (num_tbins = 1).
Attributes of ``data``: ``events_to_tensor`` (bytes), ``delta_t`` (uint32), ``event_input_height``,
``event_input_width`` (sensor size before downsampling), ``shape`` (C, H, W), ``mode`` ("delta_t"), ``n_events``
(0), the preprocessing keyword arguments, ``store_as_uint8`` when set, ``start_ts`` and ``generator``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from opsin.core import temp_sibling
from opsin.eventflow.errors import ConfigError, FormatError
from opsin.eventflow.io._h5util import AtomicStreamWriter, open_h5

__all__ = ["FeatureWriter", "H5FeaturesReader", "write_features"]


def _attr_value(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return np.bool_(value)
    if value is None:
        return "None"
    if isinstance(value, list | tuple):
        return np.asarray(value)
    return value


class FeatureWriter(AtomicStreamWriter):
    """Appends feature rows to a new HDF5 features file, written atomically on :meth:`close`.

    Args:
        path: the output ``{stem}.h5``.
        shape: (C, H, W) of one row.
        preprocess: the preprocessing name (stored as bytes in ``events_to_tensor``).
        delta_t: the row duration in us.
        event_input_height: sensor height before downsampling.
        event_input_width: sensor width before downsampling.
        start_ts: timestamp of row 0 in the recording (us).
        store_as_uint8: store round(255 x) as uint8 (x must lie in [0, 1]).
        preprocess_kwargs: keyword arguments of the preprocessing, stored as attributes.
        signed: whether the feature is signed (uint8 storage is then refused).

    Raises:
        ConfigError: uint8 storage of a signed feature.
    """

    def __init__(
        self,
        path: str | Path,
        shape: tuple[int, int, int],
        preprocess: str,
        delta_t: int,
        event_input_height: int,
        event_input_width: int,
        start_ts: int = 0,
        store_as_uint8: bool = False,
        preprocess_kwargs: Mapping[str, Any] | None = None,
        signed: bool = False,
    ) -> None:
        if store_as_uint8 and signed:
            message = f"{path}: store_as_uint8 is refused for the signed feature {preprocess!r} (values in [-1, 1])"
            raise ConfigError(message)
        from opsin.eventflow import __version__

        self.path = Path(path)
        self.store_as_uint8 = store_as_uint8
        c, h, w = (int(v) for v in shape)
        self._tmp = temp_sibling(self.path)
        self._fh: h5py.File | None = h5py.File(self._tmp, "w")
        dtype = np.uint8 if store_as_uint8 else np.float32
        self._ds = self._fh.create_dataset(
            "data", shape=(0, c, h, w), maxshape=(None, c, h, w), chunks=(1, c, h, w), dtype=dtype, compression="gzip"
        )
        attrs = self._ds.attrs
        attrs["events_to_tensor"] = np.bytes_(preprocess.encode())
        attrs["delta_t"] = np.uint32(delta_t)
        attrs["event_input_height"] = int(event_input_height)
        attrs["event_input_width"] = int(event_input_width)
        attrs["shape"] = np.asarray([c, h, w], dtype=np.int64)
        attrs["mode"] = "delta_t"
        attrs["n_events"] = 0
        attrs["start_ts"] = np.int64(start_ts)
        attrs["generator"] = f"opsin-event-flow {__version__}"
        if store_as_uint8:
            attrs["store_as_uint8"] = np.bool_(True)
        for key, value in (preprocess_kwargs or {}).items():
            attrs[key] = _attr_value(value)

    def write(self, rows: np.ndarray) -> None:
        """Appends rows of shape (n, C, H, W) (or one (C, H, W) row).

        Raises:
            ConfigError: wrong row shape, or values outside [0, 1] with uint8 storage.
        """
        if self._fh is None:
            message = f"{self.path}: FeatureWriter is closed"
            raise ConfigError(message)
        arr = np.asarray(rows, dtype=np.float32)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.shape[1:] != self._ds.shape[1:]:
            message = f"{self.path}: rows of shape {arr.shape[1:]} do not match the file's {self._ds.shape[1:]}"
            raise ConfigError(message)
        if self.store_as_uint8:
            if arr.size and (arr.min() < 0 or arr.max() > 1):
                message = f"{self.path}: store_as_uint8 needs values in [0, 1], got [{arr.min()}, {arr.max()}]"
                raise ConfigError(message)
            stored: np.ndarray = np.round(arr * 255).astype(np.uint8)
        else:
            stored = arr
        n0 = self._ds.shape[0]
        self._ds.resize(n0 + arr.shape[0], axis=0)
        self._ds[n0:] = stored


def write_features(
    path: str | Path,
    data: np.ndarray,
    preprocess: str,
    delta_t: int,
    event_input_height: int,
    event_input_width: int,
    **kwargs: Any,
) -> Path:
    """Writes a whole (N, C, H, W) feature array; keyword arguments as :class:`FeatureWriter`.

    Returns:
        The path written.
    """
    arr = np.asarray(data)
    with FeatureWriter(
        path, arr.shape[1:], preprocess, delta_t, event_input_height, event_input_width, **kwargs
    ) as writer:
        writer.write(arr)
    return Path(path)


def _decode(value: Any) -> Any:
    if isinstance(value, bytes | np.bytes_):
        return value.decode()
    return value


class H5FeaturesReader:
    """Reads an HDF5 features file.

    Args:
        path: the ``.h5`` file with a ``data`` dataset.

    Attributes:
        path: the file.
        preprocess: the ``events_to_tensor`` name.
        delta_t: row duration (us).
        num_frames: number of rows N.
        shape: (C, H, W).
        event_input_height: sensor height before downsampling.
        event_input_width: sensor width before downsampling.
        start_ts: timestamp of row 0 (us).
        mode: "delta_t" or "n_events".
        attrs: every attribute, decoded.

    Raises:
        FormatError: no ``data`` dataset, or missing ``delta_t`` / ``events_to_tensor`` attributes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh = open_h5(self.path)
        if "data" not in self._fh:
            self._fh.close()
            raise FormatError(self.path, None, "no 'data' dataset: not a features file")
        self._ds = self._fh["data"]
        self.attrs = {k: _decode(v) for k, v in self._ds.attrs.items()}
        missing = [k for k in ("delta_t", "events_to_tensor") if k not in self.attrs]
        if missing or self._ds.ndim != 4:
            self._fh.close()
            raise FormatError(self.path, None, f"features file lacks attributes {missing} or is not 4-D")
        self.preprocess = str(self.attrs["events_to_tensor"])
        self.delta_t = int(self.attrs["delta_t"])
        self.num_frames = int(self._ds.shape[0])
        self.shape: tuple[int, int, int] = tuple(int(v) for v in self._ds.shape[1:])  # type: ignore[assignment]
        self.mode = str(self.attrs.get("mode", "delta_t"))
        self.start_ts = int(self.attrs.get("start_ts", 0))
        self.store_as_uint8 = self._ds.dtype == np.uint8
        h, w = self.shape[1], self.shape[2]
        if "event_input_height" in self.attrs and "event_input_width" in self.attrs:
            self.event_input_height = int(self.attrs["event_input_height"])
            self.event_input_width = int(self.attrs["event_input_width"])
        else:
            ds = int(self.attrs.get("downsampling_factor", self.attrs.get("shift", 0)))
            self.event_input_height, self.event_input_width = h << ds, w << ds

    @property
    def last_timestamps(self) -> np.ndarray | None:
        """The (N,) int64 ``last_timestamps`` of "n_events" files (read-only mode), else None."""
        if "last_timestamps" not in self._fh:
            return None
        return np.asarray(self._fh["last_timestamps"][...], dtype=np.int64)

    @property
    def duration(self) -> int:
        """N * delta_t, in us."""
        return self.num_frames * self.delta_t

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Returns rows ``[start, stop)`` as float32 (uint8 storage divided by 255)."""
        rows = np.asarray(self._ds[start:stop])
        if rows.dtype == np.uint8:
            return rows.astype(np.float32) / np.float32(255)
        return rows.astype(np.float32, copy=False)

    def read(self, start_ts: int, duration: int) -> np.ndarray:
        """Returns the rows of ``[start_ts, start_ts + duration)`` relative to row 0.

        Raises:
            ConfigError: ``start_ts`` or ``duration`` not a multiple of ``delta_t``.
        """
        if start_ts % self.delta_t or duration % self.delta_t:
            message = (
                f"{self.path}: start {start_ts} and duration {duration} must be multiples of delta_t={self.delta_t}"
            )
            raise ConfigError(message)
        return self.read_rows(start_ts // self.delta_t, (start_ts + duration) // self.delta_t)

    def close(self) -> None:
        """Closes the file."""
        self._fh.close()

    def __enter__(self) -> H5FeaturesReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
