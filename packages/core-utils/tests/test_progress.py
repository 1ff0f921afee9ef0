from __future__ import annotations

import io
import sys

import pytest

from opsin.core import progress, progress_enabled


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_off_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSIN_NO_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress_enabled()
    assert list(progress(range(5), desc="x")) == [0, 1, 2, 3, 4]
    assert sys.stderr.getvalue() == ""


def test_draws_on_terminal_unless_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTTY()
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.delenv("OPSIN_NO_PROGRESS", raising=False)
    assert progress_enabled()
    assert sum(progress(range(10), desc="counting", file=fake)) == 45
    assert "counting" in fake.getvalue()
    assert "10/10" in fake.getvalue()
    monkeypatch.setenv("OPSIN_NO_PROGRESS", "1")
    assert not progress_enabled()


def test_manual_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    with progress(total=3, desc="manual", unit="job", file=out, disable=False) as bar:
        bar.update(2)
        bar.update(1)
        assert bar.n == 3
    assert "3/3" in out.getvalue()
    monkeypatch.setenv("OPSIN_NO_PROGRESS", "1")
    with progress(total=3) as quiet:
        assert quiet.disable
        quiet.update(3)
