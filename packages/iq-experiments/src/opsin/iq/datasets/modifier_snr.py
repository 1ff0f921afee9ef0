"""``DSModifier_snr``: add Gaussian noise to reach a target signal-to-noise ratio."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from opsin.core import get_logger
from opsin.iq._arrays import to_dtype
from opsin.iq.datasets._labels import initial_label
from opsin.iq.datasets._modifier_base import DSModifier, DSModifier_dir
from opsin.iq.datasets._params import Param, check_params
from opsin.iq.datasets.ds_tools import format_param_value

__all__ = ["DSModifier_snr", "add_noise_for_snr"]

logger = get_logger(__name__)


def add_noise_for_snr(img: np.ndarray, snr: float, initial_snr: float, rng: np.random.Generator) -> np.ndarray:
    """Add ``N(0, sigma_add)`` with ``sigma_add = sqrt((mu/snr)^2 - (mu/initial_snr)^2)``, ``mu`` the image mean.

    A target at or above the initial SNR adds nothing (a warning is logged).

    Args:
        img: ``HxW`` or ``HxWxC``, any dtype.
        snr: the target SNR.
        initial_snr: the SNR the image already has.
        rng: the random generator (one per image, see ``DSModifier_dir.rng_for``).

    Returns:
        Same shape and dtype.
    """
    if not snr > 0 or not initial_snr > 0:
        msg = f"snr modifier needs positive SNRs, got snr={snr}, initial_snr={initial_snr}"
        raise ValueError(msg)
    x = img.astype(np.float64)
    mu = float(np.mean(x))
    if snr >= initial_snr:
        logger.warning("snr modifier: target SNR %s >= initial SNR %s, image left unchanged", snr, initial_snr)
        return img.copy()
    sigma_add = math.sqrt((mu / snr) ** 2 - (mu / initial_snr) ** 2)
    return to_dtype(x + rng.normal(0.0, sigma_add, size=x.shape), img.dtype)


class DSModifier_snr(DSModifier_dir):  # noqa: N801
    """Noise to a target SNR, ``params = {"snr": 20, "dataset": "xview"}``; name ``snr{snr}_modifier``.

    The initial SNR is ``params["initial_snr"]`` when present, else the label of ``get_initial_from_dataset`` or
    ``params["dataset"]`` (xview 31, inria-aid 31, DeepGlobe 45). Noise comes from ``rng_for`` (``params["seed"]``,
    default 0), so output is reproducible.

    Raises:
        KeyError: unknown dataset name (lists the known ones).
    """

    algo_version = 1
    #: Accepted parameters (``dataset`` must name a dataset with an SNR label).
    PARAMS: ClassVar[dict[str, Param]] = {
        "snr": Param("float", 0, None, low_open=True),
        "initial_snr": Param("float", 0, None, low_open=True),
        "dataset": Param("str"),
    }

    def __init__(
        self,
        ds_modifier: DSModifier | None = None,
        params: dict[str, Any] | None = None,
        get_initial_from_dataset: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.params = {"snr": 20, "dataset": "xview", **(params or {})}
        check_params(type(self).__name__, self.params, self.PARAMS)
        self.initial_snr = initial_label(self.params, "SNR", get_initial_from_dataset)
        self.name = f"snr{format_param_value(self.params['snr'])}_modifier"
        super().__init__(ds_modifier, **kwargs)

    def _manifest(self, dsw: Any) -> dict[str, Any]:
        return {**super()._manifest(dsw), "initial_snr": self.initial_snr}

    def _mod_img(self, img: np.ndarray) -> np.ndarray:
        return add_noise_for_snr(img, float(self.params["snr"]), self.initial_snr, self.rng_for())
