"""opsin-event-flow: self-supervised optical flow for event cameras."""

__version__ = "0.1.0"

__all__ = ["__version__"]
