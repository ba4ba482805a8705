"""Deribit book continuity for one instrument: every change's `prev_change_id` must equal the
previous message's `change_id` (ids are not contiguous). A mismatch drops the book: the feed
resubscribes (here: reconnects) and the next snapshot starts it again."""

from __future__ import annotations

from quantsaas.errors import SequenceGap
from quantsaas.feeds.deribit.parse import BookChange
from quantsaas.model import BookDelta, BookSnapshot


class ChangeSync:
    __slots__ = ("name", "last_change_id", "gaps")

    def __init__(self, name: str) -> None:
        self.name = name
        self.last_change_id: int | None = None
        self.gaps = 0

    def reset(self) -> None:
        self.last_change_id = None

    def on_change(self, change: BookChange) -> BookSnapshot | BookDelta | None:
        """The event to publish; None for a change before any snapshot. SequenceGap on a break."""
        if isinstance(change.event, BookSnapshot):
            self.last_change_id = change.change_id
            return change.event
        if self.last_change_id is None:
            return None
        if change.prev_change_id != self.last_change_id:
            expected, self.last_change_id = self.last_change_id, None
            self.gaps += 1
            raise SequenceGap(
                f"deribit {self.name}: prev_change_id {change.prev_change_id} != last "
                f"change_id {expected}"
            )
        self.last_change_id = change.change_id
        return change.event
