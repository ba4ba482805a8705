"""The raw rate-limit headers the middleware appends are exactly limit_headers(), encoded."""

from hypothesis import given
from hypothesis import strategies as st

from quantsaas.api.auth import raw_headers
from quantsaas.api.ratelimit import Decision, Quota, limit_headers


@given(
    name=st.sampled_from(["free", "pro", "tiny.x-1"]),
    limit=st.integers(1, 10**6),
    window=st.floats(0.5, 86_400),
    remaining=st.integers(-5, 10**6),
    reset=st.floats(0, 86_400),
)
def test_raw_headers_equal_limit_headers(
    name: str, limit: int, window: float, remaining: int, reset: float
) -> None:
    quota = Quota(name, limit, window)
    decision = Decision(True, limit, min(remaining, limit), reset, 0.0, quota)
    expected = sorted((k.lower().encode(), v.encode()) for k, v in limit_headers(decision).items())
    assert sorted(raw_headers(decision)) == expected
    assert sorted(raw_headers(decision)) == expected  # the cached part, second time round
