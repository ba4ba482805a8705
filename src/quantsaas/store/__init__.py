"""History: the recorder (raw frames + normalised Parquet), DuckDB queries and replay."""
