import importlib

import pytest

import opsin.iq

EXPECTED = {
    "opsin.iq": [
        "AnnotationFormatError",
        "DSAnnotationsNotFound",
        "DSAnnotationsNotFoundError",
        "DSLayoutError",
        "DSNotFound",
        "DSNotFoundError",
        "ExperimentFailedError",
        "ExperimentFileError",
        "ExperimentNotFound",
        "ExperimentNotFoundError",
        "IQError",
        "ImageReadError",
        "ModifierNotConfigured",
        "ModifierNotConfiguredError",
        "ModifierParamError",
        "TaskFailed",
        "TaskFailedError",
        "TaskTimeoutError",
        "TrackingServerError",
        "__version__",
    ],
    "opsin.iq.datasets": [
        "DSAnnotationsNotFound",
        "DSAnnotationsNotFoundError",
        "DSLayoutError",
        "DSModifier",
        "DSModifier_blur",
        "DSModifier_dir",
        "DSModifier_gsd",
        "DSModifier_jpg",
        "DSModifier_quant",
        "DSModifier_rer",
        "DSModifier_sharpness",
        "DSModifier_snr",
        "DSModifier_sr",
        "DSNotFound",
        "DSNotFoundError",
        "DSWrapper",
        "ImageReadError",
        "MODIFIERS",
        "ModifierParamError",
        "make_modifier",
        "modifier_class",
    ],
    "opsin.iq.metrics": [
        "BBDetectionMetrics",
        "Metric",
        "SNRHomogeneousArea",
        "SNRHomogeneousBlocks",
        "SNRMetric",
        "SharpnessMeasure",
        "SharpnessMetric",
        "coco_eval_metrics_names",
        "mtf_from_array",
        "sharpness_function_from_array",
        "sharpness_function_from_fn",
        "snr_function_from_array",
        "snr_function_from_fn",
    ],
    "opsin.iq.sanity": [
        "REQUIRED_FIELDS",
        "Rasterize",
        "SanityCheck",
        "VALID_IMAGE_TYPES",
        "clean_list",
        "read_geojson",
        "write_geojson",
    ],
    "opsin.iq.ds_stats": ["DsStats", "notebook_annots_summary", "notebook_imgs_preview"],
    "opsin.iq.io": ["GEO_TAGS", "IMAGE_EXTENSIONS", "ImageMeta", "encode_jpeg", "read_image", "write_image"],
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_all_is_pinned_and_sorted(module):
    mod = importlib.import_module(module)
    assert mod.__all__ == sorted(mod.__all__)
    assert mod.__all__ == EXPECTED[module]
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_version():
    assert opsin.iq.__version__ == "0.1.0"


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("opsin.iq.datasets.ds_tools", ["find_image_folder", "list_images"]),
        ("opsin.iq.datasets.ds_exceptions", ["DSNotFound", "DSLayoutError", "ImageReadError"]),
        ("opsin.iq.datasets.modifier_jpg", ["DSModifier_jpg"]),
        ("opsin.iq.datasets.modifier_quant", ["DSModifier_quant"]),
        ("opsin.iq.datasets.modifier_blur", ["DSModifier_blur"]),
        ("opsin.iq.datasets.modifier_gsd", ["DSModifier_gsd"]),
        ("opsin.iq.datasets.modifier_sharpness", ["DSModifier_sharpness"]),
        ("opsin.iq.datasets.modifier_snr", ["DSModifier_snr"]),
        ("opsin.iq.datasets.modifier_rer", ["DSModifier_rer"]),
        ("opsin.iq.datasets.modifier_sr", ["DSModifier_sr"]),
        ("opsin.iq.metrics.sharpness_metric", ["SharpnessMeasure", "mtf_from_array", "model_esf", "gaussian"]),
        ("opsin.iq.metrics.snr_metric", ["SNRBase", "SNRHomogeneousBlocks", "SNRHomogeneousArea"]),
        ("opsin.iq.metrics.detection_metrics", ["coco_eval_metrics_names"]),
    ],
)
def test_compat_module_paths(module, names):
    mod = importlib.import_module(module)
    for name in names:
        assert hasattr(mod, name), f"{module}.{name}"


def test_errors_derive_from_opsin_error_and_builtins():
    from opsin.core import OpsinError
    from opsin.iq import errors

    assert issubclass(errors.IQError, OpsinError)
    assert issubclass(errors.DSNotFound, FileNotFoundError)
    assert issubclass(errors.DSAnnotationsNotFound, FileNotFoundError)
    assert issubclass(errors.DSLayoutError, ValueError)
    assert issubclass(errors.ImageReadError, OSError)
    assert issubclass(errors.ModifierNotConfigured, NotImplementedError)
