"""``DSModifier_sr``: the super-resolution extension point.

The package runs no super-resolution model. Subclass :class:`DSModifier_sr` and implement
:meth:`DSModifier_sr._super_resolve` (model inference in your own code)::

    class MySR(DSModifier_sr):
        def _super_resolve(self, img):
            return my_model(img, factor=self.params["upscale_factor"])
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from opsin.iq.datasets._modifier_base import DSModifier, DSModifier_dir
from opsin.iq.datasets._params import Param, check_params
from opsin.iq.datasets.ds_tools import format_param_value
from opsin.iq.errors import ModifierNotConfiguredError

__all__ = ["DSModifier_sr"]


class DSModifier_sr(DSModifier_dir):  # noqa: N801
    """Super-resolution, ``params = {"algo": "MSRN", "source_gsd": 0.6, "target_gsd": 0.3}``.

    The missing one of ``source_gsd``, ``target_gsd`` and ``upscale_factor`` (``source_gsd / target_gsd``) is
    derived from the other two. Name ``{algo}_{source_gsd}_to_{target_gsd}_modifier``.

    Raises:
        ModifierNotConfiguredError: (a ``NotImplementedError``) when applied without a subclass implementing
            :meth:`_super_resolve`.
        ValueError: fewer than two of the three GSD parameters.
    """

    algo_version = 1
    #: Accepted parameters (two of the three GSD values determine the third).
    PARAMS: ClassVar[dict[str, Param]] = {
        "algo": Param("str"),
        "source_gsd": Param("float", 0, None, low_open=True),
        "target_gsd": Param("float", 0, None, low_open=True),
        "upscale_factor": Param("float", 0, None, low_open=True),
    }

    def __init__(
        self, ds_modifier: DSModifier | None = None, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        given = dict(params or {})
        check_params(type(self).__name__, given, self.PARAMS)
        p: dict[str, Any] = {"algo": "MSRN", **given}
        gsd_keys = ("source_gsd", "target_gsd", "upscale_factor")
        if sum(k in given for k in gsd_keys) < 2:
            p.setdefault("source_gsd", 0.6)
            p.setdefault("target_gsd", 0.3)
        if "upscale_factor" not in p:
            p["upscale_factor"] = float(p["source_gsd"]) / float(p["target_gsd"])
        elif "target_gsd" not in p:
            p["target_gsd"] = float(p["source_gsd"]) / float(p["upscale_factor"])
        elif "source_gsd" not in p:
            p["source_gsd"] = float(p["target_gsd"]) * float(p["upscale_factor"])
        self.params = p
        src, dst = format_param_value(p["source_gsd"]), format_param_value(p["target_gsd"])
        self.name = f"{p['algo']}_{src}_to_{dst}_modifier"
        super().__init__(ds_modifier, **kwargs)

    def _super_resolve(self, img: np.ndarray) -> np.ndarray:
        """Super-resolve one image; implement in a subclass."""
        msg = (
            f"DSModifier_sr ({self.params['algo']}) is an extension point: subclass it and implement "
            "_super_resolve(img) -> img with your model"
        )
        raise ModifierNotConfiguredError(msg)

    def _mod_img(self, img: np.ndarray) -> np.ndarray:
        return self._super_resolve(img)

    def _ds_input_modification(self, data_input: str, mod_input: str) -> str:
        if type(self)._super_resolve is DSModifier_sr._super_resolve:
            self._super_resolve(np.zeros((1, 1), np.uint8))
        return super()._ds_input_modification(data_input, mod_input)
