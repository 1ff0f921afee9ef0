"""Visualisation helpers ([analysis] extra): images, videos, notebook display."""
