from __future__ import annotations

import pytest

import opsin.eventflow as ef
from opsin.core import OpsinError
from opsin.eventflow import cli, errors


def test_top_level_all_is_pinned_and_sorted():
    assert ef.__all__ == [
        "EVENT_CD",
        "EXT_TRIGGER",
        "PREPROCESSING_DICT",
        "CDProcessor",
        "ConfigError",
        "EventFlowError",
        "FormatError",
        "__version__",
        "as_event_cd",
        "open_events",
        "register_new_preprocessing",
    ]
    for name in ef.__all__:
        assert hasattr(ef, name)


def test_io_all_is_sorted_and_complete():
    from opsin.eventflow import io

    assert len(set(io.__all__)) == len(io.__all__)
    for name in io.__all__:
        assert hasattr(io, name)


def test_error_hierarchy():
    assert issubclass(errors.EventFlowError, OpsinError)
    assert issubclass(errors.FormatError, errors.EventFlowError)
    assert issubclass(errors.FormatError, ValueError)
    assert issubclass(errors.ConfigError, errors.EventFlowError)
    assert issubclass(errors.ConfigError, ValueError)
    err = errors.FormatError("/x/y.dat", 42, "bad word")
    assert "/x/y.dat" in str(err)
    assert "42" in str(err)
    assert err.offset == 42


def test_cli_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for built in ("synth", "precompute", "fit", "validate", "test", "evaluate", "export"):
        assert f"  {built} " in out


def test_importing_the_package_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, opsin.eventflow, opsin.eventflow.io, opsin.eventflow.preprocessing; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
