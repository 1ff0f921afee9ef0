"""The ``opsin-eventflow`` console script.

Subcommands:

* ``synth``: a train/val/test dataset of textured planes with exact ground-truth flow;
* ``precompute``: event files -> HDF5 feature files;
* ``fit``, ``validate``, ``test``: Lightning training and evaluation driven by a YAML config (LightningCLI);
* ``evaluate``: streaming inference of a checkpoint against ground-truth flow (AEE and %Out);
* ``export``: a TorchScript network and its JSON description;
* ``infer``, ``demo``: flow files and flow videos from event recordings (the shipped model by default);
* ``convert-mvsec``: an MVSEC sequence to a DAT recording and flow labels.

It follows the opsin command-line convention (:class:`opsin.core.OpsinGroup`): ``--log-level``, ``--debug`` and
``--version`` on every subcommand, one ``Error:`` line and a documented exit code on failure. Heavy modules (torch,
Lightning) are imported only by the subcommands that need them.
"""

from __future__ import annotations

import json
from typing import Any

import click

from opsin.core import CliError, ExitCode, OpsinGroup
from opsin.eventflow import __version__, _cli_infer

__all__ = ["main"]

_POSITIVE = click.IntRange(min=1)
# fit/validate/test hand every argument (``--help`` included) to LightningCLI.
_PASSTHROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _json_object(_ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON ({exc.msg} at char {exc.pos})"
        raise click.BadParameter(message, param=param) from None
    if not isinstance(parsed, dict):
        message = f"must be a JSON object such as '{{\"split_polarity\": false}}', got {value!r}"
        raise click.BadParameter(message, param=param)
    return parsed


def _int_list(count: int) -> Any:
    def parse(_ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        try:
            parts = tuple(int(v) for v in value.split(","))
        except ValueError:
            parts = ()
        if len(parts) != count:
            message = f"expected {count} comma-separated integers, got {value!r}"
            raise click.BadParameter(message, param=param)
        return parts

    return parse


@click.group(cls=OpsinGroup, version_text=__version__)
def main() -> None:
    """Event-camera optical flow: synthetic data, features, training and evaluation."""


@main.command()
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Output folder (train/ val/ test/).")
@click.option("--num-sequences", required=True, type=_POSITIVE, help="Number of sequences.")
@click.option("--height", default=64, show_default=True, type=_POSITIVE, help="Sensor height (px).")
@click.option("--width", default=64, show_default=True, type=_POSITIVE, help="Sensor width (px).")
@click.option("--duration-us", default=300_000, show_default=True, type=_POSITIVE, help="Sequence duration (us).")
@click.option("--delta-t", default=10_000, show_default=True, type=_POSITIVE, help="GT flow interval (us).")
@click.option("--preset", default="clean", show_default=True, type=click.Choice(["clean", "noisy"]), help="Simulator.")
@click.option("--format", "fmt", default="dat", show_default=True, type=click.Choice(["dat", "h5", "evt2"]))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Same seed, same files.")
@click.option(
    "--max-speed",
    default=200.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Largest pixel speed (px/s).",
)
@click.option("--supersample", is_flag=True, help="Render at 2x, then downsample (INTER_AREA).")
def synth(
    out_dir: str,
    num_sequences: int,
    height: int,
    width: int,
    duration_us: int,
    delta_t: int,
    preset: str,
    fmt: str,
    seed: int,
    max_speed: float,
    supersample: bool,
) -> None:
    """Simulate a train/val/test dataset of textured planes with exact ground-truth flow."""
    from opsin.eventflow.synthetic import make_dataset

    metas = make_dataset(
        out_dir,
        num_sequences,
        height,
        width,
        duration_us,
        delta_t,
        preset,
        fmt,
        seed,
        max_speed=max_speed,
        supersample=supersample,
        show_progress=True,
    )
    for meta in metas:
        click.echo(
            f"{meta['split']}/{meta['events']}: {meta['num_events']} events, {meta['num_frames']} frames, "
            f"{meta['texture']} / {meta['trajectory']['kind']}"
        )


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Output folder (mirrors folders).")
@click.option("--preprocess", default="event_cube", show_default=True, help="Preprocessing name.")
@click.option("--delta-t", default=50_000, show_default=True, type=_POSITIVE, help="Row duration (us).")
@click.option("--height", default=None, type=_POSITIVE, help="Output height: sensor / 2**k (default: sensor).")
@click.option("--width", default=None, type=_POSITIVE, help="Output width: sensor / 2**k (default: sensor).")
@click.option("--max-duration", default=None, type=_POSITIVE, help="Split outputs every this many us.")
@click.option("--store-as-uint8", is_flag=True, help="Store round(255 x) as uint8 (features in [0, 1] only).")
@click.option("--preprocess-kwargs", default=None, callback=_json_object, help="JSON object of preprocessing kwargs.")
@click.option("--workers", default=1, show_default=True, type=_POSITIVE, help="Worker processes.")
@click.option("--executor", default=None, help="opsin.core executor spec (e.g. dask://host:8786); overrides --workers.")
@click.option("--overwrite", is_flag=True, help="Recompute existing outputs.")
def precompute(
    inputs: tuple[str, ...],
    out_dir: str,
    preprocess: str,
    delta_t: int,
    height: int | None,
    width: int | None,
    max_duration: int | None,
    store_as_uint8: bool,
    preprocess_kwargs: dict[str, Any] | None,
    workers: int,
    executor: str | None,
    overwrite: bool,
) -> None:
    """Turn event files (or folders of them, searched recursively) into HDF5 feature files."""
    from opsin.eventflow._precompute import precompute_files

    if max_duration is not None and max_duration % delta_t:
        message = f"--max-duration {max_duration} must be a multiple of --delta-t {delta_t}"
        raise CliError(message, ExitCode.USAGE)
    results = precompute_files(
        inputs,
        out_dir,
        preprocess,
        delta_t,
        height,
        width,
        max_duration,
        store_as_uint8,
        preprocess_kwargs,
        workers,
        overwrite,
        executor,
    )
    if not results:
        message = f"no event file found in {', '.join(inputs)} (.dat, .raw or event .h5)"
        raise CliError(message, ExitCode.NOT_FOUND)
    written = sum(len(r["outputs"]) for r in results)
    skipped = sum(len(r["skipped"]) for r in results)
    click.echo(f"precompute: {len(results)} recordings, {written} files written, {skipped} skipped")


def _lightning(subcommand: str, args: tuple[str, ...]) -> None:
    from opsin.eventflow._lightning_cli import run_lightning_cli

    run_lightning_cli(subcommand, list(args))


@main.command(context_settings=_PASSTHROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def fit(args: tuple[str, ...]) -> None:
    """Train a FlowModel (LightningCLI: --config flow.yaml [--ckpt_path last]; --help lists every option)."""
    _lightning("fit", args)


@main.command(context_settings=_PASSTHROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def validate(args: tuple[str, ...]) -> None:
    """Run the validation loop (LightningCLI: --config flow.yaml --ckpt_path CKPT)."""
    _lightning("validate", args)


@main.command(context_settings=_PASSTHROUGH, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def test(args: tuple[str, ...]) -> None:
    """Run the test loop (LightningCLI: --config flow.yaml --ckpt_path CKPT)."""
    _lightning("test", args)


@main.command()
@click.option("--ckpt", required=True, type=click.Path(dir_okay=False), help="FlowModel checkpoint (.ckpt).")
@click.option("--events", default=None, type=click.Path(dir_okay=False), help="Event file (with --gt).")
@click.option("--gt", default=None, type=click.Path(dir_okay=False), help="Ground-truth *_flow.h5 of --events.")
@click.option("--dir", "folder", default=None, type=click.Path(file_okay=False), help="Folder of X_td.dat + X_flow.h5.")
@click.option(
    "--association",
    default="integrate",
    show_default=True,
    type=click.Choice(["integrate", "scale"]),
    help="How predictions over delta_t windows map onto GT intervals.",
)
@click.option("--crop", default=None, callback=_int_list(4), help="Evaluate inside y0,x0,h,w (GT pixels).")
@click.option("--time-range", default=None, callback=_int_list(2), help="Only GT frames inside s0,s1 (us).")
@click.option(
    "--outlier-rule", default="both", show_default=True, type=click.Choice(["and", "or", "both"]), help="%Out rule."
)
@click.option("--rel-ref", default="gt", show_default=True, type=click.Choice(["gt", "pred"]), help="%Out 5% ref.")
@click.option("--dense", is_flag=True, help="Drop the event mask (every valid GT pixel counts).")
@click.option("--keep-zero-gt", is_flag=True, help="Keep pixels whose GT is exactly (0, 0).")
@click.option("--farneback", is_flag=True, help="Also score OpenCV Farneback on event-count images (same pixels).")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False), help="Also write results here.")
@click.option("--device", default="cpu", show_default=True, help="torch device (cpu, cuda, cuda:1).")
def evaluate(
    ckpt: str,
    events: str | None,
    gt: str | None,
    folder: str | None,
    association: str,
    crop: tuple[int, ...] | None,
    time_range: tuple[int, ...] | None,
    outlier_rule: str,
    rel_ref: str,
    dense: bool,
    keep_zero_gt: bool,
    farneback: bool,
    json_out: str | None,
    device: str,
) -> None:
    """Evaluate a checkpoint on recordings with ground-truth flow (AEE, %Out, zero-flow baseline).

    Inference streams each file in delta_t windows from t = 0 (T = 1, B = 1, recurrent state carried). Exits 2 when
    no ground-truth frame has a valid pixel.
    """
    from opsin.eventflow._evaluate import EvaluateOptions, run_evaluate

    if folder is None and (events is None or gt is None):
        message = "give --events E with --gt G, or --dir D"
        raise CliError(message, ExitCode.USAGE)
    if folder is not None and (events is not None or gt is not None):
        message = "--dir cannot be combined with --events/--gt"
        raise CliError(message, ExitCode.USAGE)
    options = EvaluateOptions(
        association=association,
        crop=crop,
        time_range=time_range,
        outlier_rule=outlier_rule,
        rel_ref=rel_ref,
        dense=dense,
        keep_zero_gt=keep_zero_gt,
        device=device,
        farneback=farneback,
    )
    run_evaluate(ckpt, events, gt, folder, options, json_out)


@main.command()
@click.option("--ckpt", required=True, type=click.Path(dir_okay=False), help="FlowModel checkpoint (.ckpt).")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Folder for the two files.")
@click.option("--fp16", is_flag=True, help="Export in half precision (CUDA inference).")
def export(ckpt: str, out_dir: str, fp16: bool) -> None:
    """Export the network as TorchScript: model_flow.ptjit and info_flow_jit.json (checked against eager)."""
    from opsin.eventflow.export import export_checkpoint

    paths = export_checkpoint(ckpt, out_dir, fp16=fp16)
    for path in paths:
        click.echo(str(path))


# Inference on event files (the shipped pretrained model by default) lives in its own module.
MVSEC_HELP = """Convert an MVSEC sequence to a DAT recording and flow labels.

Reads NAME_data.hdf5 (events, APS frame times) and NAME_gt.hdf5 (flow_dist; by default the sibling of DATA) and
writes NAME_td.dat (t in us from the first event, p in {0, 1}) and NAME_flow.h5: the ground-truth displacement over
every interval of --frames APS frames (1 and 4 are the published dt=1 / dt=4 settings), +inf on the car's hood (rows
>= 190) in outdoor sequences. The MVSEC time of t = 0 is printed and kept in the labels (attribute mvsec_t0_s).

\b
Examples:
  opsin-eventflow convert-mvsec indoor_flying1_data.hdf5 --out-dir mvsec/
  opsin-eventflow convert-mvsec outdoor_day1_data.hdf5 --out-dir mvsec4/ --frames 4
  opsin-eventflow evaluate --ckpt model.ckpt --dir mvsec/ --crop 2,45,256,256
"""


def _hood_row(_ctx: click.Context, _param: click.Parameter, value: str) -> int | str | None:
    if value in ("auto", "none"):
        return None if value == "none" else "auto"
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"expected 'auto', 'none' or a row number, got {value!r}") from None


@main.command("convert-mvsec", help=MVSEC_HELP)
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--gt", default=None, type=click.Path(dir_okay=False), help="NAME_gt.hdf5 (default: beside DATA).")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False), help="Folder for the two files.")
@click.option("--camera", default="left", show_default=True, type=click.Choice(["left", "right"]), help="DAVIS camera.")
@click.option("--frames", default=1, show_default=True, type=_POSITIVE, help="APS frames per label interval.")
@click.option(
    "--hood-row",
    default="auto",
    show_default=True,
    callback=_hood_row,
    help="Invalid GT from this row down: auto (190 on outdoor sequences), none, or a row.",
)
def convert_mvsec(data: str, gt: str | None, out_dir: str, camera: str, frames: int, hood_row: Any) -> None:
    """Convert an MVSEC sequence (see MVSEC_HELP)."""
    from opsin.eventflow.io.mvsec import convert_mvsec as convert

    done = convert(data, out_dir, gt, camera=camera, frames=frames, hood_row=hood_row)  # type: ignore[arg-type]
    click.echo(f"{done.events_path}: {done.events} events at {done.width}x{done.height}, t = 0 is {done.t0_s:.6f} s")
    if done.labels_path is None:
        click.echo("no ground truth (no NAME_gt.hdf5 beside DATA and no --gt): events only")
    else:
        hood = "no hood mask" if done.hood_row is None else f"rows >= {done.hood_row} invalid"
        click.echo(f"{done.labels_path}: {done.labels} flow frames over {frames} APS frame(s) each, {hood}")


main.add_command(_cli_infer.infer)
main.add_command(_cli_infer.demo)


if __name__ == "__main__":
    main()
