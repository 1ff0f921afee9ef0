"""Dataset errors (re-exported from :mod:`opsin.iq.errors`, where the hierarchy is drawn)."""

from opsin.iq.errors import (
    AnnotationFormatError,
    DSAnnotationsNotFound,
    DSAnnotationsNotFoundError,
    DSLayoutError,
    DSNotFound,
    DSNotFoundError,
    ImageReadError,
    ModifierParamError,
)

__all__ = [
    "AnnotationFormatError",
    "DSAnnotationsNotFound",
    "DSAnnotationsNotFoundError",
    "DSLayoutError",
    "DSNotFound",
    "DSNotFoundError",
    "ImageReadError",
    "ModifierParamError",
]
