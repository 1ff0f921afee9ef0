from __future__ import annotations

import pytest

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


def test_lazy_exports_import_on_first_use() -> None:
    import types

    from opsin.core import lazy_exports

    module = types.ModuleType("fake_pkg")
    module.__all__ = ["JSONDecoder"]  # type: ignore[attr-defined]
    module.__getattr__, module.__dir__ = lazy_exports("fake_pkg", {"JSONDecoder": "json.decoder"}, vars(module))
    assert "JSONDecoder" not in vars(module)
    import json.decoder

    assert module.JSONDecoder is json.decoder.JSONDecoder
    assert vars(module)["JSONDecoder"] is json.decoder.JSONDecoder  # cached after the first read
    assert "JSONDecoder" in dir(module)
    with pytest.raises(AttributeError, match=r"fake_pkg.*missing"):
        module.missing  # noqa: B018
