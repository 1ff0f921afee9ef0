"""Exercise motions: the family table, the exact frame count and the seeded timeline of reps and pauses.

A family is a keyframed cycle over the rep phase ``p`` in [0, 1]: each keyframe sets joint angles (degrees, see
:mod:`._skeleton` for the axes) and root values (``pitch``/``roll`` tilt of the whole body, ``yaw`` turn, ``lift``
above the floor). Poses between keyframes blend with a smoothstep. ``-RIGHT`` names mirror the ``-LEFT`` motion and
``_NN`` variants scale the amplitude. The frame count depends only on the parameters; the seed only redistributes
time inside the clip (per-rep speed factors, pause shares) and adds band-limited joint jitter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from opsin.core import rng
from opsin.synth.errors import ParameterValidationError
from opsin.synth.server.generators._skeleton import JOINT_INDEX, JOINT_NAMES

__all__ = ["EXERCISES", "Exercise", "Timeline", "exercise_info", "frame_count", "make_timeline"]

EXERCISES: tuple[str, ...] = (
    "ARM_RAISE-DUMBBELL", "BEAR_CRAWL-HOLDS", "BICEP_CURL-ALTERNATING-DUMBBELL", "BICEP_CURL-BARBELL", "BIRD_DOG",
    "BRIDGE", "BURPEE", "CLAMSHELL-LEFT", "CLAMSHELL-RIGHT", "CRUNCHES", "DEADLIFT-DUMBBELL", "DONKEY_KICK-LEFT",
    "DONKEY_KICK-RIGHT", "DOWNWARD_DOG", "LEG_RAISE", "LUNGE-CROSSBACK", "PRESS-SINGLE_ARM-DUMBBELL-LEFT",
    "PRESS-SINGLE_ARM-DUMBBELL-RIGHT", "PUSHUP", "PUSHUP-CLOSE_GRIP", "PUSHUP-EXPLOSIVE",
    "PUSH_PRESS-SINGLE_ARM-DUMBBELL-LEFT", "PUSH_PRESS-SINGLE_ARM-DUMBBELL-RIGHT", "SITUP",
    "SPLIT_SQUAT-SINGLE_ARM-DUMBBELL-LEFT", "SPLIT_SQUAT-SINGLE_ARM-DUMBBELL-RIGHT", "SQUAT-BACK-BARBELL",
    "SQUAT-BODYWEIGHT", "SQUAT-GOBLET+SUMO-DUMBBELL", "SUPERMAN", "TRICEP_KICKBACK-BENT_OVER+SINGLE_ARM-DUMBBELL-LEFT",
    "TRICEP_KICKBACK-BENT_OVER+SINGLE_ARM-DUMBBELL-RIGHT", "UPPERCUT-LEFT", "UPPERCUT-RIGHT", "V_UP",
    "180_JUMP_SQUAT_03-RIGHT", "180_JUMP_SQUAT_05-LEFT", "180_JUMP_SQUAT_05-RIGHT", "180_JUMP_SQUAT_06-LEFT",
    "180_JUMP_SQUAT_06-RIGHT", "180_JUMP_SQUAT_07-LEFT", "180_JUMP_SQUAT_08-RIGHT", "BURPEE_01", "BURPEE_02",
    "BURPEE_05", "BURPEE_07", "BURPEE_08", "BURPEE_09", "BURPEE_10", "BURPEE_PUSHUP_01", "BURPEE_PUSHUP_03",
    "BURPEE_PUSHUP_05", "BURPEE_PUSHUP_07", "BURPEE_PUSHUP_09", "BURPEE_PUSHUP_10", "BURPEE_PUSHUP_11",
    "BURPEE_PUSHUP_13", "HIGH_KNEES_01", "HIGH_KNEES_02", "HIGH_KNEES_04", "HIGH_KNEES_05", "HIGH_KNEES_06",
    "HIGH_KNEES_09", "POGO_POGO_LUNGE_01-LEFT", "POGO_POGO_LUNGE_02", "POGO_POGO_LUNGE_03", "POGO_POGO_LUNGE_05-LEFT",
    "POGO_POGO_LUNGE_05-RIGHT", "POGO_POGO_LUNGE_06", "POGO_POGO_LUNGE_07", "POGO_POGO_LUNGE_08",
    "POGO_POGO_LUNGE_10",
)  # fmt: skip

# family -> (base rep time T in s, intermediate phase φ)
_FAMILY_TIMING = {"punch": (1.4, 0.4186), "squat": (2.5, 0.5), "arm": (2.0, 0.5), "pushup": (2.0, 0.5),
                  "burpee": (3.0, 0.5), "floor": (2.5, 0.5), "cardio": (0.8, 0.5)}  # fmt: skip
_FAMILY_BY_PREFIX = (
    ("UPPERCUT", "punch"), ("SQUAT", "squat"), ("SPLIT_SQUAT", "squat"), ("180_JUMP_SQUAT", "squat"),
    ("LUNGE", "squat"), ("POGO_POGO_LUNGE", "squat"), ("DEADLIFT", "squat"), ("ARM_RAISE", "arm"),
    ("BICEP_CURL", "arm"), ("PRESS", "arm"), ("PUSH_PRESS", "arm"), ("TRICEP_KICKBACK", "arm"),
    ("PUSHUP", "pushup"), ("BURPEE", "burpee"), ("BURPEE_PUSHUP", "burpee"), ("CRUNCHES", "floor"),
    ("SITUP", "floor"), ("V_UP", "floor"), ("LEG_RAISE", "floor"), ("SUPERMAN", "floor"), ("BRIDGE", "floor"),
    ("BIRD_DOG", "floor"), ("CLAMSHELL", "floor"), ("DONKEY_KICK", "floor"), ("DOWNWARD_DOG", "floor"),
    ("BEAR_CRAWL", "floor"), ("HIGH_KNEES", "cardio"),
)  # fmt: skip
_ROOT_KEYS = ("pitch", "roll", "yaw", "lift")
Pose = dict[str, Any]  # joint name -> (ax, ay, az); root keys -> float


class Exercise(NamedTuple):
    """An exercise resolved from its name.

    Attributes:
        name: the parameter value.
        family: motion family (punch, squat, arm, pushup, burpee, floor, cardio).
        base: name without variant digits and side (e.g. ``180_JUMP_SQUAT``).
        mirrored: ``-RIGHT`` variant of a sided motion.
        amplitude: scale of the motion (``_NN`` variants).
        rep_time: base duration of one rep at speed 1 (s).
        intermediate: phase of the rep's intermediate pose.
    """

    name: str
    family: str
    base: str
    mirrored: bool
    amplitude: float
    rep_time: float
    intermediate: float


def exercise_info(name: str) -> Exercise:
    """Resolve an exercise name (one of :data:`EXERCISES`, or any name with a known prefix)."""
    head = name.split("-")[0]
    match = re.fullmatch(r"(.*?)_(\d+)", head)
    base, variant = (match.group(1), int(match.group(2))) if match else (head, 0)
    family = None
    for prefix, fam in sorted(_FAMILY_BY_PREFIX, key=lambda item: -len(item[0])):
        if base == prefix or base.startswith(prefix):
            family = fam
            break
    if family is None:
        msg = f"exercise {name!r} has no known motion family"
        raise ParameterValidationError(msg)
    rep_time, phi = _FAMILY_TIMING[family]
    amplitude = 1.0 if variant == 0 else 0.85 + 0.05 * (variant % 7)
    return Exercise(name, family, base, name.endswith("-RIGHT"), amplitude, rep_time, phi)


def frame_count(params: Mapping[str, Any], is_preview: bool) -> int:
    """Exact frame count: ``max(1, round(D * frame_rate))`` with ``D = R (d + T/s) + (add_pauses ? R/2 : 0)``."""
    if is_preview:
        return 1
    ex = exercise_info(str(params["exercise"]))
    reps = int(params["num_reps"])
    duration = reps * (float(params["inter_rep_delay_avg"]) + ex.rep_time / float(params["rel_baseline_speed"]))
    if params.get("add_pauses", False):
        duration += 0.5 * reps
    return max(1, math.floor(duration * int(params["frame_rate"]) + 0.5))


def _sym(part: str, ax: float = 0.0, ay: float = 0.0, az: float = 0.0) -> Pose:
    """Both sides of ``part`` with left-defined angles (ay and az mirrored for the right side)."""
    return {f"left_{part}": (ax, ay, az), f"right_{part}": (ax, -ay, -az)}


def _standing() -> Pose:
    return {**_sym("shoulder", 0, 8, 0), **_sym("elbow", 12, 0, 0)}


def _keyframes(ex: Exercise) -> list[tuple[float, Pose]]:
    """Keyframes of the LEFT version of the motion; the caller mirrors ``-RIGHT``."""
    b = ex.base
    st = _standing()
    quad = {"pitch": -90.0, **_sym("hip", 90), **_sym("knee", -90), **_sym("shoulder", 90), **_sym("elbow", 0)}
    supine = {"pitch": 90.0, **_sym("shoulder", 0, 10)}
    if ex.family == "punch":
        guard = {**_sym("shoulder", 45, 18), **_sym("elbow", 115), **_sym("knee", -15), **_sym("hip", 10)}
        guard.update({"left_hip": (18, 4, 0), "right_hip": (-6, -4, 0)})
        peak = {**guard, "left_shoulder": (115, 8, 0), "left_elbow": (55, 0, 0), "spine2": (0, 0, -18),
                "spine3": (0, 0, -10), **_sym("knee", -28)}  # fmt: skip
        return [(0.0, guard), (ex.intermediate, peak), (1.0, guard)]
    if ex.family == "squat":
        if b == "DEADLIFT":
            down = {"pitch": -60.0, **_sym("hip", 55), **_sym("knee", -20), **_sym("shoulder", 58, 4)}
            return [(0.0, st), (0.5, down), (1.0, st)]
        if b in ("SPLIT_SQUAT", "LUNGE", "POGO_POGO_LUNGE"):
            start = {**st, "left_hip": (25, 0, 0), "right_hip": (-18, 0, 0)}
            cross = -12.0 if b == "LUNGE" else 0.0
            down = {**st, "left_hip": (85, 0, 0), "left_knee": (-90, 0, 0), "left_ankle": (5, 0, 0),
                    "right_hip": (-12, cross, 0), "right_knee": (-100, 0, 0), "spine1": (-5, 0, 0)}  # fmt: skip
            frames = [(0.0, start), (0.5, down), (1.0, start)]
            if b == "POGO_POGO_LUNGE":
                frames.insert(2, (0.75, {**start, "lift": 0.15}))
            return frames
        squat = {**_sym("hip", 95, 6 if "SUMO" in ex.name else 0), **_sym("knee", -110), **_sym("ankle", 15),
                 "spine1": (-25, 0, 0)}  # fmt: skip
        if "BARBELL" in ex.name:
            arms = {**_sym("shoulder", 10, 75), **_sym("elbow", 125)}
        elif "GOBLET" in ex.name:
            arms = {**_sym("shoulder", 20, 15), **_sym("elbow", 140)}
        else:
            arms = {**_sym("shoulder", 80, 5), **_sym("elbow", 5)}
        stand = {**st, **(arms if "BARBELL" in ex.name or "GOBLET" in ex.name else {})}
        if b == "180_JUMP_SQUAT":
            return [(0.0, stand), (0.3, {**squat, **arms}), (0.55, {**stand, "lift": 0.3, "yaw": 90.0}),
                    (0.75, {**squat, **arms, "yaw": 180.0}), (1.0, {**stand, "yaw": 180.0})]  # fmt: skip
        return [(0.0, stand), (0.5, {**squat, **arms}), (1.0, stand)]
    if ex.family == "arm":
        if b == "ARM_RAISE":
            return [(0.0, st), (0.5, {**_sym("shoulder", 0, 85), **_sym("elbow", 10)}), (1.0, st)]
        if b == "BICEP_CURL":
            if "ALTERNATING" in ex.name:
                return [(0.0, st), (0.25, {**st, "left_elbow": (140, 0, 0)}), (0.5, st),
                        (0.75, {**st, "right_elbow": (140, 0, 0)}), (1.0, st)]  # fmt: skip
            low, curl = {**_sym("shoulder", 5), **_sym("elbow", 10)}, {**_sym("shoulder", 5), **_sym("elbow", 140)}
            return [(0.0, low), (0.5, curl), (1.0, low)]
        if b in ("PRESS", "PUSH_PRESS"):
            rack = {**st, "left_shoulder": (80, 20, 0), "left_elbow": (110, 0, 0)}
            top = {**st, "left_shoulder": (172, 5, 0), "left_elbow": (5, 0, 0)}
            frames = [(0.0, rack), (0.5, top), (1.0, rack)]
            if b == "PUSH_PRESS":
                frames.insert(1, (0.2, {**rack, **_sym("hip", 25), **_sym("knee", -40), **_sym("ankle", 15)}))
            return frames
        bent = {"pitch": -50.0, **_sym("hip", 55), **_sym("knee", -25), **_sym("shoulder", 45, 5),
                "left_shoulder": (-5, 5, 0), "left_elbow": (100, 0, 0)}  # fmt: skip
        return [(0.0, bent), (0.5, {**bent, "left_elbow": (5, 0, 0), "left_shoulder": (-25, 5, 0)}), (1.0, bent)]
    if ex.family == "pushup":
        grip = 8.0 if "CLOSE" in ex.name else 28.0
        up = {"pitch": -72.0, **_sym("shoulder", 88, grip), **_sym("elbow", 0), **_sym("ankle", 60)}
        down = {"pitch": -84.0, **_sym("shoulder", 20, grip), **_sym("elbow", 80), **_sym("ankle", 60)}
        frames = [(0.0, up), (0.5, down), (1.0, up)]
        if "EXPLOSIVE" in ex.name:
            frames.insert(2, (0.7, {**up, "lift": 0.12}))
        return frames
    if ex.family == "burpee":
        squat = {
            "pitch": -30.0,
            **_sym("hip", 110),
            **_sym("knee", -125),
            **_sym("shoulder", 70, 8),
            **_sym("ankle", 20),
        }
        plank = {"pitch": -74.0, **_sym("shoulder", 85, 20), **_sym("ankle", 60)}
        jump = {**_sym("shoulder", 170, 15), "lift": 0.25}
        frames = [(0.0, st), (0.18, squat), (0.36, plank), (0.62, plank), (0.78, squat), (0.9, jump), (1.0, st)]
        if b == "BURPEE_PUSHUP":
            frames.insert(
                3, (0.49, {"pitch": -85.0, **_sym("shoulder", 20, 20), **_sym("elbow", 80), **_sym("ankle", 60)})
            )
        return frames
    if ex.family == "cardio":
        knee_l = {**st, "left_hip": (90, 0, 0), "left_knee": (-95, 0, 0), "right_shoulder": (40, -8, 0),
                  "right_elbow": (85, 0, 0), "lift": 0.06}  # fmt: skip
        knee_r = {**st, "right_hip": (90, 0, 0), "right_knee": (-95, 0, 0), "left_shoulder": (40, 8, 0),
                  "left_elbow": (85, 0, 0), "lift": 0.06}  # fmt: skip
        return [(0.0, st), (0.25, knee_l), (0.5, st), (0.75, knee_r), (1.0, st)]
    # floor family
    bent_knees = {**_sym("hip", 50), **_sym("knee", -100), **_sym("ankle", 40)}
    if b == "CRUNCHES":
        start = {**supine, **bent_knees, **_sym("shoulder", 150, 30), **_sym("elbow", 130)}
        return [(0.0, start), (0.5, {**start, "spine1": (-25, 0, 0), "spine2": (-20, 0, 0), "neck": (-15, 0, 0)}),
                (1.0, start)]  # fmt: skip
    if b == "SITUP":
        start = {**supine, **bent_knees, **_sym("shoulder", 20, 10)}
        return [(0.0, start), (0.5, {**start, "pitch": 25.0, **_sym("hip", 115), "spine1": (-15, 0, 0)}), (1.0, start)]
    if b == "V_UP":
        start = {**supine, **_sym("shoulder", 170, 5)}
        return [(0.0, start), (0.5, {"pitch": 45.0, **_sym("hip", 90), **_sym("shoulder", 100, 5)}), (1.0, start)]
    if b == "LEG_RAISE":
        return [(0.0, supine), (0.5, {**supine, **_sym("hip", 85)}), (1.0, supine)]
    if b == "SUPERMAN":
        start = {"pitch": -90.0, **_sym("shoulder", 165, 10), **_sym("ankle", 40)}
        peak = {**start, "spine1": (12, 0, 0), "spine2": (10, 0, 0), **_sym("hip", -15), **_sym("shoulder", 175, 10)}
        return [(0.0, start), (0.5, peak), (1.0, start)]
    if b == "BRIDGE":
        start = {**supine, **_sym("hip", 60), **_sym("knee", -110), **_sym("ankle", 40)}
        return [(0.0, start), (0.5, {**start, "pitch": 60.0, **_sym("hip", 25), **_sym("knee", -105)}), (1.0, start)]
    if b == "BIRD_DOG":
        return [(0.0, quad), (0.5, {**quad, "left_shoulder": (172, 0, 0), "right_hip": (-5, 0, 0),
                                    "right_knee": (-5, 0, 0)}), (1.0, quad)]  # fmt: skip
    if b == "CLAMSHELL":
        side = {"roll": -90.0, **_sym("hip", 45), **_sym("knee", -90), **_sym("shoulder", 90, 0)}
        return [(0.0, side), (0.5, {**side, "right_hip": (45, -45, 0)}), (1.0, side)]
    if b == "DONKEY_KICK":
        return [(0.0, quad), (0.5, {**quad, "left_hip": (-15, 0, 0)}), (1.0, quad)]
    if b == "DOWNWARD_DOG":
        plank = {"pitch": -74.0, **_sym("shoulder", 85, 10), **_sym("ankle", 60)}
        dog = {"pitch": -135.0, **_sym("hip", 95), **_sym("shoulder", 170, 10), **_sym("ankle", 20)}
        return [(0.0, plank), (0.5, dog), (1.0, plank)]
    # BEAR_CRAWL-HOLDS: quadruped with hovering knees and a small weight shift
    bear = {**quad, **_sym("knee", -100), **_sym("hip", 95)}
    return [(0.0, bear), (0.5, {**bear, "left_shoulder": (100, 0, 0), "right_hip": (85, 0, 0)}), (1.0, bear)]


def _to_arrays(pose: Pose, amplitude: float, mirrored: bool) -> tuple[np.ndarray, np.ndarray]:
    angles = np.zeros((len(JOINT_NAMES), 3))
    root = np.zeros(4)
    for key, value in pose.items():
        if key in _ROOT_KEYS:
            root[_ROOT_KEYS.index(key)] = float(value)
            continue
        name = key
        vec = np.asarray(value, dtype=np.float64)
        if mirrored:
            if name.startswith("left_"):
                name = "right_" + name[5:]
            elif name.startswith("right_"):
                name = "left_" + name[6:]
            vec = vec * np.array([1.0, -1.0, -1.0])
        angles[JOINT_INDEX[name]] = vec
    if mirrored:
        root[1] = -root[1]
        root[2] = -root[2]
    angles *= amplitude
    root[3] *= amplitude
    return angles, root


class Timeline(NamedTuple):
    """Motion state of selected frames of a clip (row ``rows[k]`` holds frame ``k``).

    Attributes:
        angles: ``(F, 55, 3)`` local joint angles (degrees), jitter included.
        root: ``(F, 4)`` pitch, roll, yaw (degrees) and lift (m).
        rep_count: ``(F,)`` completed reps plus the fraction of the current one (flat during pauses).
        intermediate: phase of the intermediate pose (``rep_count_from_intermediate = rep_count + 1 - φ``).
        rows: frame number -> row of the arrays.
    """

    angles: np.ndarray
    root: np.ndarray
    rep_count: np.ndarray
    intermediate: float
    rows: dict[int, int]


def _segments(params: Mapping[str, Any], ex: Exercise, seed: int) -> list[tuple[str, float, int]]:
    """Ordered (kind, duration, rep index) segments: ``pause`` / ``rep`` / ``hold`` (flagship mid-rep pause)."""
    reps = int(params["num_reps"])
    speed = float(params["rel_baseline_speed"])
    change = float(params["max_rel_speed_change"])
    factors = 1.0 + rng(seed, "motion/speed").uniform(-change, change, size=reps)
    durations = (ex.rep_time / speed) * (1.0 / factors) / np.mean(1.0 / factors)
    total_pause = reps * float(params["inter_rep_delay_avg"])
    var = float(params["inter_rep_delay_var"])
    if var <= 1e-9 or reps == 1:
        shares = np.full(reps, 1.0 / reps)
    else:
        shares = rng(seed, "motion/pauses").dirichlet(np.full(reps, min(1e6, 1.0 / var**2)))
    segments: list[tuple[str, float, int]] = []
    for i in range(reps):
        segments.append(("pause", total_pause * float(shares[i]), i))
        segments.append(("rep", float(durations[i]), i))
    return segments


def make_timeline(params: Mapping[str, Any], seed: int, frames: Sequence[int]) -> Timeline:
    """Compute the poses of the given frames of the clip (frame ``k`` is at ``t_k = k / frame_rate``).

    Every frame's pose depends only on ``k``, the params and the seed, so a preview (frame 0) and the sampled frames
    used to place furniture are computed without the rest of the clip.
    """
    frame_list = [int(k) for k in frames]
    num_frames = len(frame_list)
    ex = exercise_info(str(params["exercise"]))
    keys = _keyframes(ex)
    phases = np.array([k[0] for k in keys])
    arrays = [_to_arrays(k[1], ex.amplitude, ex.mirrored) for k in keys]
    key_angles = np.stack([a for a, _ in arrays])
    key_root = np.stack([r for _, r in arrays])
    yaw_per_rep = key_root[-1, 2] - key_root[0, 2]
    segments = _segments(params, ex, seed)
    hold = 0.5 if params.get("add_pauses", False) else 0.0
    fps = int(params["frame_rate"])
    phase = np.zeros(num_frames)
    count = np.zeros(num_frames)
    rep_index = np.zeros(num_frames, dtype=np.int64)
    for row, k in enumerate(frame_list):
        t = k / fps
        p, done, idx = 1.0, float(len(segments) // 2), len(segments) // 2 - 1
        for kind, dur, i in segments:
            span = dur + (hold if kind == "rep" else 0.0)
            if t < span:
                if kind == "pause":
                    p, done, idx = 0.0, float(i), i
                else:
                    # a flagship hold freezes the rep at its intermediate phase for `hold` seconds
                    before = ex.intermediate * dur
                    if t < before:
                        p = t / dur
                    elif t < before + hold:
                        p = ex.intermediate
                    else:
                        p = (t - hold) / dur
                    p = min(max(p, 0.0), 1.0)
                    done, idx = i + p, i
                break
            t -= span
        phase[row], count[row], rep_index[row] = p, done, idx
    seg = np.clip(np.searchsorted(phases, phase, side="right") - 1, 0, len(phases) - 2)
    w = (phase - phases[seg]) / np.maximum(phases[seg + 1] - phases[seg], 1e-9)
    w = np.clip(w, 0.0, 1.0)
    w = w * w * (3 - 2 * w)
    angles = key_angles[seg] * (1 - w)[:, None, None] + key_angles[seg + 1] * w[:, None, None]
    root = key_root[seg] * (1 - w)[:, None] + key_root[seg + 1] * w[:, None]
    root[:, 2] += yaw_per_rep * rep_index
    angles += _jitter(params, seed, np.array(frame_list, dtype=np.float64))
    return Timeline(angles, root, count, ex.intermediate, {k: row for row, k in enumerate(frame_list)})


def _jitter(params: Mapping[str, Any], seed: int, frames: np.ndarray) -> np.ndarray:
    """Band-limited joint noise: 3 sinusoids (0.2-1.5 Hz) per joint axis, std ≈ 2° x kinematic_noise_factor."""
    gen = rng(seed, "motion/jitter")
    n = len(JOINT_NAMES)
    freq = gen.uniform(0.2, 1.5, size=(3, n, 3))
    phase = gen.uniform(0.0, 2 * math.pi, size=(3, n, 3))
    amp = 2.0 * float(params["kinematic_noise_factor"]) / math.sqrt(1.5)
    t = (frames / int(params["frame_rate"]))[:, None, None, None]
    return amp * np.sin(2 * math.pi * freq[None] * t + phase[None]).sum(axis=1)
