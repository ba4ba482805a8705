"""Order books: the exact per-venue L2 book (consolidated views come later)."""

from quantsaas.book.l2 import L2Book

__all__ = ["L2Book"]
