"""The cyclic garbage collector's settings for a long-lived server process.

CPython's defaults (a young collection every 700 net allocations) suit scripts. A service
allocates tens of thousands of short-lived objects a second (protobuf messages, SQLAlchemy rows,
spans), nearly none of which form cycles: reference counting frees them, and the collector only
walks them. Measured on ``make bench BENCH=run_pipeline``: the agent and run services spend about
12 % less CPU per evaluation with a young generation of 50,000 objects. ``freeze`` then moves what
startup built (modules, compiled statements, handlers) out of every later collection.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 50_000
# Older generations are collected after this many collections of the one below (CPython: 10, 10).
OLDER_GENERATION_THRESHOLD = 20


def tune_collector() -> None:
    """Collect the young generation every 50,000 allocations instead of every 700; call at start."""
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, OLDER_GENERATION_THRESHOLD, OLDER_GENERATION_THRESHOLD)


def freeze_startup_objects() -> None:
    """Keep everything allocated so far out of later collections; call once the process serves."""
    gc.collect()
    gc.freeze()
