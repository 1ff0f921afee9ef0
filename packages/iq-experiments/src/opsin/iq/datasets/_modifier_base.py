"""The modifier base classes: ``DSModifier`` (copy a dataset) and ``DSModifier_dir`` (per-image processing).

Users write their own degradation by subclassing :class:`DSModifier_dir`, setting ``name`` and ``params`` and
overriding :meth:`DSModifier_dir._mod_img`::

    class DSModifier_gamma(DSModifier_dir):
        algo_version = 1

        def __init__(self, ds_modifier=None, params=None, **kw):
            self.params = {"gamma": 2.2, **(params or {})}
            self.name = f"gamma{format_param_value(self.params['gamma'])}_modifier"
            super().__init__(ds_modifier, **kw)

        def _mod_img(self, img):
            x = img.astype(float) / dtype_max(img.dtype)
            return to_dtype(x ** self.params["gamma"] * dtype_max(img.dtype), img.dtype)

Randomness must come from :meth:`DSModifier_dir.rng_for`, so results do not depend on order or parallelism.
"""

from __future__ import annotations

import copy
import os
import shutil
import zlib
from typing import Any

import numpy as np

from opsin.core import get_logger, parallel_map, replace_dir
from opsin.iq._workers import WORKER_MODULES, resolve_workers
from opsin.iq.datasets import _cache
from opsin.iq.datasets._wrapper import DSWrapper
from opsin.iq.datasets.ds_tools import dataset_fingerprint, list_images
from opsin.iq.io import read_image, write_image

__all__ = ["DSModifier", "DSModifier_dir"]

logger = get_logger(__name__)


class DSModifier:
    """Base modifier: writes a byte copy of a dataset as ``<parent>/<name>#<modifier name>``.

    Args:
        ds_modifier: a modifier applied first (composition: its output is this modifier's input).
        output_root: write modified datasets under this folder instead of next to their source.
        workers: parallelism over images (``DSModifier_dir``): 1 = in the calling process, -1 = every CPU; more
            than 1 uses the shared worker processes when the job outlasts their start (see
            :func:`opsin.core.parallel_map`).
        n_jobs: the original's name for ``workers`` (accepted when ``workers`` is not given).
        output_jpeg_quality: JPEG quality used when writing ``.jpg`` outputs.

    Attributes:
        name: the modifier's own name (``base_modifier``); ``_get_name()`` prefixes the inner modifiers'.
        params: parameters logged with experiments; always has ``"modifier"`` = the full name.
        algo_version: bump in subclasses when the algorithm changes (invalidates cached copies).
    """

    name: str = "base_modifier"
    algo_version: int = 1

    def __init__(
        self,
        ds_modifier: DSModifier | None = None,
        *,
        output_root: str | None = None,
        workers: int | None = None,
        n_jobs: int | None = None,
        output_jpeg_quality: int = 95,
    ) -> None:
        self.ds_modifier = ds_modifier
        self.output_root = os.fspath(output_root) if output_root else None
        self.workers = resolve_workers(workers, n_jobs, default=1)
        self.output_jpeg_quality = int(output_jpeg_quality)
        if not hasattr(self, "params") or self.params is None:
            self.params: dict[str, Any] = {}
        else:
            self.params = dict(self.params)
        self._symlink_mode = False
        self._saved_name: str | None = None
        self.params["modifier"] = self._get_name()

    # -- naming -------------------------------------------------------------------------------------------------
    def _get_name(self) -> str:
        """The full name: inner modifiers' full names, then this one's, joined by ``#``."""
        if self.ds_modifier is not None:
            return f"{self.ds_modifier._get_name()}#{self.name}"
        return self.name

    def log_parameters(self) -> dict[str, Any]:
        """A copy of ``params`` (with ``modifier`` = the full name)."""
        out = dict(self.params)
        out["modifier"] = self._get_name()
        return out

    def _toggle_on_symlink_for_base_modifier(self) -> None:
        """Make ``modify_ds_wrapper`` return its input unchanged (experiments on the original data)."""
        if not self._symlink_mode:
            self._saved_name = self.name
            self.name = "do not duplicate dataset"
            self._symlink_mode = True
            self.params["modifier"] = self._get_name()

    def _toggle_off_symlink_for_base_modifier(self) -> None:
        """Undo :meth:`_toggle_on_symlink_for_base_modifier`."""
        if self._symlink_mode:
            self.name = self._saved_name or type(self).name
            self._symlink_mode = False
            self.params["modifier"] = self._get_name()

    # -- public entry points --------------------------------------------------------------------------------------
    def modify(
        self,
        data_path: str = "",
        data_input: str = "",
        ds_wrapper: DSWrapper | None = None,
        force: bool = False,
    ) -> tuple[str, str, str]:
        """Write (or reuse) the modified copy of a dataset.

        Args:
            data_path: the dataset folder.
            data_input: the image folder (``data_path`` defaults to its parent).
            ds_wrapper: the dataset as a wrapper (instead of the paths).
            force: rebuild even when a valid cached copy exists.

        Returns:
            ``(mod_data_input, mod_data_path, parent_folder)`` of the modified copy.
        """
        if ds_wrapper is None:
            data_path = os.fspath(data_path)
            data_input = os.fspath(data_input)
            if not data_path:
                data_path = os.path.dirname(os.path.normpath(data_input))
            ds_wrapper = DSWrapper(data_path=data_path, data_input=data_input)
        if self.ds_modifier is not None:
            _, child_path, _ = self.ds_modifier.modify(ds_wrapper=ds_wrapper, force=force)
            ds_wrapper = DSWrapper(data_path=child_path)
        return self._modify_cached(ds_wrapper, force=force)

    def modify_ds_wrapper(self, ds_wrapper: DSWrapper, force: bool = False) -> DSWrapper:
        """Apply the modifier and wrap the result (``DSWrapper(data_path=mod_path, ds_modifier=self)``)."""
        if self._symlink_mode:
            return ds_wrapper
        _, mod_path, _ = self.modify(ds_wrapper=ds_wrapper, force=force)
        return DSWrapper(data_path=mod_path, ds_modifier=self)

    # -- cache ----------------------------------------------------------------------------------------------------
    def target_path(self, ds_wrapper: DSWrapper) -> str:
        """Where this modifier writes the copy of ``ds_wrapper``."""
        parent = self.output_root if self.output_root else ds_wrapper.parent_folder
        return os.path.join(parent, f"{ds_wrapper.ds_name}#{self.name}")

    def _source_paths(self, dsw: DSWrapper) -> list[str]:
        return [dsw.data_input, *dsw.get_annotations(), dsw.mask_annotations_dir]

    def _manifest(self, dsw: DSWrapper) -> dict[str, Any]:
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "name": self._get_name(),
            "params": self.log_parameters(),
            "algo_version": self.algo_version,
            "seed": self.params.get("seed", 0),
            "output_jpeg_quality": self.output_jpeg_quality,
            "fingerprint": dataset_fingerprint(self._source_paths(dsw), dsw.data_path),
        }

    def _modify_cached(self, dsw: DSWrapper, force: bool) -> tuple[str, str, str]:
        target = self.target_path(dsw)
        image_dir = os.path.basename(os.path.normpath(dsw.data_input))
        wanted = self._manifest(dsw)
        with _cache.dataset_lock(target):
            if not force and not _cache.cache_disabled():
                found = _cache.read_manifest(target)
                if found is not None and found.get("complete") is True:
                    found = {k: v for k, v in found.items() if k != "complete"}
                    if _cache.json_equal(found, wanted):
                        logger.info("reusing cached modified dataset %s", target)
                        return os.path.join(target, image_dir), target, os.path.dirname(target)
            tmp = _cache.temp_sibling(target)
            try:
                os.makedirs(os.path.join(tmp, image_dir))
                self._build(dsw, tmp, image_dir)
                _cache.write_manifest(tmp, {**wanted, "complete": True})
                replace_dir(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        logger.info("wrote modified dataset %s", target)
        return os.path.join(target, image_dir), target, os.path.dirname(target)

    def _build(self, dsw: DSWrapper, out_path: str, image_dir: str) -> None:
        self._ds_modification(dsw, out_path)
        self._ds_input_modification(dsw.data_input, os.path.join(out_path, image_dir))

    # -- hooks ----------------------------------------------------------------------------------------------------
    def _ds_modification(self, dsw: DSWrapper, mod_path: str) -> None:
        """Copy annotation files and the mask folder verbatim into ``mod_path``."""
        for ann in dsw.get_annotations():
            shutil.copy2(ann, os.path.join(mod_path, os.path.basename(ann)))
        if dsw.mask_annotations_dir and os.path.isdir(dsw.mask_annotations_dir):
            dst = os.path.join(mod_path, os.path.basename(os.path.normpath(dsw.mask_annotations_dir)))
            shutil.copytree(dsw.mask_annotations_dir, dst)

    def _ds_input_modification(self, data_input: str, mod_input: str) -> str:
        """Fill ``mod_input`` from ``data_input`` (base: a byte copy of every file); returns the folder name."""
        for name in sorted(os.listdir(data_input)):
            src = os.path.join(data_input, name)
            if os.path.isfile(src):
                shutil.copy2(src, os.path.join(mod_input, name))
        return os.path.basename(mod_input)


def _process_image(job: tuple[DSModifier_dir, str, str, str]) -> str:
    modifier, src, dst, rel = job
    # A copy per image: the current image (``rng_for``'s default) must not be shared between threads.
    copy.copy(modifier)._mod_file(src, dst, rel)
    return rel


class DSModifier_dir(DSModifier):  # noqa: N801
    """Per-image modifier: reads every image (sorted), calls :meth:`_mod_img`, writes the same file name.

    Subclasses override :meth:`_mod_img` (``HxW`` or ``HxWxC``, any integer or float dtype in, the same out), or
    :meth:`_mod_file` to control the encoding. ``workers`` > 1 spreads the images over processes when that pays.
    """

    name: str = "dir_modifier"

    def __init__(self, ds_modifier: DSModifier | None = None, **kwargs: Any) -> None:
        super().__init__(ds_modifier, **kwargs)
        self._current_rel = ""

    def rng_for(self, rel_path: str | None = None) -> np.random.Generator:
        """The random generator for one image: ``default_rng([seed, crc32(rel_path)])``.

        Args:
            rel_path: the image path relative to the dataset; default: the image being processed.
        """
        rel = self._current_rel if rel_path is None else rel_path
        seed = int(self.params.get("seed", 0))
        return np.random.default_rng([seed, zlib.crc32(rel.encode("utf-8"))])

    def _mod_img(self, img: np.ndarray) -> np.ndarray:
        """Transform one image (base: identity)."""
        return img

    def _mod_file(self, src: str, dst: str, rel: str) -> None:
        """Read ``src``, transform it with :meth:`_mod_img`, write ``dst`` with the source's metadata."""
        img, meta = read_image(src)
        self._current_rel = rel
        out = self._mod_img(img)
        write_image(dst, out, meta, jpeg_quality=self.output_jpeg_quality)

    def _ds_input_modification(self, data_input: str, mod_input: str) -> str:
        names = list_images(data_input)
        folder = os.path.basename(os.path.normpath(data_input))
        jobs = [(self, os.path.join(data_input, n), os.path.join(mod_input, n), f"{folder}/{n}") for n in names]
        desc = f"{self.name} {os.path.basename(os.path.dirname(os.path.normpath(data_input)))}"
        parallel_map(
            _process_image,
            jobs,
            workers=min(self.workers, max(1, len(jobs))),
            desc=desc,
            progress=True,
            preload=(*WORKER_MODULES, type(self).__module__),
        )
        return folder
