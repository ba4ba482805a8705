from quantsaas.api.public_market import DelayedMarket

S = 10**9


def test_answers_the_newest_sample_at_least_the_delay_old() -> None:
    state = {"n": 0}
    market = DelayedMarket(lambda: {("sim", "BTC/USD"): {"n": state["n"]}}, delay_s=10)
    assert market.delayed(at_ns=100 * S) == {}  # nothing is old enough yet
    for second in range(100, 131):
        state["n"] = second
        market.sample(at_ns=second * S)
    assert market.delayed(at_ns=130 * S)[("sim", "BTC/USD")] == {"n": 120}
    assert market.delayed(at_ns=int(130.5 * S))[("sim", "BTC/USD")] == {"n": 120}


def test_keeps_only_what_the_delay_needs() -> None:
    clock = {"second": 0}
    market = DelayedMarket(lambda: {("sim", "BTC/USD"): dict(clock)}, delay_s=5)
    for second in range(1000):
        clock["second"] = second
        market.sample(at_ns=second * S)
    assert len(market._samples) <= 8
    assert market.delayed(at_ns=999 * S)[("sim", "BTC/USD")] == {"second": 994}
