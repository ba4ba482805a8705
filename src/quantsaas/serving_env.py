"""Process settings the service wants before its libraries load: imported first by `cli`.

NumPy's bundled OpenBLAS starts one thread per core when NumPy is imported. The service's
NumPy work is element-wise (greeks, IV, candles), never BLAS, so those threads only cost CPU
at start-up (~50 ms of the ~0.6 s to the first /health, bench/bench_startup.py) and memory.
One BLAS thread, unless the environment asks for more. Library users (`quantsaas.client`) never
import this.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
