"""The ``opsin-iq`` command line: modify datasets, check and describe them, measure SNR and sharpness.

Every command follows the opsin convention (:class:`opsin.core.OpsinGroup`): ``--log-level``, ``--debug`` and
``--version`` everywhere, one ``Error: ...`` line and a documented exit code on failure.
"""

from __future__ import annotations

import json
import os
import typing as t

import click

from opsin.core import CliError, ExitCode, OpsinGroup, atomic_write_text, dumps_json
from opsin.iq import __version__
from opsin.iq.datasets._registry import MODIFIERS

__all__ = ["MODIFIERS", "main", "resolve_images"]


def _emit(obj: t.Any, out: str | None) -> None:
    text = dumps_json(obj, indent=2, allow_nan=True)
    if out:
        atomic_write_text(out, text + "\n")
    else:
        click.echo(text)


def _parse_value(text: str) -> t.Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_params(items: tuple[str, ...]) -> dict[str, t.Any]:
    params: dict[str, t.Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            msg = f"--param expects KEY=VALUE, got {item!r}"
            raise CliError(msg, ExitCode.USAGE)
        params[key.strip()] = _parse_value(value.strip())
    return params


def _existing_dir(path: str, what: str = "DATASET") -> str:
    if not os.path.exists(path):
        msg = f"{what} {path}: no such folder"
        raise CliError(msg, ExitCode.NOT_FOUND)
    if not os.path.isdir(path):
        msg = f"{what} {path}: not a folder (give a dataset folder)"
        raise CliError(msg, ExitCode.USAGE)
    return path


def resolve_images(path: str, ext: str = "*") -> list[str]:
    """The image files a metric command measures, found the way :class:`~opsin.iq.datasets.DSWrapper` finds them.

    A file is measured as it is. A folder that holds an image sub-folder is a dataset: its single image folder is
    measured (top-level files such as a job's ``video_preview.png`` are not images of the dataset). A folder
    without one is an image folder.

    Args:
        path: an image file, an image folder or a dataset folder.
        ext: only this extension (``"*"``: every image extension).

    Returns:
        Sorted image paths.

    Raises:
        CliError: the path does not exist (exit code 4) or holds no image (exit code 2).
        DSLayoutError: a dataset folder with several image folders.
    """
    from opsin.iq.datasets.ds_tools import find_image_folder, image_folder_candidates, list_images

    if os.path.isfile(path):
        return [path]
    folder = _existing_dir(path, "PATH")
    if image_folder_candidates(folder):
        folder = find_image_folder(folder)
    wanted = ext.lower().lstrip(".")
    names = [n for n in list_images(folder) if wanted in ("*", "") or n.lower().rsplit(".", 1)[-1] == wanted]
    if not names:
        which = "image" if wanted in ("*", "") else f"*.{wanted} image"
        msg = f"PATH {path}: no {which} files in {folder}"
        raise CliError(msg, ExitCode.USAGE)
    return [os.path.join(folder, n) for n in names]


_out_option = click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="Write the JSON to this file instead of stdout."
)


@click.group(cls=OpsinGroup, version_text=__version__)
def main() -> None:
    """Image-quality tools: degrade datasets, check and describe them, measure SNR and sharpness.

    Datasets are folders holding one image sub-folder and optionally a COCO *.json, a *.geojson and an
    <images>_mask/ folder. Results are printed as JSON (or written with --out).
    """


@main.command()
@click.argument("dataset")
@click.option("-m", "--modifier", "kind", type=click.Choice(sorted(MODIFIERS)), required=True, help="Modifier.")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Modifier parameter, repeatable (values parsed as JSON: quality=85, sigma=1.5, dataset=xview).",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write the modified copy under this folder (default: next to DATASET).",
)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes.")
@click.option("--force", is_flag=True, help="Rebuild even when a valid cached copy exists.")
@_out_option
def modify(
    dataset: str,
    kind: str,
    params: tuple[str, ...],
    out_dir: str | None,
    workers: int,
    force: bool,
    out: str | None,
) -> None:
    """Write the modified copy DATASET#<modifier> and print its paths and parameters.

    Example: opsin-iq modify data/ds -m jpg -p quality=50
    """
    from opsin.iq.datasets import make_modifier
    from opsin.iq.errors import ModifierParamError

    _existing_dir(dataset)
    try:
        mod = make_modifier(kind, _parse_params(params), output_root=out_dir, n_jobs=workers)
    except ModifierParamError as exc:
        raise CliError(f"--param: {exc}", ExitCode.USAGE) from exc
    mod_input, mod_path, _ = mod.modify(data_path=dataset, force=force)
    _emit({"data_input": mod_input, "data_path": mod_path, "params": mod.log_parameters()}, out)


@main.command()
@click.argument("dataset")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the repaired annotations (default: DATASET_sanity).",
)
@click.option("--fix", is_flag=True, help="Also write repaired annotations and a report of every change.")
@click.option(
    "--images/--no-images",
    "check_images",
    default=True,
    show_default=True,
    help="Also check that referenced images exist and decode.",
)
@_out_option
def sanity(dataset: str, out_dir: str | None, fix: bool, check_images: bool, out: str | None) -> None:
    """Check a dataset's annotations (COCO or GeoJSON); with --fix, repair them.

    Prints {"problems": [...], "report": [...]} (the report lists what was removed or fixed and why); exits 1
    when problems were found and not fixed.
    """
    from opsin.iq.sanity import SanityCheck

    sc = SanityCheck(data_path=_existing_dir(dataset), output_path=out_dir or "")
    problems = sc.check_annotations()
    if check_images:
        problems += sc.check_images()
    report = sc.fix_annotations(problems) if fix else []
    _emit({"annotations": sc.annotfn, "problems": problems, "report": report, "output_path": sc.output_path}, out)
    if problems and not fix:
        msg = f"{len(problems)} problems in {sc.annotfn} (listed above; --fix writes a repaired copy)"
        raise CliError(msg, ExitCode.ERROR)


@main.command()
@click.argument("dataset")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for stats.json and plots (default: DATASET/stats).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write a standalone HTML preview of the images.",
)
@_out_option
def stats(dataset: str, out_dir: str | None, html_path: str | None, out: str | None) -> None:
    """Compute dataset statistics (sizes, classes, coverage, shapes), write stats.json and PNG plots.

    Every image is decoded; unreadable ones are listed in the result and make the command exit 2.
    """
    from opsin.iq.ds_stats import DsStats, notebook_imgs_preview

    ds = DsStats(data_path=_existing_dir(dataset), output_path=out_dir or "")
    result = ds.perform_stats(show_plots=False)
    if html_path:
        notebook_imgs_preview(dataset, export_html_filename=html_path, show_inline=False)
    _emit({"output_path": ds.output_path, "stats": result}, out)
    if ds.unreadable_images:
        first, reason = ds.unreadable_images[0]
        more = f" and {len(ds.unreadable_images) - 1} more" if len(ds.unreadable_images) > 1 else ""
        msg = f"unreadable image {first}{more} ({reason}); statistics cover the readable images only"
        raise CliError(msg, ExitCode.USAGE)


@main.command()
@click.argument("path")
@click.option(
    "--method",
    type=click.Choice(["HB", "HA"], case_sensitive=False),
    default="HB",
    show_default=True,
    help="Homogeneous blocks (HB) or homogeneous areas (HA).",
)
@click.option("--ext", default="*", show_default=True, help="Image extension to measure in a folder ('*': all).")
@click.option("--patch-size", type=click.IntRange(min=2), default=None, help="Window (default 3 for HB, 5 for HA).")
@click.option("--bias-correction", is_flag=True, help="Remove the small-sample bias (flat fields within 2 %).")
@click.option("--per-image", is_flag=True, help="Also list each image's (snr, err).")
@_out_option
def snr(
    path: str, method: str, ext: str, patch_size: int | None, bias_correction: bool, per_image: bool, out: str | None
) -> None:
    """Signal-to-noise ratio of an image, an image folder or a dataset (median, mean, std over images)."""
    from opsin.iq.metrics.snr_metric import SNRMetric, snr_function_from_fn

    method = method.upper()
    params: dict[str, t.Any] = {"patch_size": patch_size or (3 if method == "HB" else 5)}
    if bias_correction:
        params["bias_correction"] = True
    files = resolve_images(path, ext)
    metric = SNRMetric(None, ext=ext, method=method, params=params)
    result: dict[str, t.Any] = {"method": method, "params": params, "n_images": len(files)}
    result.update(metric.apply_files(files))
    if per_image:
        result["images"] = {os.path.basename(f): snr_function_from_fn(f, ext, method, params) for f in files}
    _emit(result, out)


@main.command()
@click.argument("path")
@click.option("--ext", default="*", show_default=True, help="Image extension to measure in a folder ('*': all).")
@click.option(
    "--esf-model",
    type=click.Choice(["logistic", "erf"]),
    default="logistic",
    show_default=True,
    help="logistic = the original iquaflow numbers; erf = accurate for Gaussian PSFs.",
)
@click.option(
    "--edge-length", type=click.IntRange(min=3), default=5, show_default=True, help="Edge piece length in pixels."
)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes (default: all CPUs).")
@_out_option
def sharpness(path: str, ext: str, esf_model: str, edge_length: int, workers: int | None, out: str | None) -> None:
    """RER, FWHM and MTF (Nyquist, half Nyquist) per edge direction X / Y / other of an image, folder or dataset."""
    from opsin.iq.experiments._demo import sharpness_metric

    files = resolve_images(path, ext)
    metric = sharpness_metric(None, workers, ext=ext, esf_model=esf_model, edge_length=edge_length)
    result: dict[str, t.Any] = {"esf_model": esf_model, "n_images": len(files)}
    result.update(metric.apply_files(files))
    _emit(result, out)


# The experiment commands (run, info, runs, plot, demo) live in their own module; imported last to avoid a cycle.
from opsin.iq._cli_experiments import register as _register_experiment_commands  # noqa: E402

_register_experiment_commands(main)

if __name__ == "__main__":  # pragma: no cover
    main()
