"""opsin-iq-experiments: image-quality experiments over modified datasets, tracked in mlflow."""

__version__ = "0.1.0"

__all__ = ["__version__"]
