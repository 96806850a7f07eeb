"""The portal's settings with the benchmark's URLs (benchmarks/counter_serving.py only)."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.counter_bench_urls"
