"""The ``opsin-eventflow`` console script: ``synth`` (synthetic dataset) and ``precompute`` (events -> features)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from opsin.core import configure_logging
from opsin.eventflow.errors import EventFlowError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``opsin-eventflow``."""
    from opsin.eventflow import __version__

    parser = argparse.ArgumentParser(
        prog="opsin-eventflow", description="Event-camera optical flow: synthetic data and feature files."
    )
    parser.add_argument("--version", action="version", version=f"opsin-event-flow {__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{synth,precompute}")

    synth = sub.add_parser("synth", help="simulate a train/val/test dataset of textured planes with exact GT flow")
    synth.add_argument("--out-dir", required=True, help="output folder (gets train/, val/ and test/)")
    synth.add_argument("--num-sequences", type=int, required=True, help="number of sequences")
    synth.add_argument("--height", type=int, default=64, help="sensor height (default 64)")
    synth.add_argument("--width", type=int, default=64, help="sensor width (default 64)")
    synth.add_argument("--duration-us", type=int, default=300_000, help="sequence duration in us (default 300000)")
    synth.add_argument("--delta-t", type=int, default=10_000, help="GT flow interval in us (default 10000)")
    synth.add_argument("--preset", default="clean", choices=["clean", "noisy"], help="simulator preset")
    synth.add_argument("--format", default="dat", choices=["dat", "h5", "evt2"], help="event file format")
    synth.add_argument("--seed", type=int, default=0, help="seed (same seed, same files)")
    synth.add_argument("--max-speed", type=float, default=200.0, help="max pixel speed in px/s (default 200)")
    synth.add_argument("--supersample", action="store_true", help="render at 2x then downsample (INTER_AREA)")

    pre = sub.add_parser("precompute", help="turn event files (or folders of them) into HDF5 feature files")
    pre.add_argument("inputs", nargs="+", metavar="INPUT", help="event files or folders (searched recursively)")
    pre.add_argument("--out-dir", required=True, help="output folder (input folders are mirrored below it)")
    pre.add_argument("--preprocess", default="event_cube", help="preprocessing name (default event_cube)")
    pre.add_argument("--delta-t", type=int, default=50000, help="row duration in us (default 50000)")
    pre.add_argument("--height", type=int, default=None, help="output height (sensor / 2**k)")
    pre.add_argument("--width", type=int, default=None, help="output width (sensor / 2**k)")
    pre.add_argument("--max-duration", type=int, default=None, help="split outputs every this many us")
    pre.add_argument("--store-as-uint8", action="store_true", help="store round(255 x) as uint8")
    pre.add_argument("--preprocess-kwargs", default=None, help="JSON object of preprocessing keyword arguments")
    pre.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    pre.add_argument("--executor", default=None, help="opsin.core executor spec, e.g. dask://host:8786")
    pre.add_argument("--overwrite", action="store_true", help="recompute existing outputs")
    return parser


def _synth(args: argparse.Namespace) -> int:
    from opsin.eventflow.synthetic import make_dataset

    metas = make_dataset(
        args.out_dir,
        args.num_sequences,
        args.height,
        args.width,
        args.duration_us,
        args.delta_t,
        args.preset,
        args.format,
        args.seed,
        max_speed=args.max_speed,
        supersample=args.supersample,
    )
    for meta in metas:
        print(
            f"{meta['split']}/{meta['events']}: {meta['num_events']} events, {meta['num_frames']} frames, "
            f"{meta['texture']} / {meta['trajectory']['kind']}"
        )
    return 0


def _precompute(args: argparse.Namespace) -> int:
    from opsin.eventflow._precompute import precompute_files

    kwargs = json.loads(args.preprocess_kwargs) if args.preprocess_kwargs else None
    if kwargs is not None and not isinstance(kwargs, dict):
        print("error: --preprocess-kwargs must be a JSON object", file=sys.stderr)
        return 2
    results = precompute_files(
        args.inputs,
        args.out_dir,
        args.preprocess,
        args.delta_t,
        args.height,
        args.width,
        args.max_duration,
        args.store_as_uint8,
        kwargs,
        args.processes,
        args.overwrite,
        args.executor,
    )
    if not results:
        print("error: no event file found in the inputs", file=sys.stderr)
        return 2
    written = sum(len(r["outputs"]) for r in results)
    skipped = sum(len(r["skipped"]) for r in results)
    print(f"precompute: {len(results)} recordings, {written} files written, {skipped} skipped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``opsin-eventflow``; returns the exit code (2 for invalid input or configuration)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        if args.command == "synth":
            return _synth(args)
        return _precompute(args)
    except (EventFlowError, FileNotFoundError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
