"""Generator-independent helpers (visualisation of images and videos, notebook display)."""
