"""The one table of modifier names: ``jpg`` -> :class:`DSModifier_jpg`, ... (command line and experiment files)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from opsin.iq.datasets._modifier_base import DSModifier, DSModifier_dir
from opsin.iq.datasets.modifier_blur import DSModifier_blur
from opsin.iq.datasets.modifier_gsd import DSModifier_gsd
from opsin.iq.datasets.modifier_jpg import DSModifier_jpg
from opsin.iq.datasets.modifier_quant import DSModifier_quant
from opsin.iq.datasets.modifier_rer import DSModifier_rer
from opsin.iq.datasets.modifier_sharpness import DSModifier_sharpness
from opsin.iq.datasets.modifier_snr import DSModifier_snr
from opsin.iq.errors import ModifierParamError

__all__ = ["MODIFIERS", "make_modifier", "modifier_class"]

#: Short modifier names -> classes (``base`` and ``dir`` copy the dataset unchanged and take no parameters).
MODIFIERS: Mapping[str, type[DSModifier]] = MappingProxyType(
    {
        "base": DSModifier,
        "blur": DSModifier_blur,
        "dir": DSModifier_dir,
        "gsd": DSModifier_gsd,
        "jpg": DSModifier_jpg,
        "quant": DSModifier_quant,
        "rer": DSModifier_rer,
        "sharpness": DSModifier_sharpness,
        "snr": DSModifier_snr,
    }
)


def modifier_class(kind: str) -> type[DSModifier]:
    """The class registered as ``kind``.

    Raises:
        ModifierParamError: unknown name (the message lists the known ones).
    """
    try:
        return MODIFIERS[kind]
    except KeyError:
        msg = f"unknown modifier {kind!r} (known: {', '.join(sorted(MODIFIERS))})"
        raise ModifierParamError(msg) from None


def make_modifier(kind: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> DSModifier:
    """Build the modifier registered as ``kind`` with ``params`` (checked) and base options (``output_root``...).

    Raises:
        ModifierParamError: unknown modifier, unknown parameter or a value out of range (``base``/``dir`` take
            none besides ``seed``).
    """
    cls = modifier_class(kind)
    given = dict(params or {})
    if cls in (DSModifier, DSModifier_dir):
        extra = sorted(set(given) - {"modifier", "seed"})
        if extra:
            msg = f"{cls.__name__}: unknown parameter {extra[0]!r} (the {kind} modifier takes no parameters)"
            raise ModifierParamError(msg)
        mod = cls(**kwargs)
        if "seed" in given:
            mod.params["seed"] = given["seed"]
        return mod
    return cls(params=given, **kwargs)  # type: ignore[call-arg]
