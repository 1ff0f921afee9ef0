from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GATE = Path(__file__).resolve().parents[1] / "pytest_gate.py"

SUITE = """
import pytest

def test_ok():
    assert True

@pytest.mark.skip(reason="needs a CUDA GPU")
def test_gpu():
    pass
"""


def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(GATE), *args, str(folder), "-q", "-p", "no:cacheprovider"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=folder)


def test_no_tests_collected_fails(tmp_path: Path) -> None:
    (tmp_path / "test_empty.py").write_text("x = 1\n")
    proc = run(tmp_path)
    assert proc.returncode == 1
    assert "collected no tests" in proc.stderr


def test_allowed_skips_pass_and_others_fail(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(SUITE)
    assert run(tmp_path, "--allow-skips", "GPU|CUDA").returncode == 0
    (tmp_path / "test_more.py").write_text(
        'import pytest\n\n@pytest.mark.skip(reason="fixture folder missing")\ndef test_fixture():\n    pass\n'
    )
    proc = run(tmp_path, "--allow-skips=GPU|CUDA")
    assert proc.returncode == 1
    assert "test_more.py::test_fixture: fixture folder missing" in proc.stderr
    assert "test_gpu" not in proc.stderr
    # Without the flag skips are pytest's business.
    assert run(tmp_path).returncode == 0


def test_a_failing_test_keeps_its_exit_code(tmp_path: Path) -> None:
    (tmp_path / "test_bad.py").write_text("def test_bad():\n    assert False\n")
    assert run(tmp_path, "--allow-skips", "GPU").returncode == 1
