"""Analysis helpers and COCO export on a VisionFit batch with two labelled jobs and three label-less ones.

Each test runs on a batch rendered by the package's own generator, and again on the real sample batch when the
fixtures are present (``OPSIN_FIXTURES``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib.figure import Figure

from opsin.synth.common.vis.images import get_subdirectories, view_previews
from opsin.synth.common.vis.videos import create_grid_of_videos, parse_video_frames, stack_videos, write_video
from opsin.synth.export import job_to_coco
from opsin.synth.visionfit.vis import (
    summarize_batch_results_as_dataframe,
    visualize_all_labels,
    visualize_batch_results,
    visualize_job_params,
)

REAL_LABELLED_FRAMES = [55, 81]  # frames of the real sample's two labelled jobs


def _labelled(batch: Path) -> list[str]:
    """Names of the job folders that carry labels (sorted)."""
    return sorted(p.name for p in batch.iterdir() if (p / "labels.json").is_file())


def _label_less(batch: Path) -> list[str]:
    return sorted(p.name for p in batch.iterdir() if (p / "job.json").is_file() and not (p / "video.mp4").exists())


def _png_ok(path: Path) -> None:
    assert path.is_file()
    assert path.stat().st_size > 1000
    image = cv2.imread(str(path))
    assert image is not None
    assert image.std() > 1.0


def test_summary_has_one_row_per_job(fixture_batch: Path) -> None:
    df = summarize_batch_results_as_dataframe(fixture_batch)
    job_dirs = sorted(p.name for p in fixture_batch.iterdir() if p.is_dir())
    assert list(df["job_id"]) == job_dirs
    assert len(df) == 5
    assert list(df.columns[:5]) == ["job_path", "job_id", "num_frames", "avg_percent_in_fov", "avg_percent_occlusion"]
    for _, row in df.iterrows():
        folder = fixture_batch / row["job_id"]
        params = json.loads((folder / "job.json").read_text())["params"]
        if (folder / "labels.json").is_file():
            labels = json.loads((folder / "labels.json").read_text())
            assert row["num_frames"] == len(labels["images"])
            fov = [a["percent_in_fov"] for a in labels["annotations"] if a["category_id"] == 0]
            assert row["avg_percent_in_fov"] == pytest.approx(np.mean(fov))
        else:
            assert row["num_frames"] == json.loads((folder / "timing.json").read_text())["num_frames"]
            assert math.isnan(row["avg_percent_in_fov"])
            assert math.isnan(row["avg_percent_occlusion"])
        assert row["camera_distance"] == pytest.approx(params["camera_distance"])
        assert bool(row["add_wall_art"]) == params["add_wall_art"]
    assert df["add_wall_art"].dtype == bool  # bools kept, not coerced to numbers
    assert df["num_reps"].dtype.kind == "i"
    assert df["camera_distance"].dtype.kind == "f"
    labelled = _labelled(fixture_batch)
    assert len(labelled) == 2
    frames = sorted(df[df["job_id"].isin(labelled)]["num_frames"])
    if fixture_batch.joinpath("1b3f73c9-0e95-46f7-93c3-ce0ae516b413").is_dir():
        assert frames == REAL_LABELLED_FRAMES


def test_figures_are_written(fixture_batch: Path, tmp_path: Path) -> None:
    df = summarize_batch_results_as_dataframe(fixture_batch)
    fig = visualize_batch_results(fixture_batch)
    assert isinstance(fig, Figure)
    plotted = [ax for ax in fig.axes if ax.get_title()]
    expected = [c for c in df.columns if c not in ("job_path", "job_id", "state")]
    assert [ax.get_title() for ax in plotted] == expected  # every column has its subplot
    fig.savefig(tmp_path / "results.png", dpi=50)
    _png_ok(tmp_path / "results.png")
    keep = ("gender", "scene", "num_reps", "camera_distance", "add_wall_art", "state")
    params = [
        {k: v for k, v in json.loads((Path(p) / "job.json").read_text())["params"].items() if k in keep}
        for p in get_subdirectories(fixture_batch)
    ]
    out = tmp_path / "sub" / "params.png"
    fig2 = visualize_job_params(params, stratify_var="gender", output_path=out, num_per_row=5)
    assert isinstance(fig2, Figure)
    assert sorted(ax.get_title() for ax in fig2.axes if ax.get_title()) == sorted(keep[:-1])  # `state` dropped
    _png_ok(out)
    fig3 = view_previews(np.array(get_subdirectories(fixture_batch)))
    titles = sorted(ax.get_title() for ax in fig3.axes if ax.get_title())
    assert titles == sorted(f"{j[:7]}..." for j in _labelled(fixture_batch))  # label-less jobs skipped
    fig3.savefig(tmp_path / "previews.png", dpi=50)
    _png_ok(tmp_path / "previews.png")


def test_get_subdirectories_skips_hidden_and_files(tmp_path: Path) -> None:
    for name in ("b", "a", ".hidden"):
        (tmp_path / name).mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert get_subdirectories(tmp_path) == [str(tmp_path / "a"), str(tmp_path / "b")]


def test_label_videos_have_one_frame_per_labelled_frame(fixture_batch: Path) -> None:
    job = fixture_batch / _labelled(fixture_batch)[0]
    labels = json.loads((job / "labels.json").read_text())
    grid = Path(visualize_all_labels(job))
    assert grid == job / "output" / "all_labels.mp4"
    source = parse_video_frames(job / "video.mp4")
    height, width = source[0].shape[:2]
    for name in ("bounding_box", "skeleton", "cuboids", "3D_keypoints", "segmentation", "timeseries"):
        frames = parse_video_frames(job / "output" / f"{name}.mp4")
        assert len(frames) == len(labels["images"]), name
        assert frames[0].shape[:2] == (height, width)
    grid_frames = parse_video_frames(grid)
    assert len(grid_frames) == len(labels["images"])
    assert grid_frames[0].shape[:2] == (2 * height, 3 * width)
    # the box video differs from the source only around the labelled box (joined via image_id -> frame_number)
    image = next(im for im in labels["images"] if im["frame_number"] == 10)
    ann = next(a for a in labels["annotations"] if a["image_id"] == image["id"])
    x, y, w, h = ann["bbox"]
    box = parse_video_frames(job / "output" / "bounding_box.mp4")[10].astype(int)
    diff = np.abs(box - source[10].astype(int)).sum(axis=2) > 60
    ys, xs = np.nonzero(diff)
    assert len(xs) > 50
    assert xs.min() >= x - 4
    assert xs.max() <= x + w + 4
    assert ys.max() <= y + h + 4


def test_preview_job_has_no_label_video(fixture_batch: Path) -> None:
    with pytest.raises(FileNotFoundError):
        visualize_all_labels(fixture_batch / _label_less(fixture_batch)[0])


def test_job_to_coco(fixture_batch: Path, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    job = fixture_batch / _labelled(fixture_batch)[1]
    target = job_to_coco(job, tmp_path / "coco")
    data = json.loads(target.read_text())
    labels = json.loads((job / "labels.json").read_text())
    assert len(data["images"]) == len(labels["images"])
    assert len(data["annotations"]) == len(labels["annotations"])
    for image in data["images"]:
        assert image["file_name"] == f"{image['frame_number']:06d}.png"
        assert (tmp_path / "coco" / "images" / image["file_name"]).is_file()
    coco = COCO(str(target))
    assert len(coco.getImgIds()) == len(labels["images"])
    first = cv2.imread(str(tmp_path / "coco" / "images" / "000000.png"))
    assert first.shape[:2] == (labels["images"][0]["height"], labels["images"][0]["width"])


def test_video_helpers_roundtrip(tmp_path: Path) -> None:
    red = [np.full((16, 24, 3), (200, 0, 0), np.uint8)] * 3
    blue = [np.full((16, 24, 3), (0, 0, 200), np.uint8)] * 5
    a = write_video(red, tmp_path / "a.mp4", 6)
    b = write_video(blue, tmp_path / "b.mp4", 6)
    stacked = stack_videos([red, blue])
    assert len(stacked) == 5
    assert stacked[0].shape == (16, 48, 3)
    grid = parse_video_frames(create_grid_of_videos([a, b, a], tmp_path / "g.mp4", num_cols=2))
    assert len(grid) == 5
    assert grid[0].shape[:2] == (32, 48)
    assert grid[0][4, 4, 0] > 150
    assert grid[0][4, 28, 2] > 150
    assert grid[0][24, 28].max() < 30


def test_video_as_gif(fixture_batch: Path, tmp_path: Path) -> None:
    from PIL import Image

    from opsin.synth.common.vis.notebook import display_video_as_gif

    video = fixture_batch / _labelled(fixture_batch)[0] / "video.mp4"
    height, width = parse_video_frames(video)[0].shape[:2]
    gif = display_video_as_gif(video, tmp_path / "v.gif", max_frames=8, scale=0.5)
    with Image.open(gif) as image:
        assert image.n_frames == 8
        assert image.size == (width // 2, height // 2)


def test_summary_coerces_string_params(tmp_path: Path) -> None:
    for name, reps in (("b-job", "3"), ("a-job", "12")):
        (tmp_path / name).mkdir()
        params = {"num_reps": reps, "camera_distance": "2.5", "add_wall_art": True, "scene": "GYM_1", "state": None}
        (tmp_path / name / "job.json").write_text(json.dumps({"name": "g", "params": params}))
    (tmp_path / "no-job").mkdir()
    df = summarize_batch_results_as_dataframe(tmp_path)
    assert list(df["job_id"]) == ["a-job", "b-job"]
    assert list(df["num_reps"]) == [12, 3]
    assert df["num_reps"].dtype.kind == "i"
    assert df["camera_distance"].dtype.kind == "f"
    assert df["add_wall_art"].dtype == bool
    assert list(df["scene"]) == ["GYM_1", "GYM_1"]
    assert df["num_frames"].isna().all()
