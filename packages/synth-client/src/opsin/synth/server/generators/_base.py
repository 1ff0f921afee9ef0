"""The generator plugin interface: parameter schema entries and the abstract generator.

A generator is a module-level class whose instances are picklable, so the dispatcher can ship them to worker
processes (or a Dask cluster). The service validates and fills the parameters with the schema before it calls
:meth:`Generator.run`; generators only add their cross-parameter rules through :meth:`Generator.check`.
"""

from __future__ import annotations

import abc
import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

import attrs

from opsin.synth.errors import GeneratorError, JobCancelledError, SynthError

__all__ = [
    "CancelEvent",
    "Generator",
    "ParamSpec",
    "ParamType",
    "check_cancelled",
    "generator_errors",
    "write_job_json",
]

ParamType = Literal["int", "float", "str", "bool", "uuid"]
_PARAM_TYPES = ("int", "float", "str", "bool", "uuid")


class CancelEvent(Protocol):
    """Anything with an ``is_set()`` method (``threading.Event``, ``multiprocessing.Event``, a Dask variable...)."""

    def is_set(self) -> bool:
        """Return whether the job was asked to stop."""
        ...


def _check_type(instance: ParamSpec, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in _PARAM_TYPES:
        msg = f"parameter {instance.name!r}: type {value!r} is not one of {', '.join(_PARAM_TYPES)}"
        raise ValueError(msg)


@attrs.frozen(hash=False)
class ParamSpec:
    """One parameter of a generator's schema, as the REST generator description lists it.

    Attributes:
        name: parameter name as it appears in ``param_values``.
        type: one of ``int``, ``float``, ``str``, ``bool``, ``uuid``.
        default_value: value used when the user leaves the parameter out.
        options: ``{"min": .., "max": ..}`` (inclusive), ``{"choices": [...]}`` or ``None``.
        description: one human sentence shown in the portal and the CLI.
    """

    name: str
    type: str = attrs.field(validator=_check_type)
    default_value: Any
    options: dict[str, Any] | None = None
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the REST parameter dict ``{"name", "type", "default_value", "options", "description"}``."""
        options = None
        if self.options is not None:
            options = {
                key: (list(value) if isinstance(value, list | tuple) else value) for key, value in self.options.items()
            }
        return {
            "name": self.name,
            "type": self.type,
            "default_value": self.default_value,
            "options": options,
            "description": self.description,
        }


def check_cancelled(cancel_event: CancelEvent | None, what: str, frames_done: int) -> None:
    """Raise :class:`JobCancelledError` when ``cancel_event`` is set.

    Args:
        cancel_event: the job's cancellation flag (``None`` = never cancelled).
        what: description of the job for the message (generator and output folder).
        frames_done: frames finished so far, for the message.
    """
    if cancel_event is not None and cancel_event.is_set():
        msg = f"{what}: cancelled after {frames_done} frame(s)"
        raise JobCancelledError(msg)


@contextlib.contextmanager
def generator_errors(what: str) -> Iterator[None]:
    """Re-raise unexpected failures inside a job as :class:`GeneratorError` naming the job (opsin errors pass)."""
    try:
        yield
    except SynthError:
        raise
    except Exception as exc:
        msg = f"{what}: {type(exc).__name__}: {exc}"
        raise GeneratorError(msg) from exc


def write_job_json(out_dir: Path, generator: str, params: Mapping[str, Any]) -> None:
    """Write ``job.json`` (4-space indent, ``{"name": generator, "params": {...}}``) into ``out_dir``."""
    text = json.dumps({"name": generator, "params": dict(params)}, indent=4)
    (out_dir / "job.json").write_text(text, encoding="utf-8")


class Generator(abc.ABC):
    """A procedural data generator served by the synth service.

    Subclasses set the class attributes and implement :meth:`estimate` and :meth:`render` (or :meth:`run`).
    Instances hold no state beyond those attributes, so they pickle cheaply into worker processes.

    Attributes:
        name: registry name, e.g. ``visionfit-v0.4.0``.
        version: semantic version of the generator, e.g. ``0.4.0``.
        description: one paragraph for humans.
        supports_preview: whether ``is_preview=True`` jobs are accepted.
        params: the schema, in the order shown to users (``state`` included).
    """

    name: str = ""
    version: str = ""
    description: str = ""
    supports_preview: bool = True
    params: tuple[ParamSpec, ...] = ()

    def describe(self) -> dict[str, Any]:
        """Return the REST generator description (name, version, description, options.preview, params)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "options": {"preview": self.supports_preview},
            "params": [spec.to_json() for spec in self.params],
        }

    @property
    def parameter_info(self) -> dict[str, dict[str, Any]]:
        """``{name: {"type", "default_value", "options", "description"}}`` in schema order."""
        info: dict[str, dict[str, Any]] = {}
        for spec in self.params:
            entry = spec.to_json()
            del entry["name"]
            info[spec.name] = entry
        return info

    def defaults(self) -> dict[str, Any]:
        """Return ``{name: default_value}`` for every parameter, in schema order."""
        return {spec.name: spec.default_value for spec in self.params}

    def check(self, params: Mapping[str, Any]) -> list[str]:
        """Return the cross-parameter rule violations of complete ``params`` (``[]`` when fine).

        The schema rules (types, ranges, choices) are checked by the service before this is called.
        """
        return []

    @abc.abstractmethod
    def estimate(self, params: Mapping[str, Any], is_preview: bool) -> int:
        """Return the exact number of frames :meth:`run` renders for these complete params (previews: 1)."""

    def run(
        self,
        params: Mapping[str, Any],
        is_preview: bool,
        seed: int,
        out_dir: Path,
        cancel_event: CancelEvent | None = None,
    ) -> int:
        """Render one job into ``out_dir`` and return the number of frames rendered.

        Args:
            params: complete, validated parameters (defaults filled, ``state`` included).
            is_preview: render the single preview frame instead of the whole job.
            seed: the job's seed (from its id, or from the job named by ``state``).
            out_dir: an existing empty folder that becomes the result zip's ``<job_id>/`` root.
            cancel_event: polled between frames; when set, :class:`JobCancelledError` is raised.

        Returns:
            Frames rendered (equal to :meth:`estimate`).
        """
        with generator_errors(f"{self.name} job in {out_dir}"):
            return self.render(self._ordered(params), is_preview, seed, Path(out_dir), cancel_event)

    def render(
        self, params: dict[str, Any], is_preview: bool, seed: int, out_dir: Path, cancel_event: CancelEvent | None
    ) -> int:
        """Render one job; called by :meth:`run` with ``params`` in schema order and failures wrapped.

        Built-in generators implement this; a plugin may instead override :meth:`run` itself. Unexpected exceptions
        become :class:`GeneratorError` naming the generator and the folder; opsin errors (such as
        :class:`JobCancelledError`) pass through unchanged.
        """
        msg = f"{type(self).__name__} must implement render() or override run()"
        raise NotImplementedError(msg)

    def _ordered(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``params`` in schema order (unknown keys kept at the end)."""
        ordered = {spec.name: params.get(spec.name, spec.default_value) for spec in self.params}
        ordered.update({key: value for key, value in params.items() if key not in ordered})
        return ordered

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
