"""Choosing the edge patches of one channel: pieces by direction, shuffled, contrast-gated and spaced apart.

Per direction the pieces are shuffled (seeded), those near the border dropped, and the contrast gates evaluated for
all of them at once (they do not depend on the spacing). Then, in shuffled order, a piece that passed is taken
unless its patch overlaps the surroundings of a piece already taken in that direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from opsin.iq.metrics._edges import (
    DIRECTIONS,
    Piece,
    bounding_boxes,
    contrast_batch,
    cut_pieces,
    detect_lines,
    directions_of,
    in_bounds,
    other_patches,
    patch_windows,
    piece_angles,
)

__all__ = ["ContrastGates", "EdgePatch", "find_lines", "select_patches"]

Line = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class ContrastGates:
    """Contrast thresholds: bright/dark mean ratio ``alpha``, plateau noise ``beta``, q10/q90 ratio ``gamma``."""

    alpha: float = 1.2
    beta: float = 0.3
    gamma: float = 1.2


@dataclass(frozen=True)
class EdgePatch:
    """A chosen edge: its direction (``X``, ``Y``, ``other``), the piece, and the oriented patch."""

    direction: str
    piece: Piece
    patch: np.ndarray


def find_lines(
    x: np.ndarray, edge_length: int, seed: int, window_size: int | None = None, stride: int | None = None
) -> list[Line]:
    """Straight lines of one channel, over the whole image or window by window (windows >= 80 % NaN skipped)."""
    if not window_size:
        return detect_lines(x, edge_length, seed)
    size, step = int(window_size), int(stride or window_size)
    lines = []
    for r0 in range(0, max(1, x.shape[0] - size + 1), step):
        for c0 in range(0, max(1, x.shape[1] - size + 1), step):
            window = x[r0 : r0 + size, c0 : c0 + size]
            if np.isnan(window).mean() >= 0.8:
                continue
            for (a0, b0), (a1, b1) in detect_lines(window, edge_length, seed):
                lines.append(((a0 + c0, b0 + r0), (a1 + c0, b1 + r0)))
    return lines


def _candidate_patches(
    x: np.ndarray, pieces: np.ndarray, direction: str, edge_length: int, ps: int, gates: ContrastGates
) -> tuple[list[np.ndarray | None], np.ndarray]:
    """The oriented patches of the pieces of one direction and whether each passes the contrast gates."""
    passed = np.zeros(len(pieces), dtype=bool)
    if direction in ("X", "Y"):
        r1, _r2, c1, _c2 = bounding_boxes(pieces)
        rows, cols = patch_windows(np.stack([r1, c1], axis=1), direction, edge_length, ps)
        stack = x[rows, cols]
        if direction == "Y":
            stack = np.rot90(stack, axes=(1, 2))
        passed[:] = contrast_batch(stack, ps, gates.alpha, gates.beta, gates.gamma)
        return list(stack), passed
    valid, patches = other_patches(x, pieces, ps)
    valid_idx = [int(k) for k in np.nonzero(valid)[0]]
    heights = {k: patches[k].shape[0] for k in valid_idx}  # type: ignore[union-attr]
    for height in sorted(set(heights.values())):
        group = [k for k in valid_idx if heights[k] == height]
        stack = np.stack([patches[k] for k in group])  # type: ignore[misc]
        passed[group] = contrast_batch(stack, ps, gates.alpha, gates.beta, gates.gamma)
    return patches, passed


def _overlaps(taken: np.ndarray, box: tuple[int, int, int, int], direction: str, edge_length: int, ps: int) -> bool:
    r1, r2, c1, c2 = box
    if direction == "X":
        return bool(taken[r1 - 3 : r1 + edge_length + 3, c1 - ps : c1 + ps + 1].any())
    if direction == "Y":
        return bool(taken[r1 - ps : r1 + ps + 1, c1 - 3 : c1 + edge_length + 4].any())
    margin = 2 * ps
    return bool(taken[r1 - margin : r2 + margin + 1, c1 - margin : c2 + margin + 1].any())


def select_patches(
    x: np.ndarray,
    lines: list[Line],
    *,
    edge_length: int,
    pixels_sampled: int,
    edge_distance: int,
    gates: ContrastGates,
    seed: int,
) -> list[EdgePatch]:
    """The patches to measure in one channel (NaN = no data), in measuring order.

    Args:
        x: the channel as float, NaN where there is no data.
        lines: its straight lines (:func:`find_lines`).
        edge_length: piece length ``L``.
        pixels_sampled: half width ``ps`` of a patch.
        edge_distance: a taken piece reserves ``edge_distance // 2`` pixels around it.
        gates: the contrast thresholds.
        seed: seed of the shuffle.
    """
    spacing = edge_distance // 2
    pieces = cut_pieces(lines, edge_length)
    labels = directions_of(piece_angles(pieces))
    chosen: list[EdgePatch] = []
    shuffle = np.random.default_rng(seed)
    for direction in DIRECTIONS:
        mine = pieces[labels == direction]
        if len(mine) == 0:
            continue
        mine = mine[shuffle.permutation(len(mine))]
        mine = mine[in_bounds(mine, x.shape, pixels_sampled)]
        if len(mine) == 0:
            continue
        patches, passed = _candidate_patches(x, mine, direction, edge_length, pixels_sampled, gates)
        boxes = np.stack(bounding_boxes(mine), axis=1)
        taken = np.zeros(x.shape, dtype=bool)
        for k in np.nonzero(passed)[0]:
            r1, r2, c1, c2 = (int(v) for v in boxes[k])
            if _overlaps(taken, (r1, r2, c1, c2), direction, edge_length, pixels_sampled):
                continue
            taken[max(0, r1 - spacing) : r2 + spacing, max(0, c1 - spacing) : c2 + spacing] = True
            piece = Piece(*(int(v) for v in mine[k]))
            chosen.append(EdgePatch(direction, piece, np.array(patches[k], dtype=np.float64)))
    return chosen
