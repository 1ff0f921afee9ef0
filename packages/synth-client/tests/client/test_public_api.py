"""The package's public surface (pinned) and its import cost."""

from __future__ import annotations

import subprocess
import sys

import opsin.synth


def test_all_is_pinned_and_sorted() -> None:
    assert opsin.synth.__all__ == [
        "Batch",
        "CompletedJob",
        "DEFAULT_SERVER",
        "JobType",
        "Session",
        "ValidCompletedJob",
        "__version__",
        "get_available_generators",
    ]
    assert opsin.synth.__all__ == sorted(opsin.synth.__all__)
    for name in opsin.synth.__all__:
        assert getattr(opsin.synth, name) is not None
    assert opsin.synth.Session.__module__ == "opsin.synth.session"
    assert opsin.synth.DEFAULT_SERVER.endswith("/")


def test_import_is_light() -> None:
    code = (
        "import sys, opsin.synth; from opsin.synth import Session, Batch;"
        "heavy = [m for m in ('pandas', 'matplotlib', 'fastapi', 'sqlalchemy', 'cv2') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_analysis_guard_names_the_extra(monkeypatch) -> None:
    import pytest

    from opsin.synth.common.vis._deps import require_analysis

    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(ImportError, match=r"\[analysis\] extra \(pandas missing\)"):
        require_analysis("opsin.synth.visionfit.vis")
