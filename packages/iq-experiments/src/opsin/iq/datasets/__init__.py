"""Datasets and modifiers: ``DSWrapper``, the ``DSModifier`` family, the modifier registry and the dataset errors."""

from opsin.iq.datasets._modifier_base import DSModifier, DSModifier_dir
from opsin.iq.datasets._registry import MODIFIERS, make_modifier, modifier_class
from opsin.iq.datasets._wrapper import DSWrapper
from opsin.iq.datasets.ds_exceptions import (
    DSAnnotationsNotFound,
    DSAnnotationsNotFoundError,
    DSLayoutError,
    DSNotFound,
    DSNotFoundError,
    ImageReadError,
    ModifierParamError,
)
from opsin.iq.datasets.modifier_blur import DSModifier_blur
from opsin.iq.datasets.modifier_gsd import DSModifier_gsd
from opsin.iq.datasets.modifier_jpg import DSModifier_jpg
from opsin.iq.datasets.modifier_quant import DSModifier_quant
from opsin.iq.datasets.modifier_rer import DSModifier_rer
from opsin.iq.datasets.modifier_sharpness import DSModifier_sharpness
from opsin.iq.datasets.modifier_snr import DSModifier_snr
from opsin.iq.datasets.modifier_sr import DSModifier_sr

__all__ = [
    "DSAnnotationsNotFound",
    "DSAnnotationsNotFoundError",
    "DSLayoutError",
    "DSModifier",
    "DSModifier_blur",
    "DSModifier_dir",
    "DSModifier_gsd",
    "DSModifier_jpg",
    "DSModifier_quant",
    "DSModifier_rer",
    "DSModifier_sharpness",
    "DSModifier_snr",
    "DSModifier_sr",
    "DSNotFound",
    "DSNotFoundError",
    "DSWrapper",
    "ImageReadError",
    "MODIFIERS",
    "ModifierParamError",
    "make_modifier",
    "modifier_class",
]
