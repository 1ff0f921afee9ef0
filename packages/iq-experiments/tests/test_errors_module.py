"""House rules on errors: every exception class lives in ``opsin.iq.errors`` and its name ends in ``Error``."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import opsin.iq
from opsin.iq import errors

SRC = Path(opsin.iq.__file__).resolve().parent
# The original iquaflow's names (and this package's first ones), kept as aliases of the ...Error classes.
ALIASES = {"DSNotFound", "DSAnnotationsNotFound", "ExperimentNotFound", "ModifierNotConfigured", "TaskFailed"}
_EXCEPTION_BASES = {"Exception", "BaseException", "Warning"}


def _exception_names() -> set[str]:
    names = {n for n, obj in vars(errors).items() if inspect.isclass(obj) and issubclass(obj, BaseException)}
    return names | _EXCEPTION_BASES | {c.__name__ for c in BaseException.__subclasses__()} | _builtin_exceptions()


def _builtin_exceptions() -> set[str]:
    import builtins

    return {n for n, obj in vars(builtins).items() if inspect.isclass(obj) and issubclass(obj, BaseException)}


def test_no_exception_class_is_defined_outside_errors_py():
    known = _exception_names() | {"OpsinError", "ClickException", "CliError"}
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if bases & known or node.name.endswith(("Error", "Exception")):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}")
    assert offenders == []


def test_exception_names_end_in_error_and_old_names_are_aliases():
    for name, obj in vars(errors).items():
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__:
            if name in ALIASES:
                assert obj.__name__ == f"{name}Error", name
                assert getattr(errors, f"{name}Error") is obj
            else:
                assert name.endswith("Error"), name
    assert set(errors.__all__) >= ALIASES | {f"{a}Error" for a in ALIASES}


def test_library_errors_choose_the_documented_exit_codes():
    from opsin.core import ExitCode, exit_code_for

    assert exit_code_for(errors.ImageReadError("x.png")) == ExitCode.USAGE
    assert exit_code_for(errors.DSNotFoundError("d")) == ExitCode.NOT_FOUND
    assert exit_code_for(errors.DSLayoutError("d")) == ExitCode.USAGE
    assert exit_code_for(errors.ModifierParamError("p")) == ExitCode.USAGE
    assert exit_code_for(errors.ExperimentNotFoundError("e")) == ExitCode.NOT_FOUND
    assert exit_code_for(errors.TaskTimeoutError("t", -9)) == ExitCode.TIMEOUT
    assert exit_code_for(errors.TrackingServerError("u")) == ExitCode.ERROR
