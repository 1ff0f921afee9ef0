"""What users paste first: the README examples and the user guide's Quickstart, as plain scripts.

Each runs in a fresh interpreter from a file without an ``if __name__ == "__main__":`` guard (the way iquaflow
users write them), so any process pool that re-imports ``__main__`` would re-run the script in its workers: the
output would repeat, hang or fail. The README blocks are taken from the README itself, so the test follows the text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
TIMEOUT_S = 600


def _readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _run(script: str, cwd: Path, name: str) -> subprocess.CompletedProcess[str]:
    path = cwd / name
    path.write_text(script, encoding="utf-8")
    assert "__main__" not in script
    return subprocess.run(
        [sys.executable, str(path)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, "OPSIN_NO_PROGRESS": "1"},
        check=False,
    )


def _my_dataset(tmp_path: Path, coco_ds: Path) -> Path:
    dst = tmp_path / "data" / "my_dataset"
    shutil.copytree(coco_ds, dst)
    return dst


def test_the_readme_has_the_two_examples():
    blocks = _readme_blocks()
    assert len(blocks) == 2
    assert "DSModifier_rer" in blocks[0]
    assert "n_jobs=2" in blocks[0]
    assert "ExperimentSetup" in blocks[1]


@pytest.mark.slow
def test_readme_example_1_runs_as_a_plain_script(tmp_path, coco_ds):
    _my_dataset(tmp_path, coco_ds)
    proc = _run(_readme_blocks()[0], tmp_path, "example1.py")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("{'ds_name': 'my_dataset#jpg") for line in lines) == 3  # each printed once
    assert sum("RER_X" in line for line in lines) == 2
    assert "bootstrapping phase" not in proc.stderr
    assert "leaked semaphore" not in proc.stderr
    for name in ("jpg10_modifier", "jpg50_modifier", "jpg90_modifier", "rer0.3_modifier"):
        folder = tmp_path / "data" / f"my_dataset#{name}" / "images"
        assert sorted(os.listdir(folder)) == sorted(os.listdir(coco_ds / "images")), name
    assert (tmp_path / "data" / "my_dataset" / "stats" / "stats.json").is_file()


@pytest.mark.slow
def test_readme_example_2_runs_as_a_plain_script(tmp_path, coco_ds):
    _my_dataset(tmp_path, coco_ds)
    proc = _run(_readme_blocks()[1], tmp_path, "example2.py")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BrokenProcessPool" not in proc.stderr
    assert "bootstrapping phase" not in proc.stderr
    from opsin.iq.experiments import ExperimentInfo

    info = ExperimentInfo("jpeg-sweep")
    assert [r["run_status"] for r in info.runs.values()] == ["FINISHED"] * 8
    df = info.get_df(["modifier", "lr"], ["val_auc"])
    assert len(df) == 8
    assert (tmp_path / "jpeg_sweep.png").read_bytes()[:4] == b"\x89PNG"


QUICKSTART = """
import os

from opsin.iq.datasets import DSWrapper
from opsin.iq.datasets import DSModifier_jpg
from opsin.iq.experiments import ExperimentSetup, example_script_path
from opsin.iq.experiments import ExperimentInfo
from opsin.iq.experiments import ExperimentVisual
from opsin.iq.experiments.task_execution import PythonScriptTaskExecution

data_path = "data/my_dataset"
task = PythonScriptTaskExecution(model_script_path=example_script_path())

ds_wrapper = DSWrapper(data_path=data_path)
ds_modifiers_list = [DSModifier_jpg(params={'quality': i}) for i in [10, 90]]
experiment = ExperimentSetup(
    experiment_name="MyFirstExperiment",
    task_instance=task,
    ref_dsw_train=ds_wrapper,
    ds_modifiers_list=ds_modifiers_list,
    repetitions=1,
    extra_train_params={
        'epochs': [5],
        'lr': [0.05, 0.5]
    }
)
experiment.execute()
experiment_name = "MyFirstExperiment"
experiment_info = ExperimentInfo(experiment_name)
runs = experiment_info.runs
df = experiment_info.get_df(
    ds_params=["modifier"],
    metrics=['rmse', 'epochs', 'lr'],
    dropna=True,
    fields_to_float_lst=['rmse', 'lr'],
    fields_to_int_lst=['epochs']
)
ev = ExperimentVisual(
    df,
    os.path.join(data_path, "mod-rmse-lr-epoch.png")
)
ev.visualize(
    xvar="lr",
    yvar="rmse",
    legend_var="epochs",
    title="rmse - lr"
)
print("rows", len(df))
"""


@pytest.mark.slow
def test_the_user_guide_quickstart_runs_as_a_plain_script(tmp_path, coco_ds):
    # the guide's statements with imports changed; data_path and task defined, the grid made small
    data = _my_dataset(tmp_path, coco_ds)
    proc = _run(textwrap.dedent(QUICKSTART), tmp_path, "quickstart.py")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines().count("rows 4") == 1
    assert (data / "mod-rmse-lr-epoch.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_every_run_failing_is_an_error_not_a_success(tmp_path, coco_ds):
    fail = tmp_path / "fail.py"
    fail.write_text('import sys\nprint("boom: no GPU here", file=sys.stderr)\nsys.exit(3)\n')
    script = textwrap.dedent(
        f"""
        from opsin.iq.datasets import DSModifier, DSWrapper
        from opsin.iq.experiments import ExperimentSetup, PythonScriptTaskExecution

        ExperimentSetup(
            experiment_name="doomed",
            task_instance=PythonScriptTaskExecution({str(fail)!r}),
            ref_dsw_train=DSWrapper(data_path={str(coco_ds)!r}),
            ds_modifiers_list=[DSModifier()],
            extra_train_params={{"lr": [0.1, 0.2]}},
        ).execute()
        print("not reached")
        """
    )
    proc = _run(script, tmp_path, "doomed.py")
    assert proc.returncode == 1
    assert "not reached" not in proc.stdout
    assert "ExperimentFailedError" in proc.stderr
    assert "all 2 runs failed" in proc.stderr
    assert "boom: no GPU here" in proc.stderr  # the first failure's last stderr line
