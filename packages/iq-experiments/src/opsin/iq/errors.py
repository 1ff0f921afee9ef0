"""Errors raised by opsin-iq-experiments (every exception class of the package is defined here).

Every error derives from :class:`IQError` (itself an :class:`opsin.core.OpsinError`) and from the builtin it
really is, so ``except FileNotFoundError`` keeps working for code written against the original iquaflow::

    OpsinError
    └── IQError
        ├── DSNotFoundError (FileNotFoundError)             a dataset folder or image folder does not exist
        ├── DSAnnotationsNotFoundError (FileNotFoundError)  no usable json/geojson annotation file
        ├── DSLayoutError (ValueError)                      a dataset folder does not follow the layout conventions
        ├── ImageReadError (OSError)                        an image file cannot be decoded
        ├── AnnotationFormatError (ValueError)              an annotation file is not the format it claims to be
        ├── ModifierParamError (ValueError)                 an unknown modifier parameter or a value out of range
        ├── ModifierNotConfiguredError (NotImplementedError) an extension-point modifier without an implementation
        ├── ExperimentNotFoundError (LookupError)           no mlflow experiment of that name
        ├── ExperimentFileError (ValueError)                an experiment file is unreadable or inconsistent
        ├── ExperimentFailedError (RuntimeError)            every run of an experiment failed
        ├── TrackingServerError (ConnectionError)           the mlflow tracking server cannot be reached
        ├── TaskFailedError (RuntimeError)                  a training script failed (only with raise_on_failure)
        └── TaskTimeoutError (TimeoutError)                 a training script ran past its time limit

The names the original iquaflow used (``DSNotFound``, ``DSAnnotationsNotFound``, ``ExperimentNotFound``) and the
earlier names of this package (``ModifierNotConfigured``, ``TaskFailed``) stay available as aliases.

Messages always name the path, flag or experiment and the reason. Command lines turn each error into one
``Error: ...`` line; the exit code comes from the builtin base (``ValueError`` -> 2, ``FileNotFoundError`` -> 4,
``TimeoutError`` -> 6) unless the class sets ``exit_code``.
"""

from __future__ import annotations

from typing import Any

from opsin.core import ExitCode, OpsinError

__all__ = [
    "AnnotationFormatError",
    "DSAnnotationsNotFound",
    "DSAnnotationsNotFoundError",
    "DSLayoutError",
    "DSNotFound",
    "DSNotFoundError",
    "ExperimentFailedError",
    "ExperimentFileError",
    "ExperimentNotFound",
    "ExperimentNotFoundError",
    "IQError",
    "ImageReadError",
    "ModifierNotConfigured",
    "ModifierNotConfiguredError",
    "ModifierParamError",
    "TaskFailed",
    "TaskFailedError",
    "TaskTimeoutError",
    "TrackingServerError",
]


class IQError(OpsinError):
    """Base class of every opsin-iq-experiments error."""


class DSNotFoundError(IQError, FileNotFoundError):
    """A dataset folder (or its image folder) does not exist."""


class DSAnnotationsNotFoundError(IQError, FileNotFoundError):
    """A dataset has no annotation file where one is required."""


class DSLayoutError(IQError, ValueError):
    """A dataset folder does not follow the layout conventions (names the folder, what was found and expected)."""


class ImageReadError(IQError, OSError):
    """An image file cannot be read or decoded (names the file); bad input, exit code 2 on the command line."""

    exit_code = int(ExitCode.USAGE)


class AnnotationFormatError(IQError, ValueError):
    """An annotation file cannot be parsed as the format it claims to be (names the file)."""


class ModifierParamError(IQError, ValueError):
    """A modifier was given a parameter it does not know or a value outside its range."""


class ModifierNotConfiguredError(IQError, NotImplementedError):
    """An extension-point modifier (``DSModifier_sr``) was used without a subclass implementing its hook."""


class ExperimentNotFoundError(IQError, LookupError):
    """No mlflow experiment has the requested name (exit code 4 on the command line)."""

    exit_code = int(ExitCode.NOT_FOUND)


class ExperimentFileError(IQError, ValueError):
    """An experiment file is missing, unreadable or inconsistent (names the file and the key)."""


class ExperimentFailedError(IQError, RuntimeError):
    """Every run of an experiment failed (the message names the experiment and the first failure)."""


class TrackingServerError(IQError, ConnectionError):
    """The mlflow tracking server of a ``http(s)://`` URI does not answer."""

    exit_code = int(ExitCode.ERROR)


class TaskFailedError(IQError, RuntimeError):
    """A training task exited with a non-zero code (raised only with ``raise_on_failure=True``)."""


class TaskTimeoutError(IQError, TimeoutError):
    """A training script ran past ``timeout_s`` and was killed (with its process group).

    Attributes:
        returncode: the exit status after the kill (negative signal number).
    """

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.returncode))


# Names kept for scripts written against the original (and this package's first release).
DSNotFound = DSNotFoundError
DSAnnotationsNotFound = DSAnnotationsNotFoundError
ExperimentNotFound = ExperimentNotFoundError
ModifierNotConfigured = ModifierNotConfiguredError
TaskFailed = TaskFailedError
