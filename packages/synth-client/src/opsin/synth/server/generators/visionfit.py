"""``visionfit-v0.4.0`` and ``visionfit-flagship-v0.1.0``: a procedural humanoid exercising in a room.

One job renders ``video.mp4``, ``video_preview.png`` (= frame 0), ``labels.json`` (the COCO superset of the
original result layout), ``segmentation.zip`` (5 masks per frame), ``timing.json`` and ``job.json``, with the real
sample batch's file names and label keys. Determinism: every random aspect draws from its own named stream of the
job seed (``motion/*``, ``appearance``, ``room``, ``placement``, ``noise/<frame>``), so equal params and seed give
byte-identical PNGs and labels (``info.date_created`` aside) and a preview is frame 0 of the video.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsin.synth.server.generators._base import (
    CancelEvent,
    Generator,
    ParamSpec,
    check_cancelled,
    write_job_json,
)
from opsin.synth.server.generators._motion import EXERCISES, frame_count
from opsin.synth.server.generators._png import encode_mask_png, encode_rgb_png
from opsin.synth.server.generators._scene import SCENES

__all__ = ["VisionFitFlagshipGenerator", "VisionFitGenerator"]

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _range(name: str, kind: str, default: Any, lo: Any, hi: Any, text: str) -> ParamSpec:
    return ParamSpec(name, kind, default, {"min": lo, "max": hi}, text)


def _choice(name: str, kind: str, default: Any, choices: list[Any], text: str) -> ParamSpec:
    return ParamSpec(name, kind, default, {"choices": choices}, text)


_V040_PARAMS: tuple[ParamSpec, ...] = (
    _choice("scene", "str", "BEDROOM_2", list(SCENES), "Room the avatar exercises in."),
    _choice("exercise", "str", "PUSHUP", list(EXERCISES), "Exercise performed by the avatar."),
    _choice("gender", "str", "MALE", ["MALE", "FEMALE"], "Presenting gender of the avatar."),
    _range("num_reps", "int", 1, 1, 20, "Number of repetitions."),
    _range("inter_rep_delay_avg", "float", 0.5, 0.0, 4.0, "Mean pause before each repetition (s)."),
    _range("inter_rep_delay_var", "float", 0.0, 0.0, 2.0, "Spread of the pauses between repetitions."),
    _range("rel_baseline_speed", "float", 1.0, 0.33, 3.0, "Speed of the motion relative to its base tempo."),
    _range("max_rel_speed_change", "float", 0.0, 0.0, 1.0, "Largest relative speed change between repetitions."),
    _range("kinematic_noise_factor", "float", 1.0, 0.0, 2.0, "Scale of the joint jitter (1 = about 2 degrees)."),
    _range("camera_distance", "float", 3.0, 1.0, 5.25, "Horizontal distance from the camera to the avatar (m)."),
    _range("camera_height", "float", 0.75, 0.1, 2.75, "Height of the camera above the floor (m)."),
    ParamSpec("add_wall_art", "bool", False, None, "Hang 1-3 framed panels on the walls."),
    _choice("wall_art_type", "str", "non_human", ["non_human", "misc_human"], "Wall art: abstract or human figures."),
    _range("avatar_identity", "int", 0, 0, 24, "Identity of the avatar (skin tone and hair)."),
    _range("outfit", "int", -1, -1, 4, "Outfit index; -1 picks one from the seed."),
    ParamSpec("hide_shoes", "bool", False, None, "Render bare feet instead of shoes."),
    _range("allowable_occlusion", "float", 0.0, 0.0, 100.0, "Largest percentage of the avatar furniture may hide."),
    _range("relative_height", "float", 0.0, -4.0, 4.0, "Stature relative to the average (standard deviations)."),
    _range("relative_weight", "float", 0.0, -4.0, 4.0, "Girth relative to the average (standard deviations)."),
    _range("relative_camera_pitch_deg", "float", 0.0, -45.0, 45.0, "Camera pitch offset from aiming at the pelvis."),
    _range("lighting_power", "float", 100.0, 0.0, 2000.0, "Power of the ceiling light (0 = dark)."),
    _range("relative_avatar_angle_deg", "float", 0.0, -180.0, 180.0, "Avatar heading relative to facing the camera."),
    _choice("frame_rate", "int", 24, [30, 24, 12, 8, 6], "Frames per second of the video."),
    _range("image_width", "int", 256, 128, 512, "Image width in pixels."),
    _range("image_height", "int", 256, 128, 512, "Image height in pixels."),
    ParamSpec("enable_sensor_noise", "bool", False, None, "Add seeded shot and read noise to the RGB frames."),
    ParamSpec("state", "uuid", None, None, "Id of an earlier job whose seed this job reuses."),
    _range("relative_camera_yaw_deg", "float", 0.0, -45.0, 45.0, "Camera yaw offset from aiming at the pelvis."),
)
_FLAGSHIP_EXTRA: tuple[ParamSpec, ...] = (
    ParamSpec("randomize_skin_tone", "bool", False, None, "Draw the skin tone from the seed instead of the identity."),
    ParamSpec("add_pauses", "bool", False, None, "Hold each repetition at its intermediate pose for 0.5 s."),
    ParamSpec("add_socks", "bool", False, None, "Render socks on bare feet (with hide_shoes)."),
)


class VisionFitGenerator(Generator):
    """The procedural VisionFit generator with the 28 parameters of the original ``visionfit-v0.4.0``."""

    name = "visionfit-v0.4.0"
    version = "0.4.0"
    description = (
        "Procedural humanoid performing an exercise in a furnished room: RGB video with COCO-style person labels "
        "(keypoints, 55-joint armature, cuboids, masks) consistent with the camera matrices."
    )
    supports_preview = True
    params = _V040_PARAMS

    def estimate(self, params: Mapping[str, Any], is_preview: bool) -> int:
        """Exact frame count: ``max(1, round(D * frame_rate))``, previews 1."""
        return frame_count(self._ordered(params), is_preview)

    def render(
        self, params: dict[str, Any], is_preview: bool, seed: int, out_dir: Path, cancel_event: CancelEvent | None
    ) -> int:
        """Render the job into ``out_dir`` (see the module docstring for the files)."""
        import cv2

        from opsin.synth.server.generators._render import JobScene

        num_frames = self.estimate(params, is_preview)
        what = f"{self.name} job in {out_dir}"
        scene = JobScene.build(params, seed, num_frames)
        width, height = scene.camera.width, scene.camera.height
        writer = None
        if not is_preview:
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            writer = cv2.VideoWriter(str(out_dir / "video.mp4"), fourcc, float(params["frame_rate"]), (width, height))
        timing: dict[str, Any] = {"frame_render": [], "frame_annotate": [], "frame_render_misc": []}
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        penetrations = False
        metrics_seconds = 0.0
        try:
            with zipfile.ZipFile(out_dir / "segmentation.zip", "w", zipfile.ZIP_STORED) as seg:
                for k in range(num_frames):
                    check_cancelled(cancel_event, what, k)
                    t0 = time.perf_counter()
                    frame = scene.render(k)
                    t1 = time.perf_counter()
                    image, annotation, metric_time = scene.annotate(k, frame, annotation_id=k)
                    penetrations |= image["has_self_penetrations"]
                    images.append(image)
                    annotations.append(annotation)
                    metrics_seconds += metric_time
                    t2 = time.perf_counter()
                    bgr = frame.rgb[..., ::-1]
                    if writer is not None:
                        writer.write(bgr)
                    if k == 0:
                        (out_dir / "video_preview.png").write_bytes(encode_rgb_png(frame.rgb, level=6))
                    encoded: dict[int, bytes] = {}
                    for suffix, mask in frame.masks(annotation_id=k):
                        if id(mask) not in encoded:
                            encoded[id(mask)] = encode_mask_png(mask)
                        member = zipfile.ZipInfo(f"image.{k:06d}.{suffix}.png", date_time=_ZIP_DATE)
                        seg.writestr(member, encoded[id(mask)])
                    t3 = time.perf_counter()
                    timing["frame_render"].append(t1 - t0)
                    timing["frame_annotate"].append(t2 - t1 - metric_time)
                    timing["frame_render_misc"].append(t3 - t2)
        finally:
            if writer is not None:
                writer.release()
        timing["image_metrics"] = [metrics_seconds]
        timing["num_frames"] = num_frames
        info = scene.info(params, penetrations)
        info["date_created"] = dt.datetime.now(dt.UTC).strftime("%Y%m%d_%H%M%S")
        info["generator"] = self.name
        info["seed_job_id"] = _seed_job_id(params, out_dir)
        labels = {"info": info, "categories": scene.categories(), "images": images, "annotations": annotations}
        (out_dir / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
        (out_dir / "timing.json").write_text(json.dumps(timing, indent=4), encoding="utf-8")
        write_job_json(out_dir, self.name, params)
        return num_frames


class VisionFitFlagshipGenerator(VisionFitGenerator):
    """``visionfit-flagship-v0.1.0``: the v0.4.0 parameters plus skin-tone randomisation, pauses and socks."""

    name = "visionfit-flagship-v0.1.0"
    version = "0.1.0"
    description = VisionFitGenerator.description + " Flagship: random skin tones, mid-rep pauses, socks."
    params = _V040_PARAMS + _FLAGSHIP_EXTRA


def _seed_job_id(params: Mapping[str, Any], out_dir: Path) -> str | None:
    """The job whose seed was used: ``state`` when given, else the job itself (its folder is named by its id)."""
    if params.get("state"):
        return str(params["state"])
    try:
        return str(uuid.UUID(out_dir.name))
    except ValueError:
        return None
