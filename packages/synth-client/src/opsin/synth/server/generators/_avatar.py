"""Avatar appearance: body shape from gender/height/weight, skin and hair from the identity, outfits.

Materials are assigned per body part; a garment covers a fixed set of parts (a t-shirt the chest, abdomen and upper
arms, jeans the pelvis, thighs and shins, ...), which also defines the ``CLOTHING_1`` (bottom) and ``CLOTHING_2``
(top) masks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from opsin.synth.server.generators._skeleton import BodyShape

__all__ = ["PART_IDS", "Appearance", "body_shape", "make_appearance"]

PART_IDS: dict[str, int] = {
    name: i
    for i, name in enumerate(
        ("thigh", "shin", "upper_arm", "forearm", "hand", "foot", "neck", "pelvis", "abdomen", "chest", "head", "hair")
    )
}
_TOP_PARTS = {"tshirt": ("chest", "abdomen", "upper_arm"), "hoodie": ("chest", "abdomen", "upper_arm", "forearm"),
              "tanktop": ("chest", "abdomen")}  # fmt: skip
_BOTTOM_PARTS = {
    "jeans": ("pelvis", "thigh", "shin"),
    "pants": ("pelvis", "thigh", "shin"),
    "shorts": ("pelvis", "thigh"),
}
# outfit index -> (top, bottom, top colour, bottom colour), per presenting gender
_OUTFITS = {
    "male": (("tshirt", "jeans", (0.55, 0.08, 0.08), (0.08, 0.12, 0.30)),
             ("hoodie", "pants", (0.15, 0.15, 0.17), (0.20, 0.20, 0.22)),
             ("tshirt", "shorts", (0.10, 0.30, 0.55), (0.12, 0.12, 0.12)),
             ("tshirt", "jeans", (0.75, 0.75, 0.72), (0.10, 0.15, 0.35)),
             ("tanktop", "shorts", (0.05, 0.40, 0.20), (0.30, 0.30, 0.32))),
    "female": (("tshirt", "shorts", (0.60, 0.20, 0.40), (0.10, 0.10, 0.12)),
               ("hoodie", "pants", (0.35, 0.30, 0.55), (0.12, 0.12, 0.14)),
               ("tanktop", "pants", (0.10, 0.45, 0.50), (0.15, 0.15, 0.20)),
               ("tshirt", "shorts", (0.80, 0.70, 0.20), (0.10, 0.15, 0.35)),
               ("tanktop", "jeans", (0.70, 0.70, 0.70), (0.10, 0.14, 0.32))),
}  # fmt: skip
_SKIN = np.array([(0.80, 0.60, 0.48), (0.70, 0.50, 0.36), (0.55, 0.38, 0.26), (0.40, 0.26, 0.17), (0.26, 0.16, 0.10)])
_HAIR = np.array([(0.05, 0.04, 0.03), (0.25, 0.15, 0.07), (0.55, 0.40, 0.20), (0.40, 0.12, 0.05), (0.45, 0.45, 0.45)])


class Appearance(NamedTuple):
    """Materials of the avatar.

    Attributes:
        albedo: ``(num parts, 3)`` linear RGB per part id.
        top, bottom: garment kinds (``avatar_attire_top`` / ``_bottom``).
        top_parts, bottom_parts: part ids covered by each garment.
        betas: 10 body-shape coefficients (relative height, relative weight, 8 seeded values).
    """

    albedo: np.ndarray
    top: str
    bottom: str
    top_parts: tuple[int, ...]
    bottom_parts: tuple[int, ...]
    betas: list[float]


def body_shape(params: Mapping[str, Any]) -> BodyShape:
    """Stature from gender and ``relative_height``, girth from ``relative_weight``."""
    female = str(params["gender"]).upper() == "FEMALE"
    stature = (1.63 if female else 1.76) * (1.0 + 0.035 * float(params["relative_height"]))
    girth = max(0.6, 1.0 + 0.09 * float(params["relative_weight"]))
    return BodyShape(stature, girth, female)


def make_appearance(params: Mapping[str, Any], gen: np.random.Generator) -> Appearance:
    """Pick skin, hair and outfit from the parameters (``outfit`` -1 and ``randomize_skin_tone`` use ``gen``)."""
    draws = gen.uniform(size=16)  # fixed number of draws: each aspect keeps its numbers whatever the params
    gender = "female" if str(params["gender"]).upper() == "FEMALE" else "male"
    identity = int(params["avatar_identity"])
    skin = _SKIN[identity % 5]
    if params.get("randomize_skin_tone", False):
        pos = draws[0] * (len(_SKIN) - 1)
        lo = int(pos)
        skin = _SKIN[lo] + (pos - lo) * (_SKIN[min(lo + 1, len(_SKIN) - 1)] - _SKIN[lo])
    hair = _HAIR[(identity // 5) % 5]
    outfit = int(params["outfit"])
    if outfit < 0:
        outfit = int(draws[1] * 5) % 5
    top, bottom, top_colour, bottom_colour = _OUTFITS[gender][outfit]
    jitter = 0.85 + 0.3 * draws[2:8].reshape(2, 3)
    albedo = np.tile(skin, (len(PART_IDS), 1))
    albedo[PART_IDS["hair"]] = hair
    top_parts = tuple(PART_IDS[p] for p in _TOP_PARTS[top])
    bottom_parts = tuple(PART_IDS[p] for p in _BOTTOM_PARTS[bottom])
    albedo[list(top_parts)] = np.clip(np.array(top_colour) * jitter[0], 0, 1)
    albedo[list(bottom_parts)] = np.clip(np.array(bottom_colour) * jitter[1], 0, 1)
    if not params.get("hide_shoes", False):
        albedo[PART_IDS["foot"]] = (0.9, 0.9, 0.9) if draws[8] < 0.5 else (0.08, 0.08, 0.08)
    elif params.get("add_socks", False):
        albedo[PART_IDS["foot"]] = (0.85, 0.85, 0.85)
    betas = [float(params["relative_height"]), float(params["relative_weight"])]
    betas += [float(x) for x in np.round(2.0 * draws[8:16] - 1.0, 6)]
    return Appearance(albedo, top, bottom, top_parts, bottom_parts, betas)
