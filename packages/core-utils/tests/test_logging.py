from __future__ import annotations

import json
import logging

import pytest

from opsin.core import configure_logging, get_logger


@pytest.fixture(autouse=True)
def _restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_get_logger_is_standard_logger() -> None:
    assert get_logger("opsin.x") is logging.getLogger("opsin.x")


def test_text_output_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG")
    get_logger("opsin.test").debug("hello %s", "world")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "DEBUG" in captured.err
    assert "opsin.test: hello world" in captured.err


def test_json_lines_carry_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    get_logger("opsin.test").info("job done", extra={"job_id": "abc", "frames": 3})
    get_logger("opsin.test").debug("hidden")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["message"] == "job done"
    assert record["level"] == "INFO"
    assert record["job_id"] == "abc"
    assert record["frames"] == 3


def test_reconfiguring_replaces_handler() -> None:
    configure_logging("INFO")
    configure_logging("WARNING")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_opsin_handler", False)]
    assert len(ours) == 1
    assert logging.getLogger().level == logging.WARNING


def test_unknown_level_is_named() -> None:
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("LOUD")
