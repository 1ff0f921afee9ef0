"""opsin-synth-client: client for the synthetic-data generation REST API and its self-hosted service.

``Session`` binds a token to a generator (schema, validation, sampling, estimation, submission, history);
``Batch`` is one submitted list of jobs (status, completion, download, reruns, cancel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsin.core import lazy_exports

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "CompletedJob",
    "DEFAULT_SERVER",
    "JobType",
    "Session",
    "ValidCompletedJob",
    "__version__",
    "get_available_generators",
]

if TYPE_CHECKING:
    from opsin.synth._http import DEFAULT_SERVER
    from opsin.synth.batch import Batch
    from opsin.synth.data_structures import CompletedJob, JobType, ValidCompletedJob
    from opsin.synth.session import Session, get_available_generators

_LAZY = {
    "DEFAULT_SERVER": "opsin.synth._http",
    "Batch": "opsin.synth.batch",
    "CompletedJob": "opsin.synth.data_structures",
    "JobType": "opsin.synth.data_structures",
    "Session": "opsin.synth.session",
    "ValidCompletedJob": "opsin.synth.data_structures",
    "get_available_generators": "opsin.synth.session",
}


# Lazy re-exports: `import opsin.synth` stays cheap (the service imports it for `__version__` alone).
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
