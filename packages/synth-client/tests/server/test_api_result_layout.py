"""A VisionFit job downloaded through the service has the real fixture batch's layout (the original's result layout)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from svc_helpers import FIXTURES, Service, batch_body, wait_batch

from opsin.core import safe_extract_zip

SAMPLE = FIXTURES / "visionfit-v0.4.0-sample"
SAMPLE_JOB = "1b3f73c9-0e95-46f7-93c3-ce0ae516b413"
NOT_PRODUCED = {"person_idx", "action"}  # optional fields our generator does not write
EXTRA_INFO = {"generator", "seed_job_id"}  # extra info keys of ours
TIMING_KEYS = {"frame_render", "frame_annotate", "frame_render_misc", "image_metrics", "num_frames"}


def _key_tree(value: Any) -> Any:
    """Structure of a JSON document: dict -> {key: tree}, list -> [tree of its first element]."""
    if isinstance(value, dict):
        return {key: _key_tree(item) for key, item in value.items() if key not in NOT_PRODUCED}
    if isinstance(value, list):
        return [_key_tree(value[0])] if value and isinstance(value[0], (dict, list)) else []
    return None


def read_job(folder: Path) -> dict[str, Any]:
    """The reader both the fixture and our download go through."""
    labels = json.loads((folder / "labels.json").read_text())
    person = [ann for ann in labels["annotations"] if ann["category_id"] == 0]
    with zipfile.ZipFile(folder / "segmentation.zip") as archive:
        patterns = {re.sub(r"\d", "N", name) for name in archive.namelist()}
    return {
        "files": sorted(path.name for path in folder.iterdir()),
        "job": json.loads((folder / "job.json").read_text()),
        "labels": labels,
        "tree": _key_tree(
            {**labels, "info": {k: v for k, v in labels["info"].items() if k not in EXTRA_INFO}, "annotations": person}
        ),
        "segmentation_patterns": patterns,
        "timing": json.loads((folder / "timing.json").read_text()),
    }


def _fetch(url: str, dest: Path, job_id: str) -> Path:
    response = httpx.get(url, timeout=60.0)
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert {name.split("/")[0] for name in archive.namelist()} == {job_id}  # single root <job_id>/
    dest.mkdir(parents=True, exist_ok=True)
    zip_path = dest / f"{job_id}.zip"
    zip_path.write_bytes(response.content)
    return safe_extract_zip(zip_path, dest / "x", required_root=job_id) / job_id


@pytest.mark.slow
def test_downloaded_visionfit_job_matches_the_real_sample(service: Service, tmp_path: Path) -> None:
    if not (SAMPLE / SAMPLE_JOB / "labels.json").is_file():
        pytest.skip(f"real fixture batch not found at {SAMPLE} (set OPSIN_FIXTURES to the fixtures folder)")
    reference = read_job(SAMPLE / SAMPLE_JOB)
    client = service.user(samples=1000)
    params = {"num_reps": 1, "frame_rate": 6, "image_width": 128, "image_height": 128, "exercise": "UPPERCUT-LEFT"}
    video = client.post("/api/batch/", json=batch_body(1, generator="visionfit-v0.4.0", **params)).json()
    preview = client.post("/api/batch/", json=batch_body(1, generator="visionfit-v0.4.0", is_preview=True,
                                                         **params)).json()  # fmt: skip
    jobs = {}
    for batch, kind in ((video, "video"), (preview, "preview")):
        entry = wait_batch(client, batch["id"], timeout=120)["job_runs"][0]
        assert entry["status"] == "succeeded", client.get(f"/api/job_runs/{entry['id']}/").text
        jobs[kind] = (entry["id"], read_job(_fetch(entry["result_url"], tmp_path / kind, entry["id"])))

    video_id, ours = jobs["video"]
    assert ours["files"] == reference["files"]
    assert ours["tree"] == reference["tree"]
    assert ours["segmentation_patterns"] == reference["segmentation_patterns"]
    assert set(ours["labels"]["info"]) >= EXTRA_INFO
    assert set(ours["job"]) == {"name", "params"}
    assert ours["job"]["name"] == "visionfit-v0.4.0"
    assert set(ours["job"]["params"]) == set(reference["job"]["params"])
    assert set(ours["timing"]) >= TIMING_KEYS
    detail = client.get(f"/api/job_runs/{video_id}/").json()
    frames = len(ours["labels"]["images"])
    assert frames == detail["estimated_samples"] == detail["actual_samples"] == ours["timing"]["num_frames"]
    assert ours["job"]["params"] == detail["param_values"]

    preview_id, small = jobs["preview"]
    assert small["files"] == [name for name in reference["files"] if name != "video.mp4"]
    assert small["tree"] == reference["tree"]
    assert len(small["labels"]["images"]) == 1
    assert client.get(f"/api/job_previews/{preview_id}/").json()["actual_samples"] == 1
