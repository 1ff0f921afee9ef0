"""Analytic checks of the ray casting, camera and outline helpers behind the VisionFit labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("cv2", reason="the generators need the [server] extra")

from opsin.synth.server.generators._labels import mask_polygons
from opsin.synth.server.generators._png import encode_mask_png, encode_rgb_png
from opsin.synth.server.generators._raster import (
    Camera,
    PlanarRays,
    intersect_boxes,
    intersect_capsule,
    intersect_ellipsoid,
    pixel_rays,
)
from opsin.synth.server.generators._skeleton import euler_matrix, matrix_to_quaternion


@pytest.fixture
def camera() -> Camera:
    # at (0, -5, 1) looking along +Y, horizontal
    return Camera.look(np.array([0.0, -5.0, 1.0]), yaw=0.0, pitch=90.0, width=64, height=48)


def test_camera_conventions(camera: Camera) -> None:
    assert camera.K[0, 0] == pytest.approx(64 * 50 / 36)
    np.testing.assert_allclose(camera.R[2], [0, 1, 0], atol=1e-12)  # forward = +Y
    np.testing.assert_allclose(camera.R[0], [1, 0, 0], atol=1e-12)  # right = +X
    np.testing.assert_allclose(camera.R[1], [0, 0, -1], atol=1e-12)  # down = -Z
    uv, z = camera.project(np.array([[0.0, 0.0, 1.0], [0.5, 0.0, 1.0]]))
    np.testing.assert_allclose(uv[0], [32, 24])
    assert z[0] == pytest.approx(5.0)
    assert uv[1, 0] == pytest.approx(32 + camera.K[0, 0] * 0.5 / 5.0)
    # camera yaw 90 looks along -X (yaw 0 = +Y, counter-clockwise)
    turned = Camera.look(np.zeros(3), yaw=90.0, pitch=90.0, width=8, height=8)
    np.testing.assert_allclose(turned.R[2], [-1, 0, 0], atol=1e-12)


def test_rays_hit_a_sphere_at_its_analytic_depth(camera: Camera) -> None:
    rays = PlanarRays.from_rays(pixel_rays(camera))
    centre, r = np.array([0.0, 0.0, 1.0]), 0.5
    # a zero-length capsule is a sphere
    t = intersect_capsule(camera.position, rays, centre, centre + 1e-9, r)
    cy, cx = 24, 32
    assert t[cy, cx] == pytest.approx(5.0 - r, abs=5e-3)  # the ray through (32.5, 24.5) is nearly central
    hit = np.isfinite(t)
    radius_px = camera.K[0, 0] * r / math.sqrt(5.0**2 - r**2)
    area = hit.sum()
    assert area == pytest.approx(math.pi * radius_px**2, rel=0.08)
    # the same sphere as an ellipsoid gives the same depths
    te = intersect_ellipsoid(camera.position, rays, centre, np.eye(3), np.array([r, r, r]))
    np.testing.assert_allclose(np.where(hit, te, 0), np.where(hit, t, 0), atol=1e-6)
    assert np.array_equal(np.isfinite(te), hit)


def test_capsule_side_depth_and_boxes(camera: Camera) -> None:
    rays = PlanarRays.from_rays(pixel_rays(camera))
    a, b = np.array([-1.0, 0.0, 1.0]), np.array([1.0, 0.0, 1.0])
    t = intersect_capsule(camera.position, rays, a, b, 0.2)
    # a horizontal bar across the view: the centre row hits it at depth 5 - 0.2 (to first order)
    assert np.isfinite(t[24]).sum() > 40
    assert t[24, 32] == pytest.approx(4.8, abs=2e-3)
    lo, hi = np.array([[-0.5, 1.0, 0.0]]), np.array([[0.5, 2.0, 2.0]])
    tb, idx = intersect_boxes(camera.position, pixel_rays(camera), lo, hi)
    assert tb[24, 32] == pytest.approx(6.0)
    assert idx[24, 32] == 0
    assert not np.isfinite(tb[24, 0])
    assert idx[24, 0] == -1


def test_quaternions_round_trip() -> None:
    rng = np.random.default_rng(0)
    mats = euler_matrix(rng.uniform(-180, 180, size=(200, 3)))
    q = matrix_to_quaternion(mats)
    w, x, y, z = q.T
    back = np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )
    np.testing.assert_allclose(back, mats, atol=1e-12)
    assert np.all(q[:, 0] >= 0)


def test_mask_outline_sits_on_pixel_edges() -> None:
    mask = np.zeros((20, 30), bool)
    mask[3:9, 5:17] = True  # rows 3..8, columns 5..16
    mask[12, 25] = True  # a single pixel: its own polygon
    polygons, bbox = mask_polygons(mask)
    assert len(polygons) == 1, "components are joined into one polygon"
    assert bbox == pytest.approx([5.01, 3.01, 25.99 - 5.01, 12.99 - 3.01])
    poly = np.reshape(polygons[0], (-1, 2))
    assert poly[:, 0].min() == pytest.approx(5.01)
    assert poly[:, 0].max() == pytest.approx(25.99)
    assert poly[:, 1].max() == pytest.approx(12.99)
    # the bridge encloses no area: shoelace area = rectangle (12 x 6 px, inset) + single pixel (0.98 x 0.98)
    x, y = poly[:, 0], poly[:, 1]
    area = abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2
    assert area == pytest.approx(11.98 * 5.98 + 0.98 * 0.98, abs=1e-6)
    assert mask_polygons(np.zeros((4, 4), bool)) == ([], [0.0, 0.0, 0.0, 0.0])


def test_png_encoder_round_trips() -> None:
    import cv2

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    decoded = cv2.imdecode(np.frombuffer(encode_rgb_png(rgb), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded[..., ::-1], rgb)
    mask = rng.random((9, 11)) > 0.5
    decoded = cv2.imdecode(np.frombuffer(encode_mask_png(mask), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (9, 11, 3)
    np.testing.assert_array_equal(decoded[..., 0] == 255, mask)
    np.testing.assert_array_equal(decoded.max(axis=2) == decoded.min(axis=2), np.ones((9, 11), bool))
