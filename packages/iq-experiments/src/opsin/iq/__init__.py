"""opsin-iq-experiments: image-quality experiments over modified datasets, tracked in mlflow.

Public modules (ported from iquaflow by changing imports only): :mod:`opsin.iq.datasets` (``DSWrapper`` and the
modifiers), :mod:`opsin.iq.sanity`, :mod:`opsin.iq.ds_stats`, :mod:`opsin.iq.metrics`, :mod:`opsin.iq.io`;
errors in :mod:`opsin.iq.errors`.
"""

from opsin.iq.errors import (
    AnnotationFormatError,
    DSAnnotationsNotFound,
    DSLayoutError,
    DSNotFound,
    ExperimentNotFound,
    ImageReadError,
    IQError,
    ModifierNotConfigured,
    TaskFailed,
)

__version__ = "0.1.0"

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
    "__version__",
]
