"""Benchmarks for Podrun's hot paths, run with `python -m bench` from `backend/`.

Each benchmark measures its own baseline in the same run, since absolute timings on a shared
machine mean little; only the ratio to the baseline is worth comparing between runs.
"""

import os

# Before podrun.settings is imported anywhere: the benchmarks get their own Redis db and key prefix.
os.environ["PODRUN_REDIS_URL"] = "redis://127.0.0.1:6379/14"
os.environ["PODRUN_REDIS_PREFIX"] = "podrun-bench"
