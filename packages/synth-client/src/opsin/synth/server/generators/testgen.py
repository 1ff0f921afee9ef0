"""``test-generator-v0.1.0``: a tiny, fast generator for tests of the service and the client.

Each frame is a 32 x 32 RGB image of one flat colour derived from the seed, ``param2``, ``param3`` and the frame
number; ``labels.json`` lists the frames COCO-style. Frames = ``param1`` (previews: 1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsin.core import derive_seed
from opsin.synth.server.generators._base import CancelEvent, Generator, ParamSpec, check_cancelled, write_job_json

__all__ = ["TestGenerator"]

_SIZE = 32


class TestGenerator(Generator):
    """Minimal generator: ``param1`` frames, flat colours, ``job.json`` + ``video_preview.png`` + ``labels.json``."""

    __test__ = False  # not a pytest test class despite its name

    name = "test-generator-v0.1.0"
    version = "0.1.0"
    description = "Fast test generator: param1 flat-colour frames with a COCO-style labels.json."
    supports_preview = True
    params = (
        ParamSpec("param1", "int", 1, {"min": 1, "max": 5}, "Number of frames to render."),
        ParamSpec("param2", "float", 2.5, {"min": -5.0, "max": 5.0}, "A number that tints the frames."),
        ParamSpec(
            "param3", "str", "CHOICE_1", {"choices": ["CHOICE_1", "CHOICE_2"]}, "A choice that tints the frames."
        ),
        ParamSpec("state", "uuid", None, None, "Id of an earlier job whose seed this job reuses."),
    )

    def estimate(self, params: Mapping[str, Any], is_preview: bool) -> int:
        """Return ``param1`` frames (1 for a preview)."""
        return 1 if is_preview else int(params.get("param1", 1))

    def render(
        self, params: dict[str, Any], is_preview: bool, seed: int, out_dir: Path, cancel_event: CancelEvent | None
    ) -> int:
        """Write ``job.json``, ``video_preview.png`` (frame 0) and ``labels.json`` into ``out_dir``."""
        import cv2
        import numpy as np

        num_frames = self.estimate(params, is_preview)
        what = f"{self.name} job in {out_dir}"
        images: list[dict[str, Any]] = []
        for frame in range(num_frames):
            check_cancelled(cancel_event, what, frame)
            value = derive_seed(seed, float(params["param2"]), str(params["param3"]), frame)
            colour = [(value >> shift) & 0xFF for shift in (0, 8, 16)]
            if frame == 0:
                image = np.empty((_SIZE, _SIZE, 3), np.uint8)
                image[:] = colour[::-1]  # OpenCV writes BGR
                ok, buf = cv2.imencode(".png", image)
                if not ok:  # pragma: no cover - OpenCV always encodes a small uint8 image
                    msg = f"{what}: PNG encoding failed"
                    raise RuntimeError(msg)
                (out_dir / "video_preview.png").write_bytes(buf.tobytes())
            images.append({"id": frame, "frame_number": frame, "width": _SIZE, "height": _SIZE, "color": colour})
        labels = {
            "info": {"generator": self.name, "seed": seed, "is_preview": is_preview},
            "categories": [{"id": 0, "name": "frame"}],
            "images": images,
            "annotations": [],
        }
        (out_dir / "labels.json").write_text(json.dumps(labels, indent=1), encoding="utf-8")
        write_job_json(out_dir, self.name, params)
        return num_frames
