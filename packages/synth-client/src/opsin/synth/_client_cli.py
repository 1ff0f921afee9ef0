"""Client commands of ``opsin-synth``: ``generators``, ``submit``, ``status``, ``download``, ``workflow create``.

:func:`register` adds them to a click group. The server and token come from the group's context object
(``ctx.obj["server"]``/``["token"]``, set by the global ``--server``/``--token`` options) or, when the group has
none, from ``OPSIN_SYNTH_SERVER``/``OPSIN_SYNTH_TOKEN``. Errors carry their exit code (an HTTP refusal picks it
from its status: 401/403 authentication, 404 not found, 402 insufficient samples); the group prints one line.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import typing as t
import uuid
from pathlib import Path

import click
import httpx

from opsin.core import CliError, ExitCode

if t.TYPE_CHECKING:
    from opsin.synth.session import Session

__all__ = ["parse_csv_params", "register"]

_TRUE, _FALSE = {"true", "1", "yes", "y", "t"}, {"false", "0", "no", "n", "f"}

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def _errors_to_exit_codes(func: F) -> F:
    """Name the server in transport failures (the group turns every other error into its line and code)."""

    @functools.wraps(func)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return func(*args, **kwargs)
        except httpx.TransportError as exc:
            try:
                where = str(exc.request.url)
            except RuntimeError:  # no request attached
                where = "the service"
            raise CliError(f"cannot reach {where}: {exc} (is `opsin-synth serve` running? see --server)") from None

    return t.cast(F, wrapper)


def _batch_id(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        msg = f"{value!r} is not a batch id (a UUID such as 0b5e0c0e-5c39-4f0a-9d43-6d8c3bb1f3a2)"
        raise click.BadParameter(msg) from None


def _settings(ctx: click.Context) -> tuple[str | None, str]:
    obj = ctx.find_root().obj
    obj = obj if isinstance(obj, dict) else {}
    server = obj.get("server") or os.environ.get("OPSIN_SYNTH_SERVER") or None
    token = obj.get("token") or os.environ.get("OPSIN_SYNTH_TOKEN") or ""
    if not token:
        msg = "no API token: pass --token or set OPSIN_SYNTH_TOKEN"
        raise CliError(msg, ExitCode.AUTH)
    return server, token


def _session(ctx: click.Context, generator: str) -> Session:
    from opsin.synth.session import Session

    server, token = _settings(ctx)
    return Session(token, generator, server)


def _parse_cell(text: str, kind: str, name: str, row: int) -> t.Any:
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        msg = f"row {row}: `{name}` ({text!r}) is not a boolean (true/false/1/0/yes/no)"
        raise click.BadParameter(msg, param_hint="--params")
    if kind in ("int", "float"):
        try:
            number = float(text)
        except ValueError:
            msg = f"row {row}: `{name}` ({text!r}) is not a number"
            raise click.BadParameter(msg, param_hint="--params") from None
        if kind == "int" and number.is_integer():
            return int(number)
        return number
    return text


def parse_csv_params(path: Path, parameter_info: t.Mapping[str, t.Mapping[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Read job params from CSV: header = parameter names, empty cell = unspecified, cells parsed by schema type."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        unknown = [name for name in reader.fieldnames or [] if name not in parameter_info]
        if unknown:
            msg = f"{path}: columns {unknown} are not parameters of the generator"
            raise click.BadParameter(msg, param_hint="--params")
        jobs = []
        for row_number, row in enumerate(reader, start=2):
            jobs.append(
                {
                    name: _parse_cell(value, str(parameter_info[name].get("type")), name, row_number)
                    for name, value in row.items()
                    if value is not None and value.strip() != ""
                }
            )
    return jobs


def _load_params(path: Path, parameter_info: t.Mapping[str, t.Mapping[str, t.Any]]) -> list[dict[str, t.Any]]:
    if path.suffix.lower() == ".csv":
        jobs = parse_csv_params(path, parameter_info)
    else:
        try:
            jobs = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            msg = f"{path}: not valid JSON ({exc})"
            raise click.BadParameter(msg, param_hint="--params") from None
    if not isinstance(jobs, list) or not jobs or not all(isinstance(j, dict) for j in jobs):
        msg = f"{path}: expected a non-empty list of objects (one per job)"
        raise click.BadParameter(msg, param_hint="--params")
    return jobs


@click.command("generators")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@_errors_to_exit_codes
def generators_command(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """List the generators, or show NAME's parameter table."""
    if name is None:
        from opsin.synth.session import get_available_generators

        server, token = _settings(ctx)
        names = get_available_generators(token, server)
        click.echo(json.dumps(names) if as_json else "\n".join(names))
        return
    info = _session(ctx, name).parameter_info
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{'name':<28} {'type':<6} {'default':<14} options")
    for param, spec in info.items():
        options = spec.get("options") or {}
        text = (
            f"[{options.get('min')}, {options.get('max')}]"
            if "min" in options
            else ", ".join(map(str, options.get("choices") or []))
        )
        click.echo(f"{param:<28} {spec.get('type')!s:<6} {spec.get('default_value')!s:<14} {text}")


@click.command("submit")
@click.option("--generator", "-g", required=True, help="Generator name.")
@click.option(
    "--params",
    "params_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Jobs: JSON list of objects, or CSV (header = parameter names; empty cell = unspecified).",
)
@click.option("--preview", is_flag=True, help="Render one-frame previews.")
@click.option("--name", "batch_name", default="", help="Batch name.")
@click.option("--random-sample", is_flag=True, help="Fill unspecified params with random draws, not defaults.")
@click.option("--estimate-only", is_flag=True, help="Only print the estimated samples.")
@click.option("--yes", "-y", is_flag=True, help="Submit without asking.")
@click.pass_context
@_errors_to_exit_codes
def submit_command(
    ctx: click.Context,
    generator: str,
    params_path: Path,
    preview: bool,
    batch_name: str,
    random_sample: bool,
    estimate_only: bool,
    yes: bool,
) -> None:
    """Submit a batch from a JSON or CSV file; prints the batch id on the last line."""
    sesh = _session(ctx, generator)
    jobs = _load_params(params_path, sesh.parameter_info)
    estimate = sum(sesh.estimate_samples(jobs, is_preview=preview, batch_name=batch_name))
    kind = "previews" if preview else "videos"
    click.echo(f"{len(jobs)} {kind} of {generator}: {estimate} samples estimated", err=True)
    if estimate_only:
        click.echo(str(estimate))
        return
    if not yes and not click.confirm("Submit?", default=False, err=True):
        raise CliError("not submitted (answer y, or pass --yes)", ExitCode.ERROR)
    batch = sesh.submit(jobs, is_preview=preview, batch_name=batch_name or None, random_sample=random_sample)
    click.echo(batch.batch_id)


def _batch(ctx: click.Context, batch_id: str) -> t.Any:
    from opsin.synth.batch import Batch

    server, token = _settings(ctx)
    return Batch.from_api(token, batch_id, server)


@click.command("status")
@click.argument("batch_id", callback=_batch_id)
@click.option("--watch", is_flag=True, help="Wait until every job is finished (progress bar).")
@click.option("--timeout", type=float, default=None, help="With --watch: give up after this many seconds (exit 6).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary JSON.")
@click.pass_context
@_errors_to_exit_codes
def status_command(ctx: click.Context, batch_id: str, watch: bool, timeout: float | None, as_json: bool) -> None:
    """Show how many jobs of BATCH_ID are queued, running, succeeded, failed or cancelled."""
    batch = _batch(ctx, batch_id)
    if watch:
        batch.await_completion(polling_interval=2.0, timeout=timeout)
    summary = batch.get_batch_summary_data()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    counts: dict[str, int] = {}
    for run in summary["job_runs"]:
        counts[str(run.get("status", "unknown"))] = counts.get(str(run.get("status", "unknown")), 0) + 1
    remaining = sum(1 for run in summary["job_runs"] if run["in_progress"])
    parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    click.echo(f"batch {batch_id} ({batch.name!r}): {batch.num_jobs - remaining}/{batch.num_jobs} done; {parts}")


@click.command("download")
@click.argument("batch_id", callback=_batch_id)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Batch folder (default downloads/<batch name>/batch_ID_<id>/).",
)
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True, help="Parallel downloads.")
@click.option("--wait", is_flag=True, help="Wait for every job to finish first.")
@click.option("--timeout", type=float, default=None, help="With --wait: give up after this many seconds (exit 6).")
@click.option("--overwrite", is_flag=True, help="Replace jobs already downloaded.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
@_errors_to_exit_codes
def download_command(
    ctx: click.Context,
    batch_id: str,
    out_dir: Path | None,
    workers: int,
    wait: bool,
    timeout: float | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Download the finished jobs of BATCH_ID (safe, resumable; run again for jobs still in progress)."""
    from opsin.synth.workflows import batch_download_folder

    batch = _batch(ctx, batch_id)
    if wait:
        batch.await_completion(polling_interval=1.0, timeout=timeout, progress=not quiet)
    target = out_dir if out_dir is not None else batch_download_folder("downloads", batch)
    complete = batch.download(target, overwrite=overwrite, quiet=quiet, max_workers=workers)
    state = "complete" if complete else "jobs still in progress; run again later"
    click.echo(f"batch {batch_id} -> {target} ({state})")


@click.group("workflow")
def workflow_group() -> None:
    """Workflow notebooks (saved reports)."""


@workflow_group.command("create")
@click.argument("kind", type=click.Choice(["submit", "download"]))
@click.option("--generator", "-g", default=None, help="Generator name (submit: required).")
@click.option("--batch-id", default=None, help="Batch id (download: required).")
@click.option(
    "--records-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("workflow_records"),
    show_default=True,
    help="Folder of the workflow records.",
)
@click.option("--embed-token", is_flag=True, help="Write OPSIN_SYNTH_TOKEN into the notebook.")
@click.pass_context
@_errors_to_exit_codes
def workflow_create_command(
    ctx: click.Context,
    kind: str,
    generator: str | None,
    batch_id: str | None,
    records_dir: Path,
    embed_token: bool,
) -> None:
    """Write a submit or download notebook; prints its path."""
    from opsin.synth.workflows import create_download_notebook, create_submit_notebook, new_workflow_folder

    obj = ctx.find_root().obj
    obj = obj if isinstance(obj, dict) else {}
    server = obj.get("server") or os.environ.get("OPSIN_SYNTH_SERVER") or None
    token = obj.get("token") or os.environ.get("OPSIN_SYNTH_TOKEN") or None
    if embed_token and not token:
        raise CliError("--embed-token needs a token: pass --token or set OPSIN_SYNTH_TOKEN", ExitCode.AUTH)
    if kind == "submit":
        if not generator:
            raise click.UsageError("workflow create submit needs --generator")
        path = create_submit_notebook(generator, server, records_dir, embed_token, token=token)
    else:
        if not batch_id:
            raise click.UsageError("workflow create download needs --batch-id")
        if not generator:
            batch = _batch(ctx, batch_id)
            details = batch.get_batch_data()
            generator = str(details.get("generator") or (details["job_runs"][0]["name"]))
        path = create_download_notebook(
            batch_id, generator, server, new_workflow_folder(records_dir), embed_token, token=token
        )
    click.echo(str(path))


def register(group: click.Group) -> None:
    """Add the client commands to ``group`` (the ``opsin-synth`` group in ``opsin.synth.cli``)."""
    for command in (generators_command, submit_command, status_command, download_command, workflow_group):
        group.add_command(command)
