"""Parallel modifiers and metrics from a plain script without an ``if __name__ == "__main__":`` guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _synth import edge_image

from opsin.iq.io import write_image

SCRIPT = """
import hashlib, json, logging, os, sys
logging.basicConfig(level=logging.WARNING, format="LOG %(name)s %(message)s", stream=sys.stdout)
logging.getLogger("opsin.core").setLevel(logging.DEBUG)
from opsin.core import process_pool
from opsin.iq.datasets import DSModifier_dir, DSModifier_rer, DSWrapper
from opsin.iq.metrics import SharpnessMetric

print("banner", flush=True)


def digest(folder):
    names = sorted(os.listdir(folder))
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest() for n in names}


ds = DSWrapper(data_path=sys.argv[1])
blurred = ds.modify(DSModifier_rer(params={"initial_rer": 0.595, "rer": 0.3}, n_jobs=2))
first = digest(blurred.data_input)
print("RESULT cold", json.dumps(SharpnessMetric(ext="*", njobs=2).apply_folder(blurred.data_input)), flush=True)
process_pool(1)  # from here on the worker process is warm, so every job with real work uses it
images, _, _ = DSModifier_rer(params={"initial_rer": 0.595, "rer": 0.3}, workers=2).modify(ds_wrapper=ds, force=True)
print("SAME BYTES", digest(images) == first, flush=True)
print("RESULT warm", json.dumps(SharpnessMetric(ext="*", workers=2).apply_folder(images)), flush=True)


class DSModifier_invert(DSModifier_dir):  # defined in this script: worker processes cannot load it
    def __init__(self, ds_modifier=None, **kw):
        self.name = "invert_modifier"
        super().__init__(ds_modifier, **kw)

    def _mod_img(self, img):
        return 255 - img


for _ in range(2):
    images, _, _ = DSModifier_invert(workers=2).modify(ds_wrapper=ds, force=True)
print("INVERTED", len(os.listdir(images)), flush=True)
"""


@pytest.mark.slow
def test_unguarded_script_runs_modifier_and_sharpness_in_parallel(tmp_path: Path) -> None:
    ds = tmp_path / "edges"
    (ds / "images").mkdir(parents=True)
    # 512 px frames: each image's sharpness costs enough (about 0.13 s here) that the rest of the folder always
    # outlasts the pool's minimum of work; at 256 px it sat at the threshold and the pool was sometimes skipped.
    for k in range(6):
        image = edge_image(0.6, noise=1.0, seed=k, angle=4.0 + k, size=512, half=140.0)
        write_image(ds / "images" / f"edge_{k}.png", image)
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "OPSIN_NO_PROGRESS": "1"}
    done = subprocess.run(
        [sys.executable, str(script), str(ds)], capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    assert out.count("banner") == 1  # the script never ran again in a worker
    assert "SAME BYTES True" in out
    results = {line.split()[1]: json.loads(line.split(" ", 2)[2]) for line in out if line.startswith("RESULT")}
    assert results["cold"] == results["warm"]
    assert abs(results["warm"]["RER_X"] - 0.311) < 0.03  # the closed loop of the RER modifier
    assert any("worker processes and the calling thread" in line for line in out), out
    # Only the modifier class defined in the script falls back to threads, announced once per run.
    fallbacks = [line for line in out if "__main__" in line]
    assert len(fallbacks) == 2, fallbacks
    assert all("invert_modifier" in line and "threads" in line for line in fallbacks)
    assert "INVERTED 6" in out
