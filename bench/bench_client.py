"""Client decode throughput: /ws messages into typed events vs plain `json.loads` into dicts.

    .venv/bin/python bench/bench_client.py [--quick] [--seconds S] [--repeats R]

Workload (pre-generated, not timed): the simulator's BTC/USD and ETH/USD (seed 5, 1,000 events
per simulated second each) run for `--seconds` of simulated time; every event is encoded by the
server's own `event_message` exactly as /ws sends it (a `snapshot` per book first, then the
`trade`, `delta` and `ticker` messages with per-stream `seq`), as JSON text. About 70 % of the
messages are book deltas of one level, 30 % trades, a few tickers.

Variants, each over the whole list of texts, interleaved, best and median of `--repeats` runs:
* json.loads: the baseline of the issue, the standard library parsing each text into dicts;
* orjson.loads: the fastest parse into dicts (the client's parser), for reference;
* client.decode: `orjson.loads` + `Decoder.decode`: each text into the model's typed value
  (`Trade`, `BookDelta`, `Ticker`: prices and sizes exact integers, never floats);
* client.stream: what the client's connection does per message: parse, decode, check the
  stream's `seq`, apply deltas to the stream's local book, queue the item for the iterator.

Figures are messages per second of this process's CPU time (`time.process_time`, so time the
shared machine gives to other processes does not count); the ratio is over json.loads in the
same run (target >= 1x: typing costs nothing). Per message type (trade, delta, ticker) the same
figures follow. Correctness: every decoded event equals the event that was encoded (untimed).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from quantsaas.client._streams import QueueWatcher, Streams
from quantsaas.client.decode import Decoder
from quantsaas.feeds.sim_book import MarketSimulator
from quantsaas.feeds.sim_instruments import SimConfig, sim_spec
from quantsaas.model import BookDelta, BookSnapshot, Ticker, Trade
from quantsaas.wire import event_message

CHANNELS: dict[type, str] = {
    Trade: "trades",
    BookSnapshot: "book",
    BookDelta: "book",
    Ticker: "ticker",
}


def workload(seconds: float) -> tuple[list[str], list[Any], Decoder]:
    """The texts /ws would send for the simulator's events, and those events."""
    sims = [
        MarketSimulator(sim_spec(symbol), SimConfig(seed=5, events_per_second=1000.0))
        for symbol in ("BTC/USD", "ETH/USD")
    ]
    events: list[Any] = [sim.snapshot() for sim in sims]
    step = 50_000_000
    for until in range(step, int(seconds * 1e9) + 1, step):
        for sim in sims:
            events.extend(sim.run_until(until))
    seqs: dict[tuple[str, str, str], int] = {}
    texts = []
    for event in events:
        topic = (CHANNELS[type(event)], *event.instrument.key)
        seqs[topic] = seqs.get(topic, 0) + 1
        texts.append(orjson.dumps(event_message(topic[0], seqs[topic], event)).decode())
    return texts, events, Decoder([sim.snapshot().instrument for sim in sims])


def run_json(texts: list[str], _: Decoder) -> None:
    loads = json.loads
    for text in texts:
        loads(text)


def run_orjson(texts: list[str], _: Decoder) -> None:
    loads = orjson.loads
    for text in texts:
        loads(text)


def run_decode(texts: list[str], decoder: Decoder) -> None:
    loads, decode = orjson.loads, decoder.decode
    for text in texts:
        decode(loads(text))


def run_stream(texts: list[str], decoder: Decoder) -> None:
    streams = Streams(decoder)
    watcher = QueueWatcher(len(texts) + 1)
    for channel in ("trades", "book", "ticker"):
        for venue, symbol in decoder.instruments:
            streams.stream((channel, venue, symbol)).watchers.append(watcher)
    loads, on_data = orjson.loads, streams.on_data
    for text in texts:
        on_data(loads(text))
    assert streams.stats.gaps == 0 and len(watcher.items) == len(texts)


VARIANTS: dict[str, Callable[[list[str], Decoder], None]] = {
    "json.loads": run_json,
    "orjson.loads": run_orjson,
    "client.decode": run_decode,
    "client.stream": run_stream,
}


def measure(texts: list[str], decoder: Decoder, repeats: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(repeats):
        for name, run in VARIANTS.items():
            gc.collect()
            started = time.process_time()
            run(texts, decoder)
            rates[name].append(len(texts) / (time.process_time() - started))
    return rates


def report(title: str, rates: dict[str, list[float]]) -> None:
    base = max(rates["json.loads"])
    print(f"\n{title}")
    print(f"  {'variant':<15} {'best msg/s':>12} {'median msg/s':>13} {'x json.loads':>13}")
    for name, values in rates.items():
        best = max(values)
        print(
            f"  {name:<15} {best:>12,.0f} {statistics.median(values):>13,.0f} {best / base:>12.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workload, 2 repeats")
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated seconds")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    seconds, repeats = (5.0, 2) if args.quick else (args.seconds, args.repeats)

    texts, events, decoder = workload(seconds)
    for text, event in zip(texts, events, strict=True):  # untimed: exact round trip
        assert decoder.decode(orjson.loads(text)) == event
    kinds: dict[str, list[str]] = {}
    for text, event in zip(texts, events, strict=True):
        kinds.setdefault(type(event).__name__, []).append(text)
    mix = ", ".join(f"{len(v):,} {k}" for k, v in sorted(kinds.items()))
    size = sum(map(len, texts)) / len(texts)
    print(f"{len(texts):,} messages ({mix}), {size:.0f} bytes each on average")

    report("all messages", measure(texts, decoder, repeats))
    for kind in ("Trade", "BookDelta", "Ticker"):
        chosen = kinds.get(kind, [])
        if len(chosen) >= 100:
            only = {n: VARIANTS[n] for n in ("json.loads", "orjson.loads", "client.decode")}
            rates: dict[str, list[float]] = {name: [] for name in only}
            for _ in range(repeats):
                for name, run in only.items():
                    gc.collect()
                    started = time.process_time()
                    run(chosen, decoder)
                    rates[name].append(len(chosen) / (time.process_time() - started))
            report(f"{kind} messages only", rates)


if __name__ == "__main__":
    main()
