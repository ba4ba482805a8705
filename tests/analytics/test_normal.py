import math

import numpy as np
import pytest
from scipy.special import ndtr as scipy_ndtr

from quantsaas.analytics.normal import ndtr

# Phi(x) to 200 bits (mpmath.ncdf), rounded to the nearest double
REFERENCE = [
    (-38.0, 2.88542835e-316),
    (-37.5, 4.605353009581955e-308),
    (-30.0, 4.906713927148187e-198),
    (-20.0, 2.7536241186062337e-89),
    (-12.3, 4.5287069561587846e-35),
    (-10.0, 7.619853024160525e-24),
    (-7.5, 3.1908916729108963e-14),
    (-5.0, 2.866515718791939e-07),
    (-3.0, 0.0013498980316300946),
    (-1.5, 0.06680720126885807),
    (-0.6744897, 0.2500000159511391),
    (-0.3, 0.3820885778110474),
    (1e-09, 0.5000000003989423),
    (0.25, 0.5987063256829237),
    (0.7, 0.758036347776927),
    (1.96, 0.9750021048517795),
    (4.0, 0.9999683287581669),
    (6.0, 0.9999999990134123),
    (8.0, 0.9999999999999993),
    (8.3, 1.0),
]


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(got - want) / np.spacing(want))


def test_within_two_ulp_of_high_precision_values_in_both_tails() -> None:
    x = np.array([x for x, _ in REFERENCE])
    want = np.array([p for _, p in REFERENCE])
    normal = want > 1e-300  # below that the spacing is subnormal: compare absolutely
    assert ulps(ndtr(x), want)[normal].max() <= 2
    assert np.abs(ndtr(x) - want)[~normal].max() <= 1e-320
    for value, p in REFERENCE:
        if p > 1e-300:
            assert abs(float(ndtr(value)) - p) <= 2 * math.ulp(p)


def test_agrees_with_scipy_everywhere() -> None:
    # SciPy's own error reaches ~2e-13 relative in the far lower tail (see normal.py)
    rng = np.random.default_rng(11)
    x = np.concatenate(
        [rng.normal(0, 2, 20_000), rng.uniform(-37, 9, 20_000), np.linspace(-1, 1, 2_001)]
    )
    want = scipy_ndtr(x)
    got = ndtr(x)
    assert np.max(np.abs(got - want) / want) < 3e-13
    central = np.abs(x) < 3
    assert np.max(np.abs(got - want)[central]) <= 2 * np.spacing(1.0)


def test_scalar_and_array_paths_agree_bit_for_bit() -> None:
    # VpinStream (one float at a time) and vpin_batch (arrays) must give identical results
    rng = np.random.default_rng(3)
    edges = [0.67448975, 5.656854249492381, 37.0, 40.0]
    x = np.concatenate(
        [
            rng.normal(0, 3, 5_000),
            rng.uniform(-45, 45, 5_000),
            [e * s + d for e in edges for s in (-1, 1) for d in (-1e-12, 0.0, 1e-12)],
        ]
    )
    batch = ndtr(x)
    one_by_one = np.array([ndtr(float(v)) for v in x])
    assert np.array_equal(batch, one_by_one)
    assert all(type(ndtr(float(v))) is np.float64 for v in x[:10])


def test_special_values_shapes_and_no_floating_point_warnings() -> None:
    specials = [0.0, -0.0, math.inf, -math.inf, 1e308, -1e308, 1e-300, -1e-300, 40.5, -40.5]
    with np.errstate(all="raise"):
        got = ndtr(np.array(specials))
        one_by_one = [float(ndtr(v)) for v in specials]
        assert np.isnan(ndtr(math.nan)) and np.isnan(ndtr(np.array([math.nan, 0.0]))[0])
    assert got.tolist() == [0.5, 0.5, 1.0, 0.0, 1.0, 0.0, 0.5, 0.5, 1.0, 0.0]
    assert one_by_one == got.tolist()
    assert ndtr(np.empty(0)).shape == (0,)
    grid = np.linspace(-3, 3, 12).reshape(3, 4)
    assert ndtr(grid).shape == (3, 4)
    assert np.array_equal(ndtr(grid).ravel(), ndtr(grid.ravel()))
    assert ndtr([0, 1]).tolist() == [0.5, float(ndtr(1.0))]  # ints and lists are accepted


def test_monotone_and_symmetric() -> None:
    x = np.linspace(-39, 9, 200_001)
    p = ndtr(x)
    assert np.all(np.diff(p) >= 0)
    mid = np.linspace(-8, 8, 10_001)
    assert np.max(np.abs(ndtr(mid) + ndtr(-mid) - 1.0)) <= 2 * np.spacing(1.0)


@pytest.mark.parametrize("x", [-6.5, -2.5, -0.1, 0.9])
def test_derivative_is_the_density(x: float) -> None:
    h = 1e-6
    slope = (float(ndtr(x + h)) - float(ndtr(x - h))) / (2 * h)
    assert slope == pytest.approx(math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi), rel=1e-8)
