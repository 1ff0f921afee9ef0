from __future__ import annotations

import opsin.core as core
from opsin.core import OpsinError, errors


def test_all_is_sorted_and_complete() -> None:
    assert core.__all__ == sorted(core.__all__)
    for name in core.__all__:
        assert hasattr(core, name), name


def test_version_matches_the_distribution() -> None:
    from importlib.metadata import version

    assert core.__version__ == version("opsin-core-utils")


def test_error_tree_roots_at_opsin_error() -> None:
    assert errors.OpsinError is OpsinError
    assert issubclass(core.UnsafeArchiveError, OpsinError)
    assert issubclass(core.UnsafeArchiveError, ValueError)
    assert issubclass(core.ExecutorSpecError, ValueError)


def test_no_namespace_init() -> None:
    import opsin

    # PEP 420: the shared namespace must not be claimed by any one distribution.
    assert getattr(opsin, "__file__", None) is None
