"""``DSModifier_rer``: Gaussian blur to a target relative edge response (RER)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy import special

from opsin.core import get_logger
from opsin.iq.datasets._labels import initial_label
from opsin.iq.datasets._modifier_base import DSModifier, DSModifier_dir
from opsin.iq.datasets._params import Param, check_params
from opsin.iq.datasets.ds_tools import format_param_value
from opsin.iq.datasets.modifier_blur import gaussian_blur

__all__ = ["DSModifier_rer", "blur_for_rer", "rer_of_sigma", "sigma_of_rer"]

logger = get_logger(__name__)


def rer_of_sigma(sigma: float) -> float:
    """RER of a unit step blurred by a Gaussian PSF: ``erf(1 / (2 sqrt(2) sigma))``."""
    return float(special.erf(1.0 / (2.0 * math.sqrt(2.0) * sigma)))


def sigma_of_rer(rer: float) -> float:
    """Inverse of :func:`rer_of_sigma`: ``1 / (2 sqrt(2) erfinv(rer))`` for ``0 < rer < 1``."""
    if not 0.0 < rer < 1.0:
        msg = f"RER must be within (0, 1), got {rer}"
        raise ValueError(msg)
    return float(1.0 / (2.0 * math.sqrt(2.0) * special.erfinv(rer)))


def blur_for_rer(img: np.ndarray, rer: float, initial_rer: float) -> np.ndarray:
    """Blur an image of RER ``initial_rer`` down to ``rer`` (identity plus a warning when ``rer >= initial_rer``).

    The extra blur is a Gaussian of ``s_k = sqrt(s(rer)^2 - s(initial_rer)^2)``, kernel ``2*ceil(4 s_k)+1``,
    separable, reflect-101 border.
    """
    if rer >= initial_rer:
        logger.warning("rer modifier: target RER %s >= initial RER %s, image left unchanged", rer, initial_rer)
        return img.copy()
    s_k = math.sqrt(sigma_of_rer(rer) ** 2 - sigma_of_rer(initial_rer) ** 2)
    return gaussian_blur(img, s_k, 2 * math.ceil(4 * s_k) + 1)


class DSModifier_rer(DSModifier_dir):  # noqa: N801
    """Blur to a target RER, ``params = {"rer": 0.2, "dataset": "xview"}``; name ``rer{rer}_modifier``.

    The initial RER is ``params["initial_rer"]`` when present, else the label of ``get_initial_from_dataset`` or
    ``params["dataset"]`` (xview 0.56, inria-aid 0.56, DeepGlobe 0.54).

    Raises:
        KeyError: unknown dataset name (lists the known ones).
    """

    algo_version = 1
    #: Accepted parameters (``dataset`` must name a dataset with an RER label).
    PARAMS: ClassVar[dict[str, Param]] = {
        "rer": Param("float", 0, 1, low_open=True, high_open=True),
        "initial_rer": Param("float", 0, 1, low_open=True, high_open=True),
        "dataset": Param("str"),
    }

    def __init__(
        self,
        ds_modifier: DSModifier | None = None,
        params: dict[str, Any] | None = None,
        get_initial_from_dataset: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.params = {"rer": 0.2, "dataset": "xview", **(params or {})}
        check_params(type(self).__name__, self.params, self.PARAMS)
        self.initial_rer = initial_label(self.params, "RER", get_initial_from_dataset)
        sigma_of_rer(float(self.params["rer"]))  # validate early
        self.name = f"rer{format_param_value(self.params['rer'])}_modifier"
        super().__init__(ds_modifier, **kwargs)

    def _manifest(self, dsw: Any) -> dict[str, Any]:
        return {**super()._manifest(dsw), "initial_rer": self.initial_rer}

    def _mod_img(self, img: np.ndarray) -> np.ndarray:
        return blur_for_rer(img, float(self.params["rer"]), self.initial_rer)
