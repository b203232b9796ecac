"""The benchmarks time xscale's driver by wrapping its functions; a refactor that renames one
broke bench/sweep_overhead.py once without any test noticing. This checks the hooks, not times."""

from __future__ import annotations

import importlib.util
import inspect

from conftest import REPO_ROOT as REPO


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_overhead_hooks_exist():
    bench = _bench("sweep_overhead")
    points = bench.hook_points()
    assert len(points) == 6
    for module, attr in points:
        assert callable(getattr(module, attr, None)), f"{module.__name__}.{attr} is gone"
    schedule = points[4][0]
    assert "progress" in inspect.signature(schedule._callback).parameters  # record_trial_starts
    assert hasattr(schedule, "META")
