"""Dataset errors (re-exported from :mod:`opsin.iq.errors`, where the hierarchy is drawn)."""

from opsin.iq.errors import AnnotationFormatError, DSAnnotationsNotFound, DSLayoutError, DSNotFound, ImageReadError

__all__ = ["AnnotationFormatError", "DSAnnotationsNotFound", "DSLayoutError", "DSNotFound", "ImageReadError"]
