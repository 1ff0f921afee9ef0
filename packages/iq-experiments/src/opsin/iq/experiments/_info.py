"""``ExperimentInfo``: read an experiment back from mlflow, apply new metrics, tabulate it."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from opsin.core import cache_dir, get_logger, progress
from opsin.iq.errors import DSNotFoundError, ExperimentNotFoundError
from opsin.iq.experiments import _runlog, _tracking

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["ExperimentInfo"]

logger = get_logger(__name__)


def _prefixed(p: str) -> str:
    return p if "ds_" in p else f"ds_{p}"


class ExperimentInfo:
    """The runs of an mlflow experiment, as plain dicts and data frames.

    Args:
        experiment_name: the experiment.
        tracking_uri: where it is tracked; default as :class:`~opsin.iq.experiments.ExperimentSetup` resolves it
            (``MLFLOW_TRACKING_URI``, a URI set earlier in the process, else ``sqlite:///<OPSIN_IQ_MLFLOW_DIR or
            ./mlflow>/mlflow.db``).

    Raises:
        ExperimentNotFoundError: no experiment of that name at that URI.

    Attributes:
        experiment_name, experiment_id, tracking_uri, runs (see :meth:`get_mlflow_run_info`).
    """

    def __init__(self, experiment_name: str, *, tracking_uri: str | None = None) -> None:
        self.experiment_name = experiment_name
        self.tracking_uri = _tracking.resolve_tracking_uri(tracking_uri)
        self._client: MlflowClient = _tracking.make_client(self.tracking_uri)
        exp = _tracking.run_query(self._client.get_experiment_by_name, experiment_name)
        if exp is None or exp.lifecycle_stage == "deleted":
            msg = f"no mlflow experiment named {experiment_name!r} at {self.tracking_uri}"
            raise ExperimentNotFoundError(msg)
        self.experiment_id: str = str(exp.experiment_id)
        self.runs: dict[str, dict[str, Any]] = {}
        self.get_mlflow_run_info()

    # -- reading runs --------------------------------------------------------------------------------------------
    def _search_all(self) -> list[Any]:
        out: list[Any] = []
        token = None
        while True:
            page = _tracking.run_query(
                self._client.search_runs,
                [self.experiment_id],
                order_by=["attributes.start_time DESC"],
                max_results=1000,
                page_token=token,
            )
            out.extend(page)
            token = page.token
            if not token:
                return out

    def _local_output(self, run_id: str, artifact_uri: str, name: str = "output.json") -> str:
        local = _tracking.local_path_from_uri(artifact_uri)
        if local is not None:
            return os.path.join(local, name)
        target = cache_dir("opsin-iq") / "mlflow-artifacts" / run_id
        path = target / name
        if path.is_file():
            return str(path)
        try:
            listed = {a.path for a in _tracking.run_query(self._client.list_artifacts, run_id)}
            if name in listed:
                target.mkdir(parents=True, exist_ok=True)
                return str(_tracking.run_query(self._client.download_artifacts, run_id, name, str(target)))
        except Exception as exc:  # an unreachable artifact store must not break reading the run table
            logger.warning("cannot fetch %s of run %s from %s: %s", name, run_id, artifact_uri, exc)
        return str(path)

    def get_mlflow_run_info(self) -> dict[str, dict[str, Any]]:
        """Read every run of the experiment (parents excluded), newest first as in the original, into ``self.runs``.

        Returns:
            ``{run name: {run_id, run_status, params_dict, metrics_dict, tags, artifact_path, output_pred_path,
            train_ds_path, val_ds_path, test_ds_path, parent_run_id}}``; a repeated name gets ``_1``, ``_2``, ...
        """
        runs: dict[str, dict[str, Any]] = {}
        for run in self._search_all():
            tags = dict(run.data.tags)
            if tags.get("opsin.iq.role") == "parent":
                continue
            name = run.info.run_name or run.info.run_id
            key, n = name, 0
            while key in runs:
                n += 1
                key = f"{name}_{n}"
            artifact_uri = str(run.info.artifact_uri)
            local = _tracking.local_path_from_uri(artifact_uri)
            runs[key] = {
                "run_id": run.info.run_id,
                "run_name": name,
                "run_status": run.info.status,
                "params_dict": dict(run.data.params),
                "metrics_dict": dict(run.data.metrics),
                "tags": tags,
                "artifact_path": local if local is not None else artifact_uri,
                "output_pred_path": self._local_output(run.info.run_id, artifact_uri),
                "train_ds_path": tags.get("opsin.iq.trainds"),
                "val_ds_path": tags.get("opsin.iq.valds"),
                "test_ds_path": tags.get("opsin.iq.testds"),
                "parent_run_id": tags.get("mlflow.parentRunId"),
            }
        self.runs = runs
        return runs

    # -- metrics on past runs ------------------------------------------------------------------------------------
    def _selected(self, only_finished: bool) -> list[tuple[str, dict[str, Any]]]:
        return [(k, r) for k, r in self.runs.items() if not only_finished or r["run_status"] == "FINISHED"]

    def _apply(self, metric: Any, gt_path: str, only_finished: bool) -> list[tuple[str, dict[str, Any]]]:
        out = []
        items = self._selected(only_finished)
        for name, run in progress(items, desc=getattr(metric, "name", "metric"), unit="run"):
            pred = run["output_pred_path"]
            try:
                result = metric.apply(pred, gt_path)
            except DSNotFoundError as exc:
                # an older run whose dataset folder was deleted: NaN for it, the other runs still count
                logger.warning("run %s: %s; %s gives NaN for it", name, exc, type(metric).__name__)
                out.append((name, dict.fromkeys(getattr(metric, "metric_names", None) or ["metric"], math.nan)))
                continue
            except FileNotFoundError:
                if pred and os.path.exists(pred):
                    raise
                logger.warning("run %s has no output.json (%s); %s skipped", name, pred, type(metric).__name__)
                continue
            except Exception as exc:
                exc.add_note(f"while applying {type(metric).__name__} to run {name!r} ({run['run_id']})")
                raise
            out.append((name, dict(result or {})))
        return out

    def apply_metric_per_run(self, metric: Any, gt_path: str, *, only_finished: bool = True) -> dict[str, Any]:
        """Apply a :class:`~opsin.iq.metrics.Metric` to every run's ``output.json`` and log its numeric results.

        Results are logged with ``MlflowClient.log_metric`` (run status untouched), NaN included; runs without
        ``output.json`` (for which the metric raises :class:`FileNotFoundError`) are skipped with a warning; image
        metrics such as SNR or sharpness only use the path to find the run and work without it. A run whose dataset
        folder no longer exists (the metric raises :class:`~opsin.iq.errors.DSNotFoundError`) gets NaN for every
        ``metric.metric_names`` and the other runs go on, as in the original.

        Args:
            metric: has ``apply(predictions_path, gt_path) -> dict``.
            gt_path: the ground truth (e.g. a COCO annotation file).
            only_finished: only FINISHED runs.

        Returns:
            The refreshed ``runs``.
        """
        for name, result in self._apply(metric, gt_path, only_finished):
            numbers = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            metrics = [(str(k), float(v), 0) for k, v in numbers.items()]
            _runlog.log_batch(self._client, self.runs[name]["run_id"], metrics=metrics)
        return self.get_mlflow_run_info()

    def apply_metric_per_run_no_mlflow(self, metric: Any, gt_path: str) -> list[dict[str, Any]]:
        """Like :meth:`apply_metric_per_run` but only store results in ``runs[name]["metrics_dict"]``."""
        results = []
        for name, result in self._apply(metric, gt_path, True):
            self.runs[name]["metrics_dict"].update(result)
            results.append(result)
        return results

    def get_results_dict(self) -> dict[str, Any]:
        """``{run name: results.json content}`` of the FINISHED runs (runs without the file are left out)."""
        out: dict[str, Any] = {}
        for name, run in self._selected(True):
            path = self._local_output(run["run_id"], self._artifact_uri(run), _runlog.RESULTS_FILE)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as fh:
                    out[name] = json.load(fh)
        return out

    @staticmethod
    def _artifact_uri(run: dict[str, Any]) -> str:
        return str(run["artifact_path"])

    # -- tables --------------------------------------------------------------------------------------------------
    @staticmethod
    def _lookup(run: dict[str, Any], key: str) -> Any:
        for source in (run["metrics_dict"], run["params_dict"], run):
            if key in source and source[key] is not None:
                return source[key]
        return None

    def get_df(
        self,
        ds_params: Sequence[str],
        metrics: Sequence[str],
        grouped: Sequence[str] | None = None,
        dropna: bool = True,
        fields_to_float_lst: Sequence[str] | None = None,
        fields_to_int_lst: Sequence[str] | None = None,
        include_failed: bool = False,
    ) -> pd.DataFrame:
        """One row per FINISHED run: ``name``, ``ds_<param>`` columns, then the requested metrics.

        Args:
            ds_params: dataset params (``"modifier"`` -> column ``ds_modifier``; names containing ``ds_`` are kept).
            metrics: looked up in the run's metrics, then params, then the run dict (only missing values fall
                through; 0 is a value).
            grouped: group by these (prefixed like ``ds_params``) and aggregate each metric to mean and std.
            dropna: drop rows with a missing value.
            fields_to_float_lst: columns converted to float (left unchanged when conversion fails).
            fields_to_int_lst: columns converted to int (left unchanged when conversion fails).
            include_failed: also FAILED runs.

        Returns:
            The data frame (grouped frames have ``(metric, "mean"|"std")`` columns).
        """
        statuses = {"FINISHED", "FAILED"} if include_failed else {"FINISHED"}
        ds_cols = [(_prefixed(p), p) for p in ds_params]
        for g in grouped or []:  # grouping keys not requested otherwise are read from the params too
            if g not in metrics and _prefixed(g) not in [c for c, _ in ds_cols]:
                ds_cols.append((_prefixed(g), g))
        rows = []
        for name, run in self.runs.items():
            if run["run_status"] not in statuses:
                continue
            row: dict[str, Any] = {"name": name}
            for col, p in ds_cols:
                row[col] = run["params_dict"].get(p, run["params_dict"].get(col))
            for m in metrics:
                row[m] = self._lookup(run, m)
            rows.append(row)
        columns = ["name", *[c for c, _ in ds_cols], *metrics]
        df = pd.DataFrame(rows, columns=columns)
        if dropna:
            df = df.dropna().reset_index(drop=True)
        for cols, kind in ((fields_to_float_lst, float), (fields_to_int_lst, int)):
            for col in cols or []:
                if col in df.columns:
                    try:
                        df[col] = df[col].astype(kind)
                    except (TypeError, ValueError):
                        logger.warning("column %r cannot be converted to %s; left unchanged", col, kind.__name__)
        if grouped:
            keys = [g if g in metrics else _prefixed(g) for g in grouped]
            df = df.groupby(keys).agg({m: ["mean", "std"] for m in metrics if m not in keys})
        return df
