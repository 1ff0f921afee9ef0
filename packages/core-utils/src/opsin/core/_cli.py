"""One command-line convention for every opsin console script (built on click).

Every ``opsin-*`` command is an :class:`OpsinGroup`. The group gives each of its commands, at every level, the same
three options, so they work before or after the subcommand name:

* ``--log-level LEVEL`` (DEBUG, INFO, WARNING, ERROR, CRITICAL; default WARNING),
* ``--debug`` (show the full traceback of a failure instead of one line),
* ``--version``.

A failure prints exactly one line, ``Error: <what> (<hint>)``, on standard error and exits with a code of the one
table shared by the three packages (:class:`ExitCode`). Exceptions choose their code with an ``exit_code``
attribute; otherwise the builtin they derive from decides (a ``ValueError`` is bad input, a ``FileNotFoundError`` is
"not found", a ``TimeoutError`` is a timeout).
"""

from __future__ import annotations

import enum
import sys
import traceback
import typing as t
from collections.abc import Sequence

import click

from opsin.core._logging import configure_logging, get_logger
from opsin.core.errors import CliError

__all__ = ["CliError", "ExitCode", "OpsinGroup", "exit_code_for", "one_line"]

_log = get_logger(__name__)
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_META_DEBUG = "opsin.debug"


class ExitCode(enum.IntEnum):
    """The exit codes of every opsin command line (documented once, in the docs' command-line page)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    AUTH = 3
    NOT_FOUND = 4
    INSUFFICIENT_SAMPLES = 5
    TIMEOUT = 6


def one_line(exc: BaseException) -> str:
    """Render an exception as one line: its message with whitespace runs (newlines included) collapsed."""
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = str(exc.args[0])
    if not text:
        text = type(exc).__name__
    return text


def exit_code_for(exc: BaseException) -> int:
    """Pick the documented exit code for an exception.

    An integer ``exit_code`` attribute wins; then ``TimeoutError`` -> TIMEOUT, ``FileNotFoundError`` -> NOT_FOUND,
    ``PermissionError`` -> ERROR, ``ValueError``/``TypeError``/``KeyError`` -> USAGE (bad input); anything else ->
    ERROR.
    """
    code = getattr(exc, "exit_code", None)
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(exc, TimeoutError):
        return ExitCode.TIMEOUT
    if isinstance(exc, FileNotFoundError):
        return ExitCode.NOT_FOUND
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return ExitCode.USAGE
    return ExitCode.ERROR


def _set_log_level(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None and not ctx.resilient_parsing:
        configure_logging(value)


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_root().meta[_META_DEBUG] = True


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    root = ctx.find_root()
    name = root.info_name or "opsin"
    click.echo(f"{name} {getattr(root.command, 'version_text', '') or 'unknown'}")
    ctx.exit(0)


def _common_params() -> list[click.Parameter]:
    return [
        click.Option(
            ["--log-level"],
            type=click.Choice(_LEVELS, case_sensitive=False),
            default=None,
            expose_value=False,
            is_eager=True,
            callback=_set_log_level,
            help="Logging threshold on standard error (default WARNING).",
        ),
        click.Option(
            ["--debug"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_set_debug,
            help="Show the full traceback of a failure instead of one line.",
        ),
        click.Option(
            ["--version"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_show_version,
            help="Show the version and exit.",
        ),
    ]


def _add_common_params(command: click.Command) -> None:
    names = {name for param in command.params for name in getattr(param, "opts", ())}
    for param in _common_params():
        if not names.intersection(param.opts):
            command.params.append(param)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_common_params(sub)


class OpsinGroup(click.Group):
    """A click group that follows the opsin command-line convention (see the module docstring).

    Positional and other keyword arguments go to :class:`click.Group`.

    Args:
        *args: passed to :class:`click.Group`.
        version_text: the version printed by ``--version``.
        **kwargs: passed to :class:`click.Group`.
    """

    def __init__(self, *args: t.Any, version_text: str = "", **kwargs: t.Any) -> None:
        kwargs.setdefault("context_settings", {}).setdefault("help_option_names", ["-h", "--help"])
        super().__init__(*args, **kwargs)
        self.version_text = version_text
        _add_common_params(self)

    # Nested groups made with ``@group.group()`` are OpsinGroups too, so commands added to them later get the options.
    group_class = type

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Register a subcommand and give it (and its own subcommands) the common options."""
        _add_common_params(cmd)
        super().add_command(cmd, name)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: t.Any,
    ) -> t.Any:
        """Run the command line; on failure print one ``Error:`` line and exit with the documented code."""
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        try:
            with self.make_context(prog_name or _prog_name(), argv, **extra) as ctx:
                result = self.invoke(ctx)
        except click.exceptions.Exit as exc:
            if not standalone_mode:
                return exc.exit_code
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            _fail("aborted", ExitCode.ERROR, standalone_mode)
        except click.ClickException as exc:
            message = exc.format_message()
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                message += f" (see '{exc.ctx.command_path} --help')"
            if debug:
                traceback.print_exc()
            _fail(message, exc.exit_code, standalone_mode)
        except KeyboardInterrupt:
            _fail("interrupted", 130, standalone_mode)
        except Exception as exc:  # every failure becomes one line unless --debug
            if debug:
                traceback.print_exc()
            _log.debug("command failed", exc_info=True)
            _fail(one_line(exc), exit_code_for(exc), standalone_mode)
        if standalone_mode:
            sys.exit(0)
        return result


def _prog_name() -> str:
    import os

    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "opsin"


def _fail(message: str, code: int, standalone_mode: bool) -> t.NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.stdout.flush()
    if standalone_mode:
        sys.exit(code)
    raise SystemExit(code)
