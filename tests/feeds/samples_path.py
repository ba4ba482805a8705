"""Where the captured venue frames used by the tests live."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).parent / "samples"


def lines(name: str) -> list[bytes]:
    return [line for line in (SAMPLES / name).read_bytes().splitlines() if line.strip()]
