from __future__ import annotations

from pathlib import Path

import pytest

from opsin.core import cache_dir, data_dir


def test_opsin_home_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSIN_HOME", str(tmp_path))
    assert data_dir("synth") == tmp_path / "synth"
    assert (tmp_path / "synth").is_dir()
    assert cache_dir("synth") == tmp_path / "cache" / "synth"
    assert (tmp_path / "cache" / "synth").is_dir()


def test_platform_default_without_opsin_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSIN_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_dir("iq") == tmp_path / "share" / "opsin" / "iq"
    assert cache_dir("iq") == tmp_path / "cache" / "opsin" / "iq"


@pytest.mark.parametrize("bad", ["", "..", "a/b", "a\\b", "."])
def test_app_must_be_one_component(bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSIN_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="single, non-empty path component"):
        data_dir(bad)
