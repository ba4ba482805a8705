import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantsaas.analytics.vpin import VpinBucket, VpinConfig, VpinStream, vpin_batch

# analytics.md §2.5
ROWS = [
    (100.0, 4),
    (100.5, 3),
    (101.0, 6),
    (100.5, 5),
    (100.0, 2),
    (99.0, 8),
    (99.5, 4),
    (100.5, 7),
    (101.5, 3),
    (101.0, 5),
    (100.0, 6),
    (100.5, 2),
]
PRICES = [p for p, _ in ROWS]
VOLUMES = [v for _, v in ROWS]


def stream_all(config: VpinConfig, sides: list[bool] | None = None) -> list[VpinBucket]:
    stream = VpinStream(config)
    out = []
    for i, (price, volume) in enumerate(ROWS):
        out += stream.on_trade(price, volume, None if sides is None else sides[i], ts_ns=i)
    return out


def test_vector_a_normal_sigma_one() -> None:
    config = VpinConfig(10, window=3, classifier="bvc", sigma=1.0, reference_price=100.0)
    buckets = vpin_batch(config, PRICES, VOLUMES, ts_ns=np.arange(12))
    assert [b.buy for b in buckets] == pytest.approx(
        [6.1487747676, 4.2341501549, 2.6521669540, 8.1136828911, 3.7013429476], abs=1e-10
    )
    assert [b.vpin for b in buckets][2:] == pytest.approx(
        [0.2841638439, 0.4151577188, 0.4506781993], abs=1e-10
    )
    assert buckets[0].vpin is None and buckets[1].vpin is None
    assert buckets[0].buy == pytest.approx(4 * 0.5 + 6 * 0.5 * (1 + math.erf(0.5 / math.sqrt(2))))
    assert [b.ts_ns for b in buckets] == [2, 4, 6, 8, 10]  # cumulative 13, 20, 32, 42, 53
    assert stream_all(config) == buckets


def test_vector_b_population_sigma() -> None:
    sigma = float(np.std(np.diff(PRICES, prepend=100.0)))
    assert sigma == pytest.approx(0.6909634980, abs=1e-10)
    config = VpinConfig(10, window=3, classifier="bvc", sigma=sigma, reference_price=100.0)
    got = [b.vpin for b in vpin_batch(config, PRICES, VOLUMES)][2:]
    assert got == pytest.approx([0.3687679222, 0.5252536930, 0.5713496832], abs=1e-10)


def test_vector_c_student_t() -> None:
    config = VpinConfig(10, 3, "bvc", sigma=1.0, df=0.25, reference_price=100.0)
    buckets = vpin_batch(config, PRICES, VOLUMES)
    assert [b.buy for b in buckets] == pytest.approx(
        [5.5514000639, 4.6323999574, 4.0290149896, 6.3385850530, 4.3961518177], abs=1e-10
    )
    assert [b.vpin for b in buckets][2:] == pytest.approx(
        [0.1259990078, 0.1784780071, 0.1942278830], abs=1e-10
    )


def test_aggressor_classification_splits_volume_exactly() -> None:
    sides = [True, False] * 6
    config = VpinConfig(10, window=2)
    buckets = vpin_batch(config, PRICES, VOLUMES, is_buy=sides, ts_ns=np.arange(12))
    # bucket 1: buy 4, sell 3, buy 3 of 6; bucket 2: buy 3, sell 5, buy 2
    assert [(b.buy, b.sell) for b in buckets[:2]] == [(7.0, 3.0), (5.0, 5.0)]
    assert buckets[1].vpin == (4 + 0) / 20
    assert stream_all(config, sides) == buckets


def test_tick_rule() -> None:
    config = VpinConfig(10, window=1, classifier="tick")
    buckets = vpin_batch(config, [1.0, 2.0, 2.0, 1.0, 1.0], [5, 5, 5, 3, 2])
    # 0.5 at the start, 1 on the uptick and on the unchanged price after it, 0 after the downtick
    assert [b.buy for b in buckets] == [7.5, 5.0]


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="bucket_volume must be an integer"):
        VpinConfig(10.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive finite sigma"):
        VpinConfig(10, classifier="bvc")
    with pytest.raises(ValueError, match="classifier"):
        VpinConfig(10, classifier="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs the trade side"):
        VpinStream(VpinConfig(10)).on_trade(1.0, 5)
    with pytest.raises(ValueError, match="non-negative integers"):
        vpin_batch(VpinConfig(10, classifier="tick"), [1.0], [1.5])
    with pytest.raises(ValueError, match="finite"):
        vpin_batch(VpinConfig(10, classifier="tick"), [math.nan], [1])
    with pytest.raises(ValueError, match="non-negative integer"):
        VpinStream(VpinConfig(10, classifier="tick")).on_trade(1.0, -1)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(90, 110), st.integers(0, 40), st.booleans()), max_size=80),
    st.integers(1, 30),
    st.sampled_from(["aggressor", "bvc", "tick"]),
)
def test_stream_and_batch_are_identical(
    trades: list[tuple[int, int, bool]], size: int, classifier: str
) -> None:
    config = VpinConfig(size, window=3, classifier=classifier, sigma=2.0)  # type: ignore[arg-type]
    stream = VpinStream(config)
    got = []
    for i, (price, volume, buy) in enumerate(trades):
        got += stream.on_trade(float(price), volume, buy, ts_ns=i)
    prices = np.array([t[0] for t in trades], dtype=np.float64)
    volumes = np.array([t[1] for t in trades], dtype=np.int64)
    sides = np.array([t[2] for t in trades], dtype=bool)
    assert got == vpin_batch(config, prices, volumes, sides, np.arange(len(trades)))
    assert len(got) == sum(v for _, v, _ in trades) // size
