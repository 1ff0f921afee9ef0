"""Root test configuration of opsin-synth-client (service tests keep their fixtures in ``tests/server``)."""

from __future__ import annotations

import os

# progress bars stay silent in test logs
os.environ.setdefault("OPSIN_NO_PROGRESS", "1")
