"""The root of every opsin error tree.

Each domain package defines one errors module whose base class derives from :class:`OpsinError`; concrete errors
also derive from the builtin they really are, so callers can catch either::

    OpsinError
    ├── opsin.core.ExecutorSpecError (ValueError)
    ├── opsin.core.UnsafeArchiveError (ValueError)
    ├── opsin.synth.errors.SynthError ...
    ├── opsin.iq.datasets.ds_exceptions ...
    └── opsin.eventflow.errors.EventFlowError ...
"""

from __future__ import annotations

__all__ = ["OpsinError"]


class OpsinError(Exception):
    """Base class of every error raised by an opsin package."""
