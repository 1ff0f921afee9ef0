"""Registry of task execution kinds by name (compat with the original's ``task_class_type_dict``)."""

from __future__ import annotations

from opsin.iq.experiments.task_execution import PythonScriptTaskExecution, TaskExecution

__all__ = ["task_class_type_dict"]

#: task kind name -> class (SageMaker execution is out of scope).
task_class_type_dict: dict[str, type[TaskExecution]] = {"PYTHON_SCRIPT": PythonScriptTaskExecution}
