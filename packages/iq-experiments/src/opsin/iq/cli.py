"""The ``opsin-iq`` command line: modify datasets, check and describe them, measure SNR and sharpness."""

from __future__ import annotations

import json
import os
import sys
import typing as t

import click

from opsin.core import configure_logging, dumps_json

__all__ = ["MODIFIERS", "main"]

#: Modifier names accepted by ``opsin-iq modify`` -> class names in :mod:`opsin.iq.datasets`.
MODIFIERS: dict[str, str] = {
    "base": "DSModifier",
    "blur": "DSModifier_blur",
    "dir": "DSModifier_dir",
    "gsd": "DSModifier_gsd",
    "jpg": "DSModifier_jpg",
    "quant": "DSModifier_quant",
    "rer": "DSModifier_rer",
    "sharpness": "DSModifier_sharpness",
    "snr": "DSModifier_snr",
}


def _emit(obj: t.Any, output: str | None) -> None:
    text = dumps_json(obj, indent=2, allow_nan=True)
    if output:
        from opsin.core import atomic_write_text

        atomic_write_text(output, text + "\n")
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
        if not sep or not key:
            msg = f"--param expects KEY=VALUE, got {item!r}"
            raise click.BadParameter(msg, param_hint="--param")
        params[key.strip()] = _parse_value(value.strip())
    return params


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Image-quality tools: degrade datasets, check and describe them, measure SNR and sharpness.

    Datasets are folders holding one image sub-folder and optionally a COCO *.json, a *.geojson and an
    <images>_mask/ folder. Results are printed as JSON (or written with --output).
    """
    configure_logging("DEBUG" if verbose > 1 else "INFO" if verbose else "WARNING")


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
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
    "--output-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Write the modified copy under this folder (default: next to DATASET).",
)
@click.option("-j", "--jobs", type=int, default=1, show_default=True, help="Worker processes over images.")
@click.option("--force", is_flag=True, help="Rebuild even when a valid cached copy exists.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the JSON here.")
def modify(
    dataset: str,
    kind: str,
    params: tuple[str, ...],
    output_root: str | None,
    jobs: int,
    force: bool,
    output: str | None,
) -> None:
    """Write the modified copy DATASET#<modifier> and print its paths and parameters.

    Example: opsin-iq modify data/ds -m jpg -p quality=50
    """
    from opsin.iq import datasets

    cls = getattr(datasets, MODIFIERS[kind])
    kwargs: dict[str, t.Any] = {"output_root": output_root, "n_jobs": jobs}
    parsed = _parse_params(params)
    mod = cls(params=parsed, **kwargs) if parsed or kind not in ("base", "dir") else cls(**kwargs)
    mod_input, mod_path, _ = mod.modify(data_path=dataset, force=force)
    _emit({"data_input": mod_input, "data_path": mod_path, "params": mod.log_parameters()}, output)


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--output-path",
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
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the JSON here.")
def sanity(dataset: str, output_path: str | None, fix: bool, check_images: bool, output: str | None) -> None:
    """Check a dataset's annotations (COCO or GeoJSON); with --fix, repair them.

    Prints {"problems": [...], "report": [...]} (the report lists what was removed or fixed and why).
    """
    from opsin.iq.sanity import SanityCheck

    sc = SanityCheck(data_path=dataset, output_path=output_path or "")
    problems = sc.check_annotations()
    if check_images:
        problems += sc.check_images()
    report = sc.fix_annotations(problems) if fix else []
    _emit({"annotations": sc.annotfn, "problems": problems, "report": report, "output_path": sc.output_path}, output)
    if problems and not fix:
        sys.exit(1)


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--output-path",
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
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the JSON here.")
def stats(dataset: str, output_path: str | None, html_path: str | None, output: str | None) -> None:
    """Compute dataset statistics (sizes, classes, coverage, shapes), write stats.json and PNG plots."""
    from opsin.iq.ds_stats import DsStats, notebook_imgs_preview

    ds = DsStats(data_path=dataset, output_path=output_path or "")
    result = ds.perform_stats(show_plots=False)
    if html_path:
        notebook_imgs_preview(dataset, export_html_filename=html_path, show_inline=False)
    _emit({"output_path": ds.output_path, "stats": result}, output)


def _images(path: str, ext: str) -> list[str]:
    from opsin.iq.metrics._runs import image_files

    return image_files(path, ext)


@main.command()
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--method",
    type=click.Choice(["HB", "HA"], case_sensitive=False),
    default="HB",
    show_default=True,
    help="Homogeneous blocks (HB) or homogeneous areas (HA).",
)
@click.option("--ext", default="*", show_default=True, help="Image extension to measure in a folder ('*': all).")
@click.option("--patch-size", type=int, default=None, help="Window size (default 3 for HB, 5 for HA).")
@click.option("--bias-correction", is_flag=True, help="Remove the small-sample bias (flat fields within 2 %).")
@click.option("--per-image", is_flag=True, help="Also list each image's (snr, err).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the JSON here.")
def snr(
    path: str, method: str, ext: str, patch_size: int | None, bias_correction: bool, per_image: bool, output: str | None
) -> None:
    """Signal-to-noise ratio of an image or of every image of a folder (median, mean, std over images)."""
    from opsin.iq.metrics.snr_metric import SNRMetric, snr_function_from_fn

    params: dict[str, t.Any] = {"patch_size": patch_size or (3 if method.upper() == "HB" else 5)}
    if bias_correction:
        params["bias_correction"] = True
    files = _images(path, ext)
    metric = SNRMetric(None, ext=ext, method=method.upper(), params=params)
    result: dict[str, t.Any] = {"method": method.upper(), "params": params, "n_images": len(files)}
    result.update(metric.apply_files(files))
    if per_image:
        result["images"] = {os.path.basename(f): snr_function_from_fn(f, ext, method.upper(), params) for f in files}
    _emit(result, output)


@main.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--ext", default="*", show_default=True, help="Image extension to measure in a folder ('*': all).")
@click.option(
    "--esf-model",
    type=click.Choice(["logistic", "erf"]),
    default="logistic",
    show_default=True,
    help="logistic = the original iquaflow numbers; erf = accurate for Gaussian PSFs.",
)
@click.option("--edge-length", type=int, default=5, show_default=True, help="Edge piece length in pixels.")
@click.option("-j", "--jobs", type=int, default=-1, show_default=True, help="Worker processes (-1: all CPUs).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the JSON here.")
def sharpness(path: str, ext: str, esf_model: str, edge_length: int, jobs: int, output: str | None) -> None:
    """RER, FWHM and MTF (Nyquist, half Nyquist) per edge direction X / Y / other of an image or folder."""
    from opsin.iq.metrics.sharpness_metric import SharpnessMetric

    files = _images(path, ext)
    metric = SharpnessMetric(
        None, ext=ext, parallel=jobs != 1, njobs=jobs, esf_model=esf_model, edge_length=edge_length
    )
    result: dict[str, t.Any] = {"esf_model": esf_model, "n_images": len(files)}
    result.update(metric.apply_files(files))
    _emit(result, output)


# The experiment commands (run, info, runs, plot, demo) live in their own module; imported last to avoid a cycle.
from opsin.iq._cli_experiments import register as _register_experiment_commands  # noqa: E402

_register_experiment_commands(main)

if __name__ == "__main__":  # pragma: no cover
    main()
