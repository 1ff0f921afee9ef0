"""``opsin-iq`` experiment commands: ``run EXPERIMENT.toml``, ``info``, ``runs``, ``plot`` and ``demo``.

Attach them to the ``opsin-iq`` click group with :func:`register`. An experiment file looks like::

    experiment_name = "jpg-sweep"
    script = "train.py"            # or "example:objectness" for the bundled script
    train_ds = "data/ds_coco_dataset"
    # val_ds, test_ds, repetitions = 1, workers, executor = "local" | "dask://host:port",
    # tracking_uri, mlflow_monitoring = false, timeout_s, tmp_dir, resume = true

    [extra_train_params]
    lr = [0.05, 0.5]

    [[modifiers]]
    type = "jpg"                   # base, dir, jpg, quant, blur, gsd, sharpness, snr, rer
    params = { quality = [10, 50, 90] }   # a list sweeps: one modifier per value

Relative paths are relative to the file's folder.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import tomllib
import typing as t
from pathlib import Path

import click

from opsin.core import CliError, ExitCode
from opsin.iq.errors import ExperimentFileError, ModifierParamError

__all__ = ["load_experiment_file", "register"]

_KEYS = {
    "experiment_name",
    "script",
    "train_ds",
    "val_ds",
    "test_ds",
    "repetitions",
    "workers",
    "executor",
    "tracking_uri",
    "registry_uri",
    "mlflow_monitoring",
    "timeout_s",
    "tmp_dir",
    "resume",
    "extra_train_params",
    "modifiers",
    "python",
}


def _path(base: Path, value: str) -> str:
    p = Path(os.path.expanduser(value))
    return str(p if p.is_absolute() else (base / p).resolve())


def _modifiers(entries: list[dict[str, t.Any]], where: str) -> list[t.Any]:
    from opsin.iq.datasets import MODIFIERS, make_modifier

    mods: list[t.Any] = []
    for i, entry in enumerate(entries):
        kind = entry.get("type", "")
        if kind not in MODIFIERS:
            msg = f"{where}: modifiers[{i}].type {kind!r} unknown (use one of {', '.join(sorted(MODIFIERS))})"
            raise ExperimentFileError(msg)
        params = dict(entry.get("params", {}))
        sweep = [k for k, v in params.items() if isinstance(v, list)]
        for combo in itertools.product(*(params[k] for k in sweep)):
            p = {**params, **dict(zip(sweep, combo, strict=True))}
            try:
                mods.append(make_modifier(kind, p))
            except ModifierParamError as exc:
                msg = f"{where}: modifiers[{i}]: {exc}"
                raise ExperimentFileError(msg) from exc
    return mods


def _workers(value: t.Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{where}: workers must be an integer >= 1, got {value!r}"
        raise ExperimentFileError(msg)
    return value


def load_experiment_file(path: str | os.PathLike[str], *, tracking_uri: str | None = None) -> t.Any:
    """Build an :class:`~opsin.iq.experiments.ExperimentSetup` from a TOML experiment file.

    Args:
        path: the TOML file.
        tracking_uri: overrides the file's ``tracking_uri``.

    Raises:
        FileNotFoundError: the file does not exist.
        ExperimentFileError: unreadable TOML, unknown keys, missing ``experiment_name``/``script``/``train_ds``/
            ``modifiers``, unknown modifier types or parameters, a bad ``workers`` value.
    """
    from opsin.iq.datasets import DSWrapper
    from opsin.iq.experiments import ExperimentSetup, PythonScriptTaskExecution, example_script_path

    file = Path(path).resolve()
    if not file.is_file():
        msg = f"experiment file {file} does not exist"
        raise FileNotFoundError(msg)
    try:
        cfg = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        msg = f"cannot read experiment file {file}: {exc}"
        raise ExperimentFileError(msg) from exc
    unknown = sorted(set(cfg) - _KEYS)
    if unknown:
        msg = f"{file}: unknown keys {unknown} (known: {sorted(_KEYS)})"
        raise ExperimentFileError(msg)
    missing = [k for k in ("experiment_name", "script", "train_ds", "modifiers") if not cfg.get(k)]
    if missing:
        msg = f"{file}: missing {missing}"
        raise ExperimentFileError(msg)
    base = file.parent
    script = str(cfg["script"])
    script_path = example_script_path(script.split(":", 1)[1]) if script.startswith("example:") else _path(base, script)
    task = PythonScriptTaskExecution(
        script_path,
        tmp_dir=_path(base, cfg["tmp_dir"]) if cfg.get("tmp_dir") else None,
        python_executable=cfg.get("python", sys.executable),
        timeout_s=cfg.get("timeout_s"),
    )

    def wrapper(key: str) -> t.Any:
        return DSWrapper(data_path=_path(base, cfg[key])) if cfg.get(key) else None

    return ExperimentSetup(
        experiment_name=cfg["experiment_name"],
        task_instance=task,
        ref_dsw_train=wrapper("train_ds"),
        ds_modifiers_list=_modifiers(cfg["modifiers"], str(file)),
        ref_dsw_val=wrapper("val_ds"),
        ref_dsw_test=wrapper("test_ds"),
        extra_train_params=cfg.get("extra_train_params"),
        repetitions=int(cfg.get("repetitions", 1)),
        cloud_options={
            "tracking_uri": tracking_uri or cfg.get("tracking_uri", ""),
            "registry_uri": cfg.get("registry_uri", ""),
        },
        mlflow_monitoring=bool(cfg.get("mlflow_monitoring", False)),
        executor=cfg.get("executor"),
        max_workers=_workers(cfg.get("workers"), str(file)),
        resume=bool(cfg.get("resume", True)),
    )


def _info(name: str, tracking_uri: str | None) -> t.Any:
    from opsin.iq.experiments import _tracking

    if tracking_uri:
        _tracking.check_server(tracking_uri)  # before the heavy imports: an unreachable server answers at once
    from opsin.iq.experiments import ExperimentInfo

    return ExperimentInfo(name, tracking_uri=tracking_uri)


def _metric_names(info: t.Any) -> list[str]:
    names: set[str] = set()
    for run in info.runs.values():
        names.update(run["metrics_dict"])
    return sorted(names)


def _numeric(df: t.Any) -> t.Any:
    import pandas as pd

    for col in df.columns:
        if col != "name":
            converted = pd.to_numeric(df[col], errors="coerce")
            if converted.notna().sum() == df[col].notna().sum():
                df[col] = converted
    return df


_tracking_option = click.option("--tracking-uri", default=None, help="mlflow tracking URI (default: as the library).")


@click.command("run")
@click.argument("experiment_file")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Runs in flight (overrides the file).")
@click.option("--tracking-uri", default=None, help="mlflow tracking URI (overrides the file).")
def run_cmd(experiment_file: str, workers: int | None, tracking_uri: str | None) -> None:
    """Run the experiment described by EXPERIMENT_FILE (TOML); exit code 1 when a run failed."""
    setup = load_experiment_file(experiment_file, tracking_uri=tracking_uri)
    if workers is not None:
        setup.max_workers = workers
    outcomes = setup.execute()
    width = max(len(o.run_name) for o in outcomes)
    for o in outcomes:
        note = " (already finished)" if o.skipped else ""
        click.echo(f"{o.run_name:<{width}}  {o.status:<8}  rc={o.returncode}  {o.duration_s:7.2f}s  {o.run_id}{note}")
    failed = sum(o.status != "FINISHED" for o in outcomes)
    click.echo(f"{len(outcomes) - failed}/{len(outcomes)} runs finished; tracking: {setup.tracking_uri}")
    if failed:
        msg = f"{failed} of {len(outcomes)} runs of {setup.experiment_name!r} failed (see their logs/stderr.txt)"
        raise CliError(msg, ExitCode.ERROR)


@click.command("info")
@click.argument("experiment_name")
@_tracking_option
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the JSON to this file.")
def info_cmd(experiment_name: str, tracking_uri: str | None, out: str | None) -> None:
    """Print an experiment's runs (params, metrics, tags, artifact paths) as JSON."""
    from opsin.core import atomic_write_text, dumps_json

    info = _info(experiment_name, tracking_uri)
    text = dumps_json({"experiment_id": info.experiment_id, "runs": info.runs}, indent=2, allow_nan=True)
    if out:
        atomic_write_text(out, text + "\n")
    else:
        click.echo(text)


@click.command("runs")
@click.argument("experiment_name")
@_tracking_option
@click.option("-p", "--param", "params", multiple=True, help="Dataset/run params as columns (default: modifier).")
@click.option("-m", "--metric", "metrics", multiple=True, help="Metrics as columns (default: every metric).")
@click.option("--include-failed", is_flag=True, help="Also list FAILED runs.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a text table.")
def runs_cmd(
    experiment_name: str,
    tracking_uri: str | None,
    params: tuple[str, ...],
    metrics: tuple[str, ...],
    include_failed: bool,
    as_csv: bool,
) -> None:
    """Print an experiment as a table: one row per run, params then metrics."""
    info = _info(experiment_name, tracking_uri)
    df = info.get_df(
        list(params) or ["modifier"], list(metrics) or _metric_names(info), dropna=False, include_failed=include_failed
    )
    df = _numeric(df)
    click.echo(df.to_csv(index=False) if as_csv else df.to_string(index=False))


@click.command("plot")
@click.argument("experiment_name")
@_tracking_option
@click.option("-x", "--x", "xvar", default="ds_modifier", show_default=True, help="x column (ds_<param> or metric).")
@click.option("-y", "--y", "yvar", required=True, help="The metric on the y axis.")
@click.option("-l", "--legend", "legend", default=None, help="One series per value of this column.")
@click.option("-k", "--kind", type=click.Choice(["lineplot", "bars", "scatter"]), default="lineplot")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="PNG file to write.")
@click.option("--title", default=None, help="Plot title.")
def plot_cmd(
    experiment_name: str,
    tracking_uri: str | None,
    xvar: str,
    yvar: str,
    legend: str | None,
    kind: str,
    out: str,
    title: str | None,
) -> None:
    """Plot a metric of an experiment's runs against a param (mean +/- std over repetitions) as a PNG."""
    from opsin.iq.experiments import ExperimentVisual

    info = _info(experiment_name, tracking_uri)
    params, metrics = [], [yvar]
    for col in (xvar, legend):
        if col and col.startswith("ds_"):
            params.append(col[3:])
        elif col and col not in metrics:
            metrics.append(col)
    df = _numeric(info.get_df(params, metrics, dropna=True))
    if df.empty:
        msg = f"experiment {experiment_name!r} has no finished run with {[*params, *metrics]}"
        raise CliError(msg, ExitCode.NOT_FOUND)
    ExperimentVisual(df, out).visualize(plot_kind=kind, xvar=xvar, yvar=yvar, legend_var=legend, title=title)
    click.echo(out)


@click.command("demo")
@click.option(
    "--out-dir", type=click.Path(file_okay=False), default="opsin-iq-demo", show_default=True, help="Output folder."
)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Runs in flight (default: CPUs).")
@click.option("--no-metrics", is_flag=True, help="Skip the SNR/sharpness measurements.")
def demo_cmd(out_dir: str, workers: int | None, no_metrics: bool) -> None:
    """Offline end-to-end demo: synthetic dataset, JPEG 5/95 x lr 0.1/1.0, SNR/sharpness, a PNG plot."""
    from opsin.iq.experiments._demo import run_demo

    summary = run_demo(out_dir, max_workers=workers, metrics=not no_metrics)
    df = summary["table"]
    click.echo(df.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}"))
    for modifier, columns in summary["unmeasured"].items():
        why = []
        if modifier in summary["no_edges"]:
            why.append("no edge passed the sharpness gates")
        if "snr_median" in columns:
            why.append("no homogeneous patch for the SNR")
        reason = f" ({'; '.join(why)})" if why else ""
        click.echo(f"{modifier}: {', '.join(columns)} not measurable{reason}; shown as '-'")
    click.echo(json.dumps({k: summary[k] for k in ("experiment", "tracking_uri", "runs", "plot")}))
    click.echo(f"demo finished in {summary['seconds']:.1f} s; browse the runs with: {summary['mlflow_ui']}")
    failed = sum(s != "FINISHED" for s in summary["runs"])
    if failed:
        msg = f"{failed} of {len(summary['runs'])} demo runs failed (see their logs/stderr.txt in mlflow)"
        raise CliError(msg, ExitCode.ERROR)


def register(group: click.Group) -> None:
    """Add ``run``, ``info``, ``runs``, ``plot`` and ``demo`` to the ``opsin-iq`` group."""
    for command in (run_cmd, info_cmd, runs_cmd, plot_cmd, demo_cmd):
        group.add_command(command)
