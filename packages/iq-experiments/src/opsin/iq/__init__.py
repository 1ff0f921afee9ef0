"""opsin-iq-experiments: image-quality experiments over modified datasets, tracked in mlflow.

Public modules (ported from iquaflow by changing imports only): :mod:`opsin.iq.datasets` (``DSWrapper`` and the
modifiers), :mod:`opsin.iq.sanity`, :mod:`opsin.iq.ds_stats`, :mod:`opsin.iq.metrics`, :mod:`opsin.iq.io`;
errors in :mod:`opsin.iq.errors`.
"""

from opsin.iq.errors import (
    AnnotationFormatError,
    DSAnnotationsNotFound,
    DSAnnotationsNotFoundError,
    DSLayoutError,
    DSNotFound,
    DSNotFoundError,
    ExperimentFailedError,
    ExperimentFileError,
    ExperimentNotFound,
    ExperimentNotFoundError,
    ImageReadError,
    IQError,
    ModifierNotConfigured,
    ModifierNotConfiguredError,
    ModifierParamError,
    TaskFailed,
    TaskFailedError,
    TaskTimeoutError,
    TrackingServerError,
)

__version__ = "0.1.0"

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
    "__version__",
]
