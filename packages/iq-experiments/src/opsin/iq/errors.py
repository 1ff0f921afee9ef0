"""Errors raised by opsin-iq-experiments.

Every error derives from :class:`IQError` (itself an :class:`opsin.core.OpsinError`) and from the builtin it
really is, so ``except FileNotFoundError`` keeps working for code written against the original iquaflow::

    OpsinError
    └── IQError
        ├── DSNotFound (FileNotFoundError)             a dataset folder or image folder does not exist
        ├── DSAnnotationsNotFound (FileNotFoundError)  no usable json/geojson annotation file
        ├── DSLayoutError (ValueError)                 a dataset folder does not follow the layout conventions
        ├── ImageReadError (OSError)                   an image file cannot be decoded
        ├── AnnotationFormatError (ValueError)         an annotation file is not the format it claims to be
        ├── ModifierNotConfigured (NotImplementedError) an extension-point modifier used without an implementation
        ├── ExperimentNotFound (LookupError)           no mlflow experiment of that name
        └── TaskFailed (RuntimeError)                  a training script failed (only with raise_on_failure)

Messages always name the path (or the experiment) and the reason.
"""

from __future__ import annotations

from opsin.core import OpsinError

__all__ = [
    "AnnotationFormatError",
    "DSAnnotationsNotFound",
    "DSLayoutError",
    "DSNotFound",
    "ExperimentNotFound",
    "IQError",
    "ImageReadError",
    "ModifierNotConfigured",
    "TaskFailed",
]


class IQError(OpsinError):
    """Base class of every opsin-iq-experiments error."""


class DSNotFound(IQError, FileNotFoundError):  # noqa: N818
    """A dataset folder (or its image folder) does not exist."""


class DSAnnotationsNotFound(IQError, FileNotFoundError):  # noqa: N818
    """A dataset has no annotation file where one is required."""


class DSLayoutError(IQError, ValueError):
    """A dataset folder does not follow the layout conventions (names the folder, what was found and expected)."""


class ImageReadError(IQError, OSError):
    """An image file cannot be read or decoded (names the file)."""


class AnnotationFormatError(IQError, ValueError):
    """An annotation file cannot be parsed as the format it claims to be (names the file)."""


class ModifierNotConfigured(IQError, NotImplementedError):  # noqa: N818
    """An extension-point modifier (``DSModifier_sr``) was used without a subclass implementing its hook."""


class ExperimentNotFound(IQError, LookupError):  # noqa: N818
    """No mlflow experiment has the requested name."""


class TaskFailed(IQError, RuntimeError):  # noqa: N818
    """A training task exited with a non-zero code (raised only with ``raise_on_failure=True``)."""
