"""``VisionFitSession``: a :class:`~opsin.synth.Session` restricted to VisionFit generators."""

from __future__ import annotations

from typing import Any

import httpx

from opsin.synth.sampling import RandomLike
from opsin.synth.session import Session

__all__ = ["DEFAULT_GENERATOR", "VisionFitSession"]

DEFAULT_GENERATOR = "visionfit-flagship-v0.1.0"


class VisionFitSession(Session):
    """A session on a VisionFit generator; ``sample_input`` applies the VisionFit joint rules.

    Args:
        token: API token.
        generator: a generator whose name contains ``visionfit`` (default :data:`DEFAULT_GENERATOR`).
        server: service URL (default ``OPSIN_SYNTH_SERVER`` or the local default).
        http_client: optional ``httpx.Client``.

    Raises:
        ValueError: the generator is not a VisionFit generator.
        SessionInitializationError: as for :class:`~opsin.synth.Session`.
    """

    def __init__(
        self,
        token: str,
        generator: str = DEFAULT_GENERATOR,
        server: str | None = None,
        *,
        http_client: httpx.Client | None = None,
    ) -> None:
        if "visionfit" not in generator:
            msg = f"VisionFitSession needs a VisionFit generator (name containing 'visionfit'), got {generator!r}"
            raise ValueError(msg)
        super().__init__(token, generator, server, http_client=http_client)

    def sample_input(self, *, rng: RandomLike | None = None, **overrides: Any) -> dict[str, Any]:
        """One job dict drawn by the VisionFit rules: ``overrides`` kept, the rest sampled jointly.

        Raises:
            ParameterValidationError: unknown key or bad value among ``overrides``.
        """
        from opsin.synth.visionfit.sampling import sample_input as visionfit_sample_input

        return visionfit_sample_input(self, rng=rng, **overrides)
