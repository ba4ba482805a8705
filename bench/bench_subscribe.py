"""A subscribe storm: the initial state every new subscriber gets, N clients x the four books.

The simulator's four books (BTC/USD, ETH/USD, SOL/USD, ADA/USD, a few seconds of order flow, so
they are as deep as `serve` keeps them) in a `LocalReadModel` built by the composition root.
Then `--clients` subscribers ask each book's initial state (`read_model.initial`, what
`/ws` queues on subscribe), two ways over the same books, interleaved, CPU time:

* `cached` (the service): the state's encoding is made once and reused while the state is
  equal and the topic's seq has not moved; each subscriber gets its own `age_ms`/`stale`;
* `fresh` (the baseline, the service before): `event_message` + `encode` per subscriber, the
  same text.

Prints initial states/s of each and cached/fresh (median of the rounds). `--quick`: a smoke.
"""

from __future__ import annotations

import argparse
import statistics
import time

from quantsaas import runtime
from quantsaas.channels import BOOK
from quantsaas.config import Settings
from quantsaas.feeds.simulator import SimConfig, SimulatorFeed, select_instruments
from quantsaas.model import now_ns
from quantsaas.wire import encode, event_message

CLOCK = time.process_time


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--clients", type=int, default=500)
    cli.add_argument("--rounds", type=int, default=5)
    cli.add_argument("--quick", action="store_true")
    args = cli.parse_args()
    clients, rounds = (20, 1) if args.quick else (args.clients, args.rounds)
    feed = SimulatorFeed(select_instruments(None), SimConfig(events_per_second=2000))
    built = runtime.build(Settings(web_dist=None), "all", feeds=[feed], record=False)
    assert built.engine is not None
    sims = [feed.simulator(instrument) for instrument in feed.instruments]
    for sim in sims:
        built.engine.on_event(sim.snapshot())
        for event in sim.run_until(5 * 10**9):
            built.engine.on_event(event)
    topics = [(BOOK, *instrument.key) for instrument in feed.instruments]
    books = {t: built.engine.books[t[1:]] for t in topics}
    levels = sum(len(b.bids()) + len(b.asks()) for b in books.values())
    print(f"{len(topics)} books, {levels} levels in all; {clients} subscribers each")
    read_model, bus = built.read_model, built.bus

    def cached() -> float:
        began = CLOCK()
        for _ in range(clients):
            for topic in topics:
                read_model.initial(topic)
        return clients * len(topics) / (CLOCK() - began)

    def fresh() -> float:
        began = CLOCK()
        for _ in range(clients):
            for topic in topics:
                state = books[topic].to_snapshot()
                message = event_message(BOOK, bus.last_seq(topic), state)
                age_ns = max(0, now_ns() - state.ts_recv)
                message["age_ms"] = age_ns // 1_000_000
                message["stale"] = age_ns > 10e9
                encode(message)
        return clients * len(topics) / (CLOCK() - began)

    results = [(cached(), fresh()) for _ in range(rounds)]
    ours = statistics.median(r[0] for r in results)
    base = statistics.median(r[1] for r in results)
    ratio = statistics.median(r[0] / r[1] for r in results)
    print(f"cached (the service): {ours:12,.0f} initial states/s")
    print(f"fresh (per client):   {base:12,.0f} initial states/s")
    storm = clients * len(topics)
    print(f"cached / fresh: {ratio:.1f}x; {clients} clients x {len(topics)} books:")
    print(f"  {storm / ours * 1e3:.1f} ms vs {storm / base * 1e3:.1f} ms of CPU")


if __name__ == "__main__":
    main()
