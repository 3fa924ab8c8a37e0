"""fit() and seeded generate() on TensorFlow and PyTorch (JAX is the default run)."""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_fit_and_reproducible_generate(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "backend_check.py"), backend],
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("OK"), result.stdout
    assert "fast options OK" in result.stdout and "argmax OK" in result.stdout, result.stdout
