"""opsin-synth-client: client for the synthetic-data generation REST API and its self-hosted service."""

__version__ = "0.1.0"

__all__ = ["__version__"]
