"""One VisionFit job's scene: body, motion, placement, camera and room, and the per-frame render + annotation.

``JobScene.build`` does the per-job work once (posing, furniture placement, the static room render);
``render(k)`` ray casts the avatar of frame ``k`` over the room and ``annotate`` derives that frame's labels from
the same buffers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from opsin.core import rng
from opsin.synth.server.generators._avatar import PART_IDS, Appearance, body_shape, make_appearance
from opsin.synth.server.generators._labels import (
    COCO_KEYPOINTS,
    COCO_SKELETON,
    coco_keypoints,
    cuboid,
    frame_metrics,
    keypoint_table,
    mask_polygons,
    quaternions,
    r6,
)
from opsin.synth.server.generators._motion import Timeline, frame_count, make_timeline
from opsin.synth.server.generators._raster import AvatarBuffers, Camera, PlanarRays, pixel_rays, render_avatar
from opsin.synth.server.generators._scene import (
    Room,
    RoomRender,
    avatar_shadow,
    build_room,
    place_furniture,
    render_room,
    shade,
    shadow_box,
)
from opsin.synth.server.generators._skeleton import (
    JOINT_INDEX,
    JOINT_NAMES,
    VERTEX_NAMES,
    Body,
    PosedBody,
    build_body,
    euler_matrix,
    lowest_point,
    pose_body,
)

__all__ = ["Frame", "JobScene"]

_GAMMA = 1.0 / 2.2
_NOISE_SIGMA = np.sqrt(0.05 * np.arange(256, dtype=np.float32) + 1.0).astype(np.float32)
_TRUNK = ("pelvis", "abdomen", "chest")


def _heading(yaw_deg: float) -> np.ndarray:
    """Horizontal unit vector of a heading (yaw 0 = +Y, positive = counter-clockwise)."""
    y = math.radians(yaw_deg)
    return np.array([-math.sin(y), math.cos(y)])


def _to_u8(linear: np.ndarray) -> np.ndarray:
    return (np.clip(linear, 0.0, 1.0) ** _GAMMA * 255.0 + 0.5).astype(np.uint8)


def pose_frame(body: Body, timeline: Timeline, avatar_xy: np.ndarray, avatar_yaw: float, k: int) -> PosedBody:
    """The body of frame ``k`` in world coordinates (lowest point on the floor, plus the motion's lift)."""
    row = timeline.rows[k]
    angles = timeline.angles[row].copy()
    pitch, roll, yaw, lift = timeline.root[row]
    pelvis = JOINT_INDEX["pelvis"]
    angles[pelvis, 0] += pitch
    angles[pelvis, 1] += roll
    root = euler_matrix(np.array([0.0, 0.0, avatar_yaw + yaw]))
    posed = pose_body(body, angles, root, np.array([avatar_xy[0], avatar_xy[1], 0.0]))
    dz = np.array([0.0, 0.0, 0.002 + lift - lowest_point(body, posed)])
    return posed._replace(positions=posed.positions + dz, vertices=posed.vertices + dz, surface=posed.surface + dz)


class Frame(NamedTuple):
    """A rendered frame: final RGB (noise included), the clean RGB, avatar buffers and masks."""

    rgb: np.ndarray
    clean: np.ndarray
    buffers: AvatarBuffers
    visible: np.ndarray
    unoccluded: np.ndarray
    combined_depth: np.ndarray
    bottom: np.ndarray
    top: np.ndarray

    def masks(self, annotation_id: int) -> Iterator[tuple[str, np.ndarray]]:
        """The 5 segmentation masks of the frame as (file-name suffix, boolean mask)."""
        yield "cseg", self.visible
        yield "iseg", self.visible
        yield f"iseg.{annotation_id:06d}", self.unoccluded
        yield "cseg.CLOTHING_1", self.bottom
        yield "cseg.CLOTHING_2", self.top


class JobScene:
    """Everything about one job that does not change from frame to frame."""

    def __init__(
        self,
        params: Mapping[str, Any],
        seed: int,
        body: Body,
        appearance: Appearance,
        timeline: Timeline,
        camera: Camera,
        room: Room,
        avatar_xy: np.ndarray,
        avatar_yaw: float,
    ) -> None:
        self.params = params
        self.seed = seed
        self.body = body
        self.appearance = appearance
        self.timeline = timeline
        self.camera = camera
        self.room = room
        self.avatar_xy = avatar_xy
        self.avatar_yaw = avatar_yaw
        self.rays = pixel_rays(camera)
        self.planar = PlanarRays.from_rays(self.rays)
        self.power = float(params["lighting_power"])
        self.room_render: RoomRender = render_room(camera, self.rays, room, self.power)
        self.room_u8 = _to_u8(self.room_render.colour)
        self._posed: dict[int, PosedBody] = {}
        self._bottom_lut = np.zeros(len(PART_IDS) + 1, dtype=bool)
        self._bottom_lut[list(appearance.bottom_parts)] = True
        self._top_lut = np.zeros(len(PART_IDS) + 1, dtype=bool)
        self._top_lut[list(appearance.top_parts)] = True
        self.tolerance = body.joint_radius + 0.02

    @classmethod
    def build(cls, params: Mapping[str, Any], seed: int, num_frames: int) -> JobScene:
        """Set up the job: the timeline of the full clip (so a preview equals frame 0), placement, camera, room."""
        body = build_body(body_shape(params))
        appearance = make_appearance(params, rng(seed, "appearance"))
        full = frame_count(params, False)
        # furniture placement looks at frames sampled over the whole clip, also for a preview (= frame 0)
        sample = np.unique(np.linspace(0, full - 1, min(full, 12)).round().astype(np.int64))
        timeline = make_timeline(params, seed, sorted(set(range(num_frames)) | {int(k) for k in sample}))
        place = rng(seed, "placement")
        avatar_yaw = float(place.uniform(0.0, 360.0))
        avatar_xy = place.uniform(-0.5, 0.5, size=2)
        room, furniture = build_room(str(params["scene"]), rng(seed, "room"))
        distance = float(params["camera_distance"])
        cam_xy = avatar_xy + distance * _heading(avatar_yaw + float(params["relative_avatar_angle_deg"]))
        limit = room.half - 0.4
        shift = np.sign(cam_xy) * np.maximum(np.abs(cam_xy) - limit, 0.0)
        avatar_xy, cam_xy = avatar_xy - shift, cam_xy - shift
        pelvis = pose_frame(body, timeline, avatar_xy, avatar_yaw, 0).positions[JOINT_INDEX["pelvis"]]
        cam_pos = np.array([cam_xy[0], cam_xy[1], float(params["camera_height"])])
        v = pelvis - cam_pos
        yaw = math.degrees(math.atan2(-v[0], v[1])) + float(params["relative_camera_yaw_deg"])
        pitch = math.degrees(math.atan2(math.hypot(v[0], v[1]), -v[2])) + float(params["relative_camera_pitch_deg"])
        camera = Camera.look(cam_pos, yaw, pitch, int(params["image_width"]), int(params["image_height"]))
        points = np.stack([pose_frame(body, timeline, avatar_xy, avatar_yaw, int(k)).surface for k in sample])
        wall_art = int(rng(seed, "room/art").integers(1, 4)) if params["add_wall_art"] else 0
        art_style = 1 if params["wall_art_type"] == "misc_human" else 0
        room = place_furniture(room, furniture, rng(seed, "room/furniture"), cam_pos, avatar_xy, points,
                               float(params["allowable_occlusion"]), wall_art, art_style)  # fmt: skip
        return cls(params, seed, body, appearance, timeline, camera, room, avatar_xy, avatar_yaw)

    def posed(self, k: int) -> PosedBody:
        """The body of frame ``k`` in world coordinates (feet on the floor, plus the motion's lift)."""
        posed = self._posed.get(k)
        if posed is None:
            posed = pose_frame(self.body, self.timeline, self.avatar_xy, self.avatar_yaw, k)
            self._posed = {k: posed}  # render(k) and annotate(k) share it; older frames are dropped
        return posed

    def render(self, k: int) -> Frame:
        """Render frame ``k``: the avatar over the static room, its floor shadow, then sensor noise."""
        cam = self.camera
        posed = self.posed(k)
        buf = render_avatar(cam, self.planar, self.body, posed, PART_IDS)
        unoccluded = np.isfinite(buf.depth)
        visible = unoccluded & (buf.depth < self.room_render.depth)
        img = self.room_u8.copy()
        centre = posed.positions[JOINT_INDEX["pelvis"], :2]
        sbox = shadow_box(cam, centre, 0.35)
        if sbox is not None:
            x0, y0, x1, y1 = sbox
            factor = avatar_shadow(self.room_render, centre, 0.35, sbox)
            img[y0:y1, x0:x1] = _to_u8(self.room_render.colour[y0:y1, x0:x1] * factor[..., None])
        if visible.any():
            ys, xs = np.nonzero(visible)
            depth = buf.depth[ys, xs]
            points = cam.position + depth[:, None] * self.rays[ys, xs]
            albedo = self.appearance.albedo[buf.part[ys, xs]]
            img[ys, xs] = _to_u8(shade(albedo, buf.normal[ys, xs], points, self.room.light, self.power))
        clean = img
        if self.params["enable_sensor_noise"]:
            # shot + read noise: sigma^2 = 0.05 I + 1 (grey levels), looked up per level
            noisy = rng(self.seed, f"noise/{k}").standard_normal(clean.shape, dtype=np.float32)
            noisy *= _NOISE_SIGMA[clean]
            noisy += clean
            noisy += np.float32(0.5)
            np.clip(noisy, 0.0, 255.0, out=noisy)
            img = noisy.astype(np.uint8)
        if np.array_equal(visible, unoccluded):
            unoccluded = visible
        combined = np.minimum(buf.depth, self.room_render.depth)
        part = np.where(visible, buf.part, len(PART_IDS))
        return Frame(img, clean, buf, visible, unoccluded, combined, self._bottom_lut[part], self._top_lut[part])

    def annotate(self, k: int, frame: Frame, annotation_id: int) -> tuple[dict[str, Any], dict[str, Any], float]:
        """Labels of frame ``k``: its ``images`` entry, its person annotation, and the seconds spent on metrics."""
        cam = self.camera
        posed = self.posed(k)
        armature, _, _ = keypoint_table(
            cam, posed.positions, self.tolerance, frame.combined_depth, frame.visible, JOINT_NAMES
        )
        vtol = np.full(len(VERTEX_NAMES), 0.02)
        vertex, _, _ = keypoint_table(cam, posed.vertices, vtol, frame.combined_depth, frame.visible, VERTEX_NAMES)
        keypoints, num_keypoints = coco_keypoints(armature, vertex)
        segmentation, bbox = mask_polygons(frame.visible)
        uv, z = cam.project(posed.surface)
        in_fov = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height)
        unocc = int(frame.unoccluded.sum())
        occluded = 0.0 if unocc == 0 else 100.0 * (unocc - int(frame.visible.sum())) / unocc
        annotation = {
            "category_id": 0,
            "image_id": 3 * k,
            "id": annotation_id,
            "iscrowd": 0,
            "color": [1.0, 1.0, 1.0],
            "area": r6(bbox[2] * bbox[3]),
            "segmentation": segmentation,
            "bbox": bbox,
            "cuboid_coordinates": cuboid(cam, np.concatenate([posed.positions, posed.surface])),
            "quaternions": quaternions(posed.root_rotation, posed.local_rotations),
            "percent_in_fov": r6(100.0 * in_fov.mean()),
            "vertex_keypoints": vertex,
            "keypoints": keypoints,
            "num_keypoints": num_keypoints,
            "armature_keypoints": armature,
            "percent_occlusion": r6(occluded),
        }
        t0 = time.perf_counter()
        metrics = frame_metrics(frame.clean, frame.rgb, frame.visible, bool(self.params["enable_sensor_noise"]))
        metric_time = time.perf_counter() - t0
        count = float(self.timeline.rep_count[self.timeline.rows[k]])
        image = {
            "id": 3 * k,
            "width": cam.width,
            "height": cam.height,
            "rep_count_from_start": r6(count),
            "rep_count_from_intermediate": r6(count + 1.0 - self.timeline.intermediate),
            "frame_number": k,
            "has_self_penetrations": self._penetrates(posed),
            "metrics": metrics,
        }
        return image, annotation, metric_time

    def _penetrates(self, posed: PosedBody) -> bool:
        """Whether a wrist, elbow, knee or ankle joint lies inside a trunk solid (pelvis, abdomen, chest)."""
        probes = posed.positions[
            [JOINT_INDEX[f"{s}_{j}"] for s in ("left", "right") for j in ("wrist", "elbow", "ankle")]
        ]
        for prim in self.body.primitives:
            if prim.part not in _TRUNK:
                continue
            rot = posed.rotations[prim.a]
            centre = posed.positions[prim.a] + rot @ np.asarray(prim.centre)
            local = ((probes - centre) @ rot) / np.asarray(prim.radii)
            if np.any(np.einsum("ij,ij->i", local, local) < 1.0):
                return True
        return False

    def waist_circumference(self) -> float:
        """Perimeter of the abdomen ellipse (Ramanujan's approximation), metres."""
        prim = next(p for p in self.body.primitives if p.part == "abdomen")
        a, b = prim.radii[0], prim.radii[1]
        h = ((a - b) / (a + b)) ** 2
        return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))

    def info(self, params: Mapping[str, Any], penetrations: bool) -> dict[str, Any]:
        """The ``labels.json`` ``info`` block (``date_created`` and ``seed_job_id`` are set by the caller)."""
        cam = self.camera
        rt = np.concatenate([cam.R, cam.t[:, None]], axis=1)
        return {
            "url": "https://pypi.org/project/opsin-synth-client/",
            "date_created": "",
            "camera_pitch": r6(cam.pitch),
            "camera_height": r6(cam.position[2]),
            "camera_yaw": r6(cam.yaw),
            "camera_location": [r6(c) for c in cam.position],
            "avatar_yaw": r6(self.avatar_yaw),
            "avatar_location": [r6(self.avatar_xy[0]), r6(self.avatar_xy[1]), 0.0],
            "avatar_presenting_gender": "female" if self.body.shape.female else "male",
            "avatar_attire_top": self.appearance.top,
            "avatar_attire_bottom": self.appearance.bottom,
            "avatar_identity": int(params["avatar_identity"]),
            "avatar_betas": [r6(b) for b in self.appearance.betas],
            "avatar_waist_circumference": r6(self.waist_circumference()),
            "camera_P_matrix": [[float(v) for v in row] for row in cam.P],
            "camera_K_matrix": [[float(v) for v in row] for row in cam.K],
            "camera_RT_matrix": [[float(v) for v in row] for row in rt],
            "has_self_penetrations": penetrations,
            "video_name": "video",
            "scene_id": str(params["scene"]),
            "generator": "",
            "seed_job_id": None,
        }

    @staticmethod
    def categories() -> list[dict[str, Any]]:
        """The single ``person`` category with the 17 COCO keypoints and skeleton."""
        return [{"id": 0, "name": "person", "color": [1.0, 1.0, 1.0], "keypoints": list(COCO_KEYPOINTS),
                 "skeleton": [list(pair) for pair in COCO_SKELETON]}]  # fmt: skip
