"""Every code snippet of the seed document ``infinity-tools-package.txt`` runs against the local service.

Each snippet is kept verbatim except its import lines (``infinity_tools``/``infinity_core`` -> ``opsin.synth``) and
the token (``"API_TOKEN"`` -> the test user's token; the server comes from ``OPSIN_SYNTH_SERVER``). The one other
edit is a syntax fix: the seed's ``view_previews(random.choices(preview_job_paths, k=20)`` lacks its closing
parenthesis. Variables a snippet uses from earlier sections (``sesh``, ``batch``, ``target_job_path``...) are
provided by fixtures. Batches of full videos that the snippets submit (100 random videos, 512x512 reruns, a
50-job sweep) are checked and then cancelled, so the suite does not render them.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from opsin.synth import Batch
from opsin.synth.data_structures import JobType, ValidCompletedJob

GENERATOR = "visionfit-v0.4.0"

SESSION = """
from opsin.synth.visionfit.api import VisionFitSession

sesh = VisionFitSession(token="API_TOKEN", generator="visionfit-v0.4.0")
"""

PARAMETER_OPTIONS = """
from pprint import pprint
pprint(sesh.parameter_info)
"""

SAMPLE_INPUT = """
num_jobs = 10
light_min = sesh.parameter_info["lighting_power"]["options"]["min"]
light_max = sesh.parameter_info["lighting_power"]["options"]["max"]
job_params = [sesh.sample_input(
    exercise = "UPPERCUT-LEFT",
    num_reps = 1,
    lighting_power = random.uniform(light_min, light_max),
) for _ in range(num_jobs)]
"""

WITHOUT_SAMPLE_INPUT = """
job_params = [
    {"num_reps": 1,
    "lighting_power": random.uniform(light_min, light_max)}
    for _ in range(num_jobs)
]

batch = sesh.submit(
    job_params=job_params,
    is_preview=True,
    random_sample=False, # Unspecified params are set to their default values
    batch_name = "example with default values",
)

pprint(sesh.parameter_info)
"""

ESTIMATE = """
samples_by_job = sesh.estimate_samples(job_params, is_preview=False)
total_frames = sum(samples_by_job)
"""

SUBMIT = """
batch = sesh.submit(job_params, is_preview=True, batch_name="example preview batch")
"""

BATCH_STATIC = """
print(batch.job_ids)
print(batch.job_params)
print(batch.num_jobs)
"""

BATCH_DYNAMIC = """
print(batch.get_num_jobs_remaining())
print(batch.get_batch_data())
target_job = batch.job_ids[0]
print(batch.get_job_summary_data(job_id = target_job))
"""

COMPLETION = """
print(f"Finished? {'Y' if batch.get_num_jobs_remaining() == 0 else 'N'}")
completed_jobs = batch.await_completion(timeout = 60 * 60)
"""

DOWNLOAD = """
completed_jobs = batch.get_valid_completed_jobs()
batch.download(path = "../tmp")
"""

VISUALIZE_JOB_PARAMS = """
from opsin.synth.visionfit.vis import visualize_job_params
job_params = [sesh.sample_input() for _ in range(100)]
visualize_job_params(job_params)
"""

PANDAS = """
import pandas as pd
df = pd.DataFrame.from_records(job_params)
df.head()
# ... modify dataframe ...
final_job_params = df.to_dict("records")
batch = sesh.submit(
    job_params=final_job_params,
    is_preview=False,
    batch_name="modified batch using pandas df"
)
"""

VALIDATE = """
errors_by_job = sesh.validate_job_params(final_job_params)
assert all([e is None for e in errors_by_job])
"""

RERUN = """
seed_job_params = batch.get_job_params_seeded_for_rerun()
for jp in seed_job_params:
    jp["image_height"] = 512
    jp["image_width"] = 512
high_res_batch = sesh.submit(
    job_params=seed_job_params,
    is_preview=False,
    batch_name="high res rerun"
)
"""

SWEEP = """
# Re-run the first five seeds from a previous batch of previews, each
# expanded across a range of camera heights.
seed_job_params = batch.get_job_params_seeded_for_rerun()[0:5]
seed_job_ids = [p["state"] for p in seed_job_params]
sweep_params =[{"camera_height": v} for v in np.linspace(1.0, 2.5, 10)]

# This will have 5 * 10 = 50 jobs in the expanded batch.
new_batch_params = sesh.expand_overrides_across_each_preview_state(
    seed_job_ids,
    sweep_params,
)
sweep_batch = sesh.submit(
    job_params=new_batch_params,
    is_preview=False,
    batch_name="camera height sweep"
)
"""

RESULTS_TABLE = """
# Review submitted batch job parameters with dataframe.
df_jp = pd.DataFrame.from_records(batch.job_params)
df_jp.head()

# Download and visualize results from a batch
download_path = "tmp/results"
batch.download(download_path)

from opsin.synth.visionfit.vis import summarize_batch_results_as_dataframe
df_results = summarize_batch_results_as_dataframe(download_path)
"""

RESULTS_GRAPHICAL = """
from opsin.synth.visionfit.vis import visualize_batch_results
visualize_batch_results(download_path)
"""

VIEW_MEDIA = """
# For a batch of previews.
from opsin.synth.common.vis.images import get_subdirectories, view_previews
preview_job_paths = get_subdirectories(download_path)
view_previews(random.choices(preview_job_paths, k=20))

# For a batch of videos.
from opsin.synth.visionfit.vis import visualize_all_labels
video_path = visualize_all_labels(target_job_path)
"""


def run_snippet(source: str, namespace: dict[str, Any], token: str) -> dict[str, Any]:
    """Run a snippet like a notebook cell: statements, then the value of a trailing expression stored as ``_``."""
    tree = ast.parse(source.replace('"API_TOKEN"', repr(token)))
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<seed snippet>", "exec"), namespace)
    if last is not None:
        namespace["_"] = eval(compile(ast.Expression(last.value), "<seed snippet>", "eval"), namespace)
    return namespace


@pytest.fixture(scope="module")
def sesh(service) -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPSIN_SYNTH_SERVER", service.url)  # the session snippet itself, with the server from the env
        ns = run_snippet(SESSION, {}, service.token)
    return ns["sesh"]


@pytest.fixture(autouse=True)
def _env(client_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")


@pytest.fixture(scope="module")
def preview_batch(sesh) -> Batch:
    job_params = [sesh.sample_input(exercise="UPPERCUT-LEFT", num_reps=1, image_width=128) for _ in range(10)]
    batch = sesh.submit(job_params, is_preview=True, batch_name="fixture previews")
    batch.await_completion(polling_interval=0.2, timeout=120, progress=False)
    return batch


@pytest.fixture(scope="module")
def video_batch(sesh) -> Batch:
    small = {"exercise": "UPPERCUT-LEFT", "num_reps": 1, "frame_rate": 6, "image_width": 128, "image_height": 128}
    batch = sesh.submit([small, {**small, "exercise": "UPPERCUT-RIGHT"}], batch_name="fixture videos")
    batch.await_completion(polling_interval=0.2, timeout=120, progress=False)
    return batch


def _base(sesh) -> dict[str, Any]:
    from pprint import pprint

    return {"sesh": sesh, "random": random, "np": np, "pd": pd, "pprint": pprint}


def test_session_snippet(service, monkeypatch: pytest.MonkeyPatch) -> None:
    ns = run_snippet(SESSION, {}, service.token)
    assert ns["sesh"].generator == GENERATOR
    assert ns["sesh"].server == service.url


def test_parameter_options_snippet(sesh, service, capsys) -> None:
    run_snippet(PARAMETER_OPTIONS, _base(sesh), service.token)
    out = capsys.readouterr().out
    assert "'lighting_power'" in out
    assert "'choices'" in out


def test_sample_input_snippet(sesh, service) -> None:
    ns = run_snippet(SAMPLE_INPUT, _base(sesh), service.token)
    assert len(ns["job_params"]) == 10
    for jp in ns["job_params"]:
        assert jp["exercise"] == "UPPERCUT-LEFT"
        assert jp["num_reps"] == 1
        assert ns["light_min"] <= jp["lighting_power"] <= ns["light_max"]
        assert "state" not in jp
    assert sesh.validate_job_params(ns["job_params"]) == [None] * 10


def test_without_sample_input_and_estimate_snippets(sesh, service, capsys) -> None:
    ns = run_snippet(SAMPLE_INPUT, _base(sesh), service.token)
    ns = run_snippet(WITHOUT_SAMPLE_INPUT, ns, service.token)
    batch = ns["batch"]
    try:
        assert batch.job_type is JobType.PREVIEW
        assert batch.num_jobs == 10
        assert batch.name == "example with default values"
        for submitted, stored in zip(ns["job_params"], batch.job_params):
            assert stored == {**sesh.default_job, **submitted}  # unspecified = defaults
        ns = run_snippet(ESTIMATE, ns, service.token)
        assert len(ns["samples_by_job"]) == 10
        assert ns["total_frames"] == sum(ns["samples_by_job"]) > 10
        assert sesh.estimate_samples(ns["job_params"], is_preview=True) == [1] * 10
    finally:
        batch.cancel()


def test_submit_and_batch_information_snippets(sesh, service, capsys) -> None:
    ns = run_snippet(SAMPLE_INPUT, _base(sesh), service.token)
    ns["job_params"] = [{**jp, "image_width": 128, "image_height": 128} for jp in ns["job_params"]]
    ns = run_snippet(SUBMIT, ns, service.token)
    batch = ns["batch"]
    assert batch.name == "example preview batch"
    assert batch.num_jobs == 10
    run_snippet(BATCH_STATIC, ns, service.token)
    run_snippet(BATCH_DYNAMIC, ns, service.token)
    out = capsys.readouterr().out
    assert batch.job_ids[0] in out
    assert "'job_runs'" in out
    assert "'in_progress'" in out
    batch.await_completion(polling_interval=0.2, timeout=120, progress=False)  # keep the 10 s default poll short
    ns = run_snippet(COMPLETION, ns, service.token)
    assert "Finished? Y" in capsys.readouterr().out
    assert len(ns["completed_jobs"]) == 10
    assert all(isinstance(j, ValidCompletedJob) for j in ns["completed_jobs"])
    ns = run_snippet(DOWNLOAD, ns, service.token)
    folder = (Path.cwd() / ".." / "tmp").resolve()
    assert (folder / "batch_id.txt").read_text() == batch.batch_id
    assert all((folder / j / "video_preview.png").is_file() for j in batch.job_ids)


def test_visualize_job_params_snippet(sesh, service) -> None:
    ns = run_snippet(VISUALIZE_JOB_PARAMS, _base(sesh), service.token)
    assert len(ns["job_params"]) == 100
    fig = ns["_"]  # the value the snippet's last line displays in a notebook
    assert isinstance(fig, Figure)
    assert len([ax for ax in fig.axes if ax.get_title()]) == len(sesh.parameter_info) - 1  # all but `state`


def test_pandas_and_validation_snippets(sesh, service) -> None:
    ns = {**_base(sesh), "job_params": [sesh.sample_input() for _ in range(100)]}  # as in the previous snippet
    ns = run_snippet(PANDAS, ns, service.token)
    batch = ns["batch"]
    try:
        assert batch.num_jobs == 100
        assert batch.job_type is JobType.STANDARD
        for submitted, stored in zip(ns["final_job_params"], batch.job_params):
            assert stored == {**sesh.default_job, **submitted}
        run_snippet(VALIDATE, ns, service.token)
    finally:
        batch.cancel()


def test_rerun_snippet(sesh, service, preview_batch) -> None:
    ns = {**_base(sesh), "batch": preview_batch}
    ns = run_snippet(RERUN, ns, service.token)
    high_res = ns["high_res_batch"]
    try:
        assert high_res.job_type is JobType.STANDARD
        for job_id, original, rerun in zip(preview_batch.job_ids, preview_batch.job_params, high_res.job_params):
            assert rerun == {**original, "image_width": 512, "image_height": 512, "state": job_id}
        assert all(p["state"] is None for p in preview_batch.job_params)  # the batch's own params untouched
    finally:
        high_res.cancel()


def test_sweep_snippet(sesh, service, preview_batch) -> None:
    ns = run_snippet(SWEEP, {**_base(sesh), "batch": preview_batch}, service.token)
    sweep = ns["sweep_batch"]
    try:
        assert sweep.num_jobs == 50
        heights = np.linspace(1.0, 2.5, 10)
        for index, params in enumerate(sweep.job_params):
            base = index // 10
            assert params["state"] == preview_batch.job_ids[base]
            assert params["camera_height"] == pytest.approx(heights[index % 10])
            assert params["exercise"] == preview_batch.job_params[base]["exercise"]
    finally:
        sweep.cancel()


def test_analysis_snippets(sesh, service, video_batch, preview_batch) -> None:
    ns = run_snippet(RESULTS_TABLE, {**_base(sesh), "batch": video_batch}, service.token)
    df = ns["df_results"]
    assert list(df["job_id"]) == sorted(video_batch.job_ids)
    assert (df["num_frames"] > 1).all()
    assert df["avg_percent_in_fov"].notna().all()
    ns = run_snippet(RESULTS_GRAPHICAL, ns, service.token)
    preview_path = Path("previews")
    preview_batch.download(preview_path, quiet=True)
    target_job_path = str(Path(ns["download_path"]) / video_batch.job_ids[0])
    ns = run_snippet(
        VIEW_MEDIA, {**ns, "download_path": str(preview_path), "target_job_path": target_job_path}, service.token
    )
    assert Path(ns["video_path"]).is_file()
    assert Path(ns["video_path"]).name == "all_labels.mp4"
