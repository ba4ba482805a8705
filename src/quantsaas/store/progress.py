"""A dependency-free progress bar on stderr (redrawn in place on a terminal, else sparse lines)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, every_s: float = 0.2) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.every_s = every_s if self.stream.isatty() else 5.0
        self._parts: dict[object, tuple[int, int]] = {}
        self._last = 0.0
        self._started = time.monotonic()
        self._drawn: tuple[int, int] | None = None

    def update(self, part: object, done: int, total: int) -> None:
        """Progress of one part of the work (a feed, a day); the bar shows the sum."""
        self._parts[part] = (done, total)
        now = time.monotonic()
        if now - self._last >= self.every_s or done >= total:
            self._last = now
            self.draw()

    def draw(self, final: bool = False) -> None:
        done = sum(d for d, _ in self._parts.values())
        total = sum(t for _, t in self._parts.values())
        if final and not self.stream.isatty() and self._drawn == (done, total):
            return
        self._drawn = (done, total)
        share = done / total if total else 1.0
        filled = round(share * 30)
        rate = done / max(1e-9, time.monotonic() - self._started)
        line = (
            f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {share:6.1%} "
            f"{done:,}/{total:,} ({rate:,.0f}/s)"
        )
        if self.stream.isatty():
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.draw(final=True)
