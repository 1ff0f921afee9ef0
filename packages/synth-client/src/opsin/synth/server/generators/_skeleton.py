"""The procedural humanoid: 55 named armature joints, forward kinematics, body primitives and surface points.

Body frame: x = the avatar's right, y = forward (the way it faces), z = up; metres. At rest every joint frame is
aligned with the body frame, so a local rotation ``Rz(az) @ Ry(ay) @ Rx(ax)`` (degrees) reads: ``ax`` > 0 swings a
hanging limb forward (hip, shoulder and elbow flexion; knee flexion is ``ax`` < 0; spine ``ax`` < 0 bends forward),
``ay`` > 0 swings it to the avatar's left (left abduction; right abduction is ``ay`` < 0), ``az`` twists about the
limb. The body is drawn with capsules (limbs, neck) and ellipsoids (pelvis, abdomen, chest, head, hair, hands, feet).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "JOINT_INDEX",
    "JOINT_NAMES",
    "JOINT_PARENTS",
    "VERTEX_NAMES",
    "Body",
    "BodyShape",
    "Primitive",
    "PosedBody",
    "build_body",
    "euler_matrix",
    "lowest_point",
    "matrix_to_quaternion",
    "pose_body",
]

_FINGERS = ("index", "middle", "pinky", "ring", "thumb")
# Offsets relative to the parent joint, for a 1.75 m body, left side (x < 0); right side mirrors x.
_LEG = (("hip", "pelvis", (-0.09, 0.0, -0.07)), ("knee", "hip", (0.0, 0.01, -0.41)),
        ("ankle", "knee", (0.0, -0.02, -0.38)), ("foot", "ankle", (0.0, 0.13, -0.05)))  # fmt: skip
_ARM = (("collar", "spine3", (-0.04, 0.0, 0.10)), ("shoulder", "collar", (-0.13, -0.01, 0.03)),
        ("elbow", "shoulder", (-0.03, 0.0, -0.28)), ("wrist", "elbow", (0.0, 0.0, -0.25)))  # fmt: skip
_FINGER_BASE = {"index": (0.0, 0.025, -0.09), "middle": (0.0, 0.008, -0.095), "ring": (0.0, -0.009, -0.09),
                "pinky": (0.0, -0.025, -0.08), "thumb": (0.012, 0.03, -0.025)}  # fmt: skip
_FINGER_STEP = {"thumb": ((0.0, 0.022, -0.022), (0.0, 0.016, -0.018))}
_DEFAULT_STEP = ((0.0, 0.0, -0.035), (0.0, 0.0, -0.025))


Row = tuple[str, str | None, tuple[float, float, float]]


def _side(
    prefix: str, mirror: float, rows: tuple[tuple[str, str, tuple[float, float, float]], ...], root: str
) -> list[Row]:
    """Name and mirror one side's rows (``root`` keeps its name, other parents get the side prefix)."""
    return [
        (f"{prefix}_{name}", parent if parent == root else f"{prefix}_{parent}", (off[0] * mirror, off[1], off[2]))
        for name, parent, off in rows
    ]


def _joint_table() -> list[Row]:
    """The 55 joints in the sample's order: pelvis, legs, spine/head, then each arm with its fingers."""
    fingers: list[tuple[str, str, tuple[float, float, float]]] = []
    for finger in _FINGERS:
        steps = _FINGER_STEP.get(finger, _DEFAULT_STEP)
        fingers += [(f"{finger}1", "wrist", _FINGER_BASE[finger]), (f"{finger}2", f"{finger}1", steps[0]),
                    (f"{finger}3", f"{finger}2", steps[1])]  # fmt: skip
    table: list[Row] = [("pelvis", None, (0.0, 0.0, 0.93))]
    table += _side("left", 1.0, _LEG, "pelvis") + _side("right", -1.0, _LEG, "pelvis")
    table += [
        ("spine1", "pelvis", (0.0, -0.01, 0.11)),
        ("spine2", "spine1", (0.0, 0.0, 0.13)),
        ("spine3", "spine2", (0.0, 0.0, 0.11)),
        ("neck", "spine3", (0.0, -0.01, 0.17)),
        ("head", "neck", (0.0, 0.01, 0.09)),
        ("jaw", "head", (0.0, 0.05, -0.03)),
        ("left_eye_smplhf", "head", (-0.032, 0.085, 0.06)),
        ("right_eye_smplhf", "head", (0.032, 0.085, 0.06)),
    ]
    arm = _ARM + tuple(fingers)
    return table + _side("left", 1.0, arm, "spine3") + _side("right", -1.0, arm, "spine3")


_TABLE = _joint_table()
JOINT_NAMES: tuple[str, ...] = tuple(row[0] for row in _TABLE)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}
JOINT_PARENTS: tuple[int, ...] = tuple(-1 if row[1] is None else JOINT_INDEX[row[1]] for row in _TABLE)
_REST_OFFSETS = np.array([row[2] for row in _TABLE], dtype=np.float64)
VERTEX_NAMES = ("left_ear", "right_ear", "nose_left_nostril", "nose_right_nostril", "nose_tip")
# Head-frame offsets of the vertex keypoints (relative to the head joint, 1.75 m body).
_VERTEX_OFFSETS = np.array(
    [(-0.078, 0.01, 0.06), (0.078, 0.01, 0.06), (-0.012, 0.105, 0.02), (0.012, 0.105, 0.02), (0.0, 0.118, 0.035)]
)

assert len(JOINT_NAMES) == 55, len(JOINT_NAMES)


def euler_matrix(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices ``Rz(az) @ Ry(ay) @ Rx(ax)`` for an ``(..., 3)`` array of degrees ``(ax, ay, az)``."""
    a = np.radians(np.asarray(angles_deg, dtype=np.float64))
    cx, cy, cz = np.cos(a[..., 0]), np.cos(a[..., 1]), np.cos(a[..., 2])
    sx, sy, sz = np.sin(a[..., 0]), np.sin(a[..., 1]), np.sin(a[..., 2])
    m = np.empty((*a.shape[:-1], 3, 3))
    m[..., 0, 0] = cz * cy
    m[..., 0, 1] = cz * sy * sx - sz * cx
    m[..., 0, 2] = cz * sy * cx + sz * sx
    m[..., 1, 0] = sz * cy
    m[..., 1, 1] = sz * sy * sx + cz * cx
    m[..., 1, 2] = sz * sy * cx - cz * sx
    m[..., 2, 0] = -sy
    m[..., 2, 1] = cy * sx
    m[..., 2, 2] = cy * cx
    return m


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """Convert ``(..., 3, 3)`` rotation matrices to unit quaternions ``(..., 4)`` in w, x, y, z order (w >= 0)."""
    m = np.asarray(m, dtype=np.float64)
    r = m.reshape(-1, 3, 3)
    # the four classic branches, computed for all matrices; each row keeps the numerically largest one
    cands = np.stack(
        [
            np.stack([1 + r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2], r[:, 2, 1] - r[:, 1, 2],
                      r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], axis=1),
            np.stack([r[:, 2, 1] - r[:, 1, 2], 1 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2],
                      r[:, 0, 1] + r[:, 1, 0], r[:, 0, 2] + r[:, 2, 0]], axis=1),
            np.stack([r[:, 0, 2] - r[:, 2, 0], r[:, 0, 1] + r[:, 1, 0],
                      1 + r[:, 1, 1] - r[:, 0, 0] - r[:, 2, 2], r[:, 1, 2] + r[:, 2, 1]], axis=1),
            np.stack([r[:, 1, 0] - r[:, 0, 1], r[:, 0, 2] + r[:, 2, 0],
                      r[:, 1, 2] + r[:, 2, 1], 1 + r[:, 2, 2] - r[:, 0, 0] - r[:, 1, 1]], axis=1),
        ],
        axis=1,
    )  # fmt: skip
    pick = np.argmax(np.linalg.norm(cands, axis=2), axis=1)
    q = cands[np.arange(len(r)), pick]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.where(q[:, 0:1] < 0, -1.0, 1.0)
    return q.reshape(*m.shape[:-2], 4)


class BodyShape(NamedTuple):
    """Size of the avatar.

    Attributes:
        stature: standing height in metres.
        girth: width multiplier of the trunk and limbs (1 = average).
        female: presenting gender (wider pelvis, narrower chest).
    """

    stature: float
    girth: float
    female: bool


class Primitive(NamedTuple):
    """One solid of the body.

    Attributes:
        kind: ``"capsule"`` (between joints ``a`` and ``b``) or ``"ellipsoid"`` (in joint ``a``'s frame).
        a: first joint index.
        b: second joint index (capsules) or -1.
        radius: capsule radius (m); for ellipsoids the largest semi-axis.
        centre: ellipsoid centre in joint ``a``'s frame (m).
        radii: ellipsoid semi-axes along joint ``a``'s x, y, z (m).
        part: body part name, used to pick the material (skin, garment, hair, shoes).
        points: surface points sampled on the solid (count).
    """

    kind: str
    a: int
    b: int
    radius: float
    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    part: str
    points: int


class Body(NamedTuple):
    """A sized avatar: scaled joint offsets, primitives, per-joint visibility tolerance and vertex offsets."""

    shape: BodyShape
    offsets: np.ndarray  # (55, 3)
    primitives: tuple[Primitive, ...]
    joint_radius: np.ndarray  # (55,) surface distance tolerance per joint (m)
    vertex_offsets: np.ndarray  # (5, 3) in the head frame
    surface_local: tuple[np.ndarray, ...]  # per primitive: unit parameters of its surface points


class PosedBody(NamedTuple):
    """The body in one frame, in world coordinates."""

    positions: np.ndarray  # (55, 3) joint positions
    rotations: np.ndarray  # (55, 3, 3) joint global rotations
    local_rotations: np.ndarray  # (55, 3, 3) rotation relative to the parent (pelvis: relative to root)
    root_rotation: np.ndarray  # (3, 3)
    vertices: np.ndarray  # (5, 3) vertex keypoints
    surface: np.ndarray  # (M, 3) surface points


def _fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = math.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)


def _capsule_params(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    return np.stack([i / n, (i * 2.39996323) % (2 * math.pi)], axis=1)  # (u along axis, angle)


def build_body(shape: BodyShape) -> Body:
    """Scale the skeleton and build the primitives for ``shape``."""
    s = shape.stature / 1.75
    g = shape.girth
    offsets = _REST_OFFSETS * s
    j = JOINT_INDEX
    hip_w = 1.08 if shape.female else 1.0
    chest_w = 0.9 if shape.female else 1.0
    prims: list[Primitive] = []

    def capsule(a: str, b: str, r: float, part: str, n: int) -> None:
        prims.append(Primitive("capsule", j[a], j[b], r * s * g, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), part, n))

    def ellipsoid(a: str, c: Sequence[float], radii: Sequence[float], part: str, n: int, wide: float = 1.0) -> None:
        rr = (radii[0] * s * g * wide, radii[1] * s * g, radii[2] * s)
        cc = (c[0] * s, c[1] * s, c[2] * s)
        prims.append(Primitive("ellipsoid", j[a], -1, max(rr), cc, rr, part, n))

    for side in ("left", "right"):
        capsule(f"{side}_hip", f"{side}_knee", 0.072, "thigh", 150)
        capsule(f"{side}_knee", f"{side}_ankle", 0.052, "shin", 120)
        capsule(f"{side}_shoulder", f"{side}_elbow", 0.045, "upper_arm", 100)
        capsule(f"{side}_elbow", f"{side}_wrist", 0.037, "forearm", 90)
        ellipsoid(f"{side}_wrist", (0.0, 0.005, -0.08), (0.024, 0.048, 0.092), "hand", 50)
        ellipsoid(f"{side}_ankle", (0.0, 0.055, -0.045), (0.045, 0.12, 0.038), "foot", 70)
    capsule("neck", "head", 0.05, "neck", 30)
    ellipsoid("pelvis", (0.0, 0.0, -0.01), (0.165, 0.105, 0.11), "pelvis", 200, hip_w)
    ellipsoid("spine1", (0.0, 0.0, 0.06), (0.145, 0.095, 0.13), "abdomen", 180)
    ellipsoid("spine3", (0.0, 0.0, 0.0), (0.175, 0.105, 0.16), "chest", 260, chest_w)
    ellipsoid("head", (0.0, 0.02, 0.07), (0.078, 0.098, 0.115), "head", 150, 1.0 / g)
    ellipsoid("head", (0.0, -0.012, 0.092), (0.084, 0.1, 0.1), "hair", 0, 1.0 / g)

    radius = np.full(len(JOINT_NAMES), 0.03)
    for p in prims:
        radius[p.a] = max(radius[p.a], p.radius)
        if p.b >= 0:
            radius[p.b] = max(radius[p.b], p.radius)
    for name in ("spine2", "spine1", "pelvis", "left_collar", "right_collar"):
        radius[j[name]] = max(radius[j[name]], 0.15 * s * g)
    for name in ("left_hip", "right_hip"):
        radius[j[name]] = max(radius[j[name]], 0.13 * s * g)
    surface: list[np.ndarray] = []
    for p in prims:
        surface.append(_capsule_params(p.points) if p.kind == "capsule" else _fibonacci_sphere(p.points))
    vertex_offsets = _VERTEX_OFFSETS * s
    return Body(shape, offsets, tuple(prims), radius, vertex_offsets, tuple(surface))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (``np.cross`` is slow for single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = _cross(axis, helper)
    e1 /= math.sqrt(float(e1 @ e1))
    return e1, _cross(axis, e1)


def pose_body(body: Body, local_angles: np.ndarray, root_rotation: np.ndarray, root_position: np.ndarray) -> PosedBody:
    """Forward kinematics.

    Args:
        body: the sized body.
        local_angles: ``(55, 3)`` Euler angles (degrees) of each joint relative to its parent (pelvis: to the root).
        root_rotation: ``(3, 3)`` body-to-world rotation applied at the pelvis (yaw and tilt).
        root_position: world position of the root (floor point under the rest pelvis).

    Returns:
        World joint positions and rotations, vertex keypoints and surface points.
    """
    local = euler_matrix(local_angles)
    n = len(JOINT_NAMES)
    rot = np.empty((n, 3, 3))
    pos = np.empty((n, 3))
    for i in range(n):
        parent = JOINT_PARENTS[i]
        if parent < 0:
            rot[i] = root_rotation @ local[i]
            pos[i] = root_position + np.array([0.0, 0.0, body.offsets[i, 2]])
        else:
            rot[i] = rot[parent] @ local[i]
            pos[i] = pos[parent] + rot[parent] @ body.offsets[i]
    head = JOINT_INDEX["head"]
    vertices = pos[head] + body.vertex_offsets @ rot[head].T
    chunks = []
    for prim, params in zip(body.primitives, body.surface_local):
        if prim.points == 0:
            continue
        if prim.kind == "capsule":
            a, b = pos[prim.a], pos[prim.b]
            axis = b - a
            length = math.sqrt(float(axis @ axis))
            unit = axis / max(length, 1e-9)
            e1, e2 = _basis(unit)
            u, ang = params[:, 0:1], params[:, 1:2]
            ring = np.cos(ang) * e1 + np.sin(ang) * e2
            chunks.append(a + u * axis + prim.radius * ring)
        else:
            centre = pos[prim.a] + rot[prim.a] @ np.array(prim.centre)
            chunks.append(centre + (params * np.array(prim.radii)) @ rot[prim.a].T)
    return PosedBody(pos, rot, local, root_rotation, vertices, np.concatenate(chunks))


def lowest_point(body: Body, posed: PosedBody) -> float:
    """Return the lowest world z of the body's solids (capsule spheres and ellipsoid extents)."""
    low = math.inf
    for prim in body.primitives:
        if prim.kind == "capsule":
            z = min(posed.positions[prim.a, 2], posed.positions[prim.b, 2]) - prim.radius
        else:
            r = posed.rotations[prim.a]
            centre = posed.positions[prim.a] + r @ np.array(prim.centre)
            # Extent of a rotated ellipsoid along world z: sqrt(sum((R[2, k] * radii[k])^2)).
            z = centre[2] - float(np.sqrt(np.sum((r[2] * np.array(prim.radii)) ** 2)))
        low = min(low, z)
    return low
