"""The building blocks of the sharpness metric against references computed the plain way."""

import math

import numpy as np
import pytest
from scipy import interpolate

from opsin.iq.metrics._edge_values import EdgeResult, fwhm_from_lsf, mtf_from_lsf, mtf_nyquist
from opsin.iq.metrics._edges import cut_pieces, direction_of, directions_of, piece_angles
from opsin.iq.metrics._esf_profile import _splines, edge_lines, esf_grid


def _pieces_one_by_one(lines, span):
    out = []
    for (x0, y0), (x1, y1) in lines:
        length = math.hypot(x1 - x0, y1 - y0)
        if length < span - 1e-5:
            continue
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        for offset in range(span):
            t = float(offset)
            while t + span <= length + 1e-9:
                a = (round(x0 + ux * t), round(y0 + uy * t))
                b = (round(x0 + ux * (t + span)), round(y0 + uy * (t + span)))
                if math.hypot(b[0] - a[0], b[1] - a[1]) >= span - 1e-5:
                    out.append([a[0], a[1], b[0], b[1]])
                t += span
    return out


def test_cut_pieces_in_the_originals_order():
    lines = [((3, 4), (40, 9)), ((10, 10), (10, 31)), ((50, 2), (20, 60)), ((0, 0), (3, 3))]
    pieces = cut_pieces(lines, 5)
    assert pieces.tolist() == _pieces_one_by_one(lines, 5)
    labels = directions_of(piece_angles(pieces))
    assert list(labels) == [direction_of(float(a)) for a in piece_angles(pieces)]
    assert {"X", "Y", "other"} >= set(labels)
    assert cut_pieces([], 5).shape == (0, 4)


def test_batched_splines_equal_scipy():
    rng = np.random.default_rng(3)
    knots = np.sort(rng.uniform(-6, 6, (40, 13)), axis=1)
    values = rng.normal(size=(40, 13))
    x = esf_grid(13)
    got = _splines(knots, values, x)
    want = np.stack([interpolate.CubicSpline(k, v)(x) for k, v in zip(knots, values)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_esf_grid_and_edge_line():
    x = esf_grid(13)
    assert x[0] == pytest.approx(-6.0)
    assert x[-1] == pytest.approx(5.9)
    assert x.size == 120
    rows, cols = np.mgrid[0:11, 0:13].astype(float)
    edge_col = 5.3 + 0.1 * rows  # a tilted edge, blurred
    patch = 50 + 100 / (1 + np.exp(-(cols - edge_col) / 0.6))
    (line,) = edge_lines(patch[None])
    # the plain way: a cubic per inner row, its inflection, a straight line against the inner-row index
    inflections = []
    for row in patch[3:-3]:
        a, b, _c, _d = np.polyfit(np.arange(13), row, 3)
        inflections.append(-b / (3 * a))
    slope, intercept = np.polyfit(np.arange(len(inflections)), inflections, 1)
    assert (line.slope, line.intercept) == pytest.approx((slope, intercept), rel=1e-9)
    assert 0 < line.slope < 0.2
    assert 5 < line.intercept < 7


def test_fwhm_and_mtf_of_a_gaussian_lsf():
    sigma = 1.0
    t = np.arange(-8, 8, 0.1)
    lsf = np.exp(-(t**2) / (2 * sigma**2))
    assert fwhm_from_lsf(lsf) == pytest.approx(2 * math.sqrt(2 * math.log(2)) * sigma, rel=1e-3)
    nyq, half = mtf_nyquist(mtf_from_lsf(lsf))
    assert half == pytest.approx(math.exp(-2 * math.pi**2 * sigma**2 * 0.25**2), abs=0.01)
    assert nyq == pytest.approx(math.exp(-2 * math.pi**2 * sigma**2 * 0.5**2), abs=0.01)
    assert mtf_from_lsf(np.zeros(3)) is None


def test_edge_result_values_by_report_name():
    r = EdgeResult(rer=0.5, fwhm=2.0, mtf_nyq=0.1, mtf_half_nyq=0.4)
    assert [r.value(m) for m in ("RER", "FWHM", "MTF_NYQ", "MTF_halfNYQ")] == [0.5, 2.0, 0.1, 0.4]
