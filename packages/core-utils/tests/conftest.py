from __future__ import annotations

import sys
from pathlib import Path

# Worker processes import the task module by name; make this folder importable for them too.
sys.path.insert(0, str(Path(__file__).resolve().parent))
