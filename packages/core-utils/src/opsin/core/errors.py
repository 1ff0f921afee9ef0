"""Every exception class of ``opsin.core``, rooted at :class:`OpsinError`, the root of every opsin error tree.

Each domain package defines one errors module whose base class derives from :class:`OpsinError`; concrete errors
also derive from the builtin they really are, so callers can catch either::

    OpsinError
    ├── CliError (click.ClickException): a command-line failure with its exit code
    ├── ExecutorSpecError (ValueError)
    ├── UnsafeArchiveError (ValueError)
    ├── opsin.synth.errors.SynthError ...
    ├── opsin.iq.errors.IQError ...
    └── opsin.eventflow.errors.EventFlowError ...
"""

from __future__ import annotations

import click

__all__ = ["CliError", "ExecutorSpecError", "OpsinError", "UnsafeArchiveError"]


class OpsinError(Exception):
    """Base class of every error raised by an opsin package."""


class CliError(OpsinError, click.ClickException):
    """A failure to report as one ``Error: ...`` line with a chosen exit code.

    Args:
        message: what went wrong, naming the file, flag or value, and what to do about it.
        exit_code: one of :class:`opsin.core.ExitCode` (default 1, a general failure).
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        click.ClickException.__init__(self, message)
        self.exit_code = int(exit_code)  # type: ignore[misc]  # click declares it a class default


class ExecutorSpecError(OpsinError, ValueError):
    """An executor specification string is not understood or cannot be served."""


class UnsafeArchiveError(OpsinError, ValueError):
    """An archive is corrupt, too large, or has a member that would land outside its destination."""
