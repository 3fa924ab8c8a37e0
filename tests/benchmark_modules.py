"""Load a script under `benchmarks/` as a module, for tests of its parts."""

import importlib.util
import os
import sys

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")


def load_benchmark(name):
    """`benchmarks/<name>.py` as a fresh module (its sibling imports work)."""
    if BENCHMARKS not in sys.path:
        sys.path.append(BENCHMARKS)  # Last, so no benchmark shadows a library module.
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", os.path.join(BENCHMARKS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
