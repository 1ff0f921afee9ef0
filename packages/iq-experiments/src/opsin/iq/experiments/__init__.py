"""Experiments on mlflow: run a training task over modified datasets, read the runs back, plot them.

``ExperimentSetup`` builds the grid (modifiers x hyper-parameter product x repetitions) and runs it as nested
mlflow runs; ``ExperimentInfo`` reads an experiment back (and applies new metrics to past runs);
``ExperimentVisual`` plots the resulting data frames.

Names are imported on first use, so that importing the package stays cheap and never touches pandas, matplotlib or
mlflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsin.core import lazy_exports

if TYPE_CHECKING:
    from opsin.iq.errors import (
        ExperimentFailedError,
        ExperimentNotFound,
        ExperimentNotFoundError,
        TaskFailed,
        TaskFailedError,
        TaskTimeoutError,
    )
    from opsin.iq.experiments._info import ExperimentInfo
    from opsin.iq.experiments._setup import ExperimentSetup, GridPoint
    from opsin.iq.experiments._visual import ExperimentVisual
    from opsin.iq.experiments.examples import example_script_path
    from opsin.iq.experiments.task_execution import (
        PythonScriptTaskExecution,
        RunOutcome,
        TaskExecution,
        get_hash,
    )

__all__ = [
    "ExperimentFailedError",
    "ExperimentInfo",
    "ExperimentNotFound",
    "ExperimentNotFoundError",
    "ExperimentSetup",
    "ExperimentVisual",
    "GridPoint",
    "PythonScriptTaskExecution",
    "RunOutcome",
    "TaskExecution",
    "TaskFailed",
    "TaskFailedError",
    "TaskTimeoutError",
    "example_script_path",
    "get_hash",
]

_WHERE = {
    "ExperimentInfo": "opsin.iq.experiments._info",
    "ExperimentFailedError": "opsin.iq.errors",
    "ExperimentNotFound": "opsin.iq.errors",
    "ExperimentNotFoundError": "opsin.iq.errors",
    "ExperimentSetup": "opsin.iq.experiments._setup",
    "ExperimentVisual": "opsin.iq.experiments._visual",
    "GridPoint": "opsin.iq.experiments._setup",
    "PythonScriptTaskExecution": "opsin.iq.experiments.task_execution",
    "RunOutcome": "opsin.iq.experiments.task_execution",
    "TaskExecution": "opsin.iq.experiments.task_execution",
    "TaskFailed": "opsin.iq.errors",
    "TaskFailedError": "opsin.iq.errors",
    "TaskTimeoutError": "opsin.iq.errors",
    "example_script_path": "opsin.iq.experiments.examples",
    "get_hash": "opsin.iq.experiments.task_execution",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
