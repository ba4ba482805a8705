"""Market-data sources: the Feed interface, the simulator and venue connectors."""
