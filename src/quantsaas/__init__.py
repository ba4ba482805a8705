"""Quant-SaaS: real-time crypto market data and analytics."""

__version__ = "0.1.0"
