"""``Metric``: the base class of every metric applied to experiment runs."""

from __future__ import annotations

from typing import Any

__all__ = ["Metric"]


class Metric:
    """A metric computed from a run's predictions and the ground truth.

    Subclasses set ``name`` and ``metric_names`` and override :meth:`apply`, returning ``{metric name: value}``.
    """

    name: str = "base_metric"

    def __init__(self) -> None:
        self.metric_names: list[str] = ["metric"]

    def apply(self, predictions: str, gt_path: str) -> dict[str, Any]:
        """Compute the metric (the base class returns ``{"metric": 8}``, a placeholder for tests of the plumbing).

        Args:
            predictions: path of the run's ``output.json``.
            gt_path: path of the ground-truth annotations.
        """
        return {"metric": 8}
