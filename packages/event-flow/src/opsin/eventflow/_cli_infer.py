"""``opsin-eventflow infer`` and ``demo``: optical flow from an event file in one command, no training needed."""

from __future__ import annotations

import click

from opsin.core import CliError, ExitCode

__all__ = ["demo", "infer"]

_POSITIVE = click.IntRange(min=1)

INFER_HELP = """Predict dense optical flow for every window of an event recording.

One flow per window [k*DT, (k+1)*DT) from t = 0, at the sensor resolution, in pixels over the window, with the
recurrent state carried through the file. The network runs on its own window length; another --delta-t composes its
per-window flows. The output has the layout of flow label files (flow, flow_start_ts, flow_end_ts). Without --ckpt or
--jit the pretrained model shipped in the package is used.

\b
Examples:
  opsin-eventflow infer --input recording_td.dat --out recording_flow.h5
  opsin-eventflow infer --input rec.raw --out rec_flow.h5 --ckpt runs/last.ckpt --delta-t 100000
"""

DEMO_HELP = """Write an mp4 showing the predicted flow of an event recording, one frame per window.

arrows: flow arrows over the event image; dense: colour = direction, brightness = speed; sharp: the window beside the
same window with its micro-bins warped by the flow (a good flow makes edges sharp). Without --ckpt or --jit the
pretrained model shipped in the package is used.

\b
Examples:
  opsin-eventflow demo --input recording_td.dat --out flow.mp4
  opsin-eventflow demo --input rec.raw --out sharp.mp4 --mode sharp --max-duration 2000000
"""
_MODEL_HELP = "Without --ckpt or --jit the pretrained model shipped in the package is used."


def _time_range(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        s0, s1 = (int(part) for part in value.split(","))
    except ValueError:
        message = f"expected two integers 'S0,S1' in microseconds, got {value!r}"
        raise click.BadParameter(message) from None
    if not 0 <= s0 < s1:
        message = f"needs 0 <= S0 < S1, got {s0},{s1}"
        raise click.BadParameter(message)
    return s0, s1


def _predictor(ckpt: str | None, jit: str | None, device: str):  # type: ignore[no-untyped-def]
    from opsin.eventflow._predictor import load_predictor

    if ckpt is not None and jit is not None:
        raise CliError("give either --ckpt or --jit, not both", ExitCode.USAGE)
    return load_predictor(ckpt=ckpt, jit=jit, device=device)


_ckpt = click.option("--ckpt", default=None, type=click.Path(dir_okay=False), help="A FlowModel checkpoint (.ckpt).")
_jit = click.option("--jit", default=None, type=click.Path(dir_okay=False), help="A model_flow.ptjit from export.")
_device = click.option("--device", default="cpu", show_default=True, help="torch device (cpu, cuda, cuda:1, ...).")
_input = click.option(
    "--input", "input_path", required=True, type=click.Path(dir_okay=False), help="Event file: .dat, .raw, .h5."
)


@click.command(help=INFER_HELP)
@_input
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Flow file to write (X_flow.h5).")
@_ckpt
@_jit
@click.option("--delta-t", default=None, type=int, help="Output window in us (default: the model's own).")
@click.option("--time-range", default=None, callback=_time_range, help="Only windows overlapping S0,S1 (us).")
@_device
def infer(
    input_path: str,
    out: str,
    ckpt: str | None,
    jit: str | None,
    delta_t: int | None,
    time_range: tuple[int, int] | None,
    device: str,
) -> None:
    """Predict the flow of every window of an event recording (see INFER_HELP)."""
    from opsin.eventflow._infer import infer_file

    if delta_t is not None and delta_t <= 0:
        raise CliError(f"--delta-t must be a positive number of microseconds, got {delta_t}", ExitCode.USAGE)
    predictor = _predictor(ckpt, jit, device)
    result = infer_file(predictor, input_path, out, delta_t=delta_t, time_range=time_range)
    click.echo(
        f"{result.path}: {result.windows} flows of {result.delta_t} us at {result.width}x{result.height}, "
        f"{result.events} events in {result.seconds:.1f} s ({result.events_per_second / 1e6:.2f} M events/s)"
    )


@click.command(help=DEMO_HELP)
@_input
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The mp4 to write.")
@_ckpt
@_jit
@click.option(
    "--mode",
    default="arrows",
    show_default=True,
    type=click.Choice(["arrows", "dense", "sharp"]),
    help="Arrows over events, dense colour flow, or events sharpened by the flow beside the raw ones.",
)
@click.option("--step", default=8, show_default=True, type=_POSITIVE, help="Arrow spacing (px).")
@click.option("--max-duration", default=None, type=_POSITIVE, help="Only the first this many us.")
@click.option("--no-mask", is_flag=True, help="Draw flow everywhere, not only where there are events.")
@_device
def demo(
    input_path: str,
    out: str,
    ckpt: str | None,
    jit: str | None,
    mode: str,
    step: int,
    max_duration: int | None,
    no_mask: bool,
    device: str,
) -> None:
    """Write an mp4 of the predicted flow of an event recording (see DEMO_HELP)."""
    from opsin.eventflow._flow_video import write_flow_video

    predictor = _predictor(ckpt, jit, device)
    result = write_flow_video(
        predictor, input_path, out, mode=mode, step=step, max_duration=max_duration, mask_by_events=not no_mask
    )
    click.echo(f"{result.path}: {result.frames} frames at {result.fps} fps ({result.width}x{result.height})")
