"""`benchmarks/speed.py` runs end to end for one tiny cell (no timings checked)."""

import json
import os
import subprocess

import pytest

from benchmark_modules import load_benchmark


@pytest.mark.large  # A benchmark smoke run; the decoding it times is tested by default.
def test_one_tiny_cell_writes_table_json_and_plot(tmp_path):
    speed = load_benchmark("speed")
    peers = "keras-hub,transformers"
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        peers = "keras-hub"
    speed.main([
        "--quick", "--lengths", "8", "--steps", "2", "--repeats", "1",
        "--peers", peers, "--options", "bad={\"no_such_option\": 1}",
        "--out-dir", str(tmp_path),
    ])
    stem = tmp_path / "speed-cpu"
    rows = json.loads(stem.with_suffix(".json").read_text())["rows"]
    by_peer = {r["peer"] for r in rows if "error" not in r}
    assert by_peer == {"forward", "diffusion"} | set(peers.split(","))
    (diffusion,) = [r for r in rows if r["peer"] == "diffusion"]
    assert diffusion["options"] == "plain" and diffusion["runs"] == 1
    text = stem.with_suffix(".md").read_text()
    assert "| gpt2 | tiny | 1 | 8 | plain | 2 |" in text
    assert "Options bad=" in text  # an unknown sampler option is reported, not fatal
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=os.path.dirname(__file__)).stdout.strip()
    assert f"Command at {head}" in text  # The code measured (`+` if changed since).
    # --render rebuilds the same table from the JSON alone.
    stem.with_suffix(".md").unlink()
    speed.main(["--render", str(stem.with_suffix(".json"))])
    assert stem.with_suffix(".md").read_text() == text
    pytest.importorskip("matplotlib")
    assert stem.with_suffix(".png").stat().st_size > 0
