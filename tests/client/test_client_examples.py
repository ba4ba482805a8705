"""examples/stream_and_plot.py runs against a real server and writes its picture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from client_server import serving

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stream_and_plot.py"


def test_the_example_streams_then_plots_history(tmp_path: Path) -> None:
    out = tmp_path / "minute.png"
    with serving(tmp_path, "--rate", "200") as server:
        done = subprocess.run(
            [sys.executable, str(EXAMPLE), "--url", server.base, "--seconds", "4"]
            + ["--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "candles from history" in done.stdout and "saved" in done.stdout
    picture = out.read_bytes()
    assert picture.startswith(b"\x89PNG") and len(picture) > 20_000
