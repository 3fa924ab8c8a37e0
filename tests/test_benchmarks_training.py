"""`benchmarks/training.py --quick` runs end to end and writes one row per cell."""

import json
import math
import os

import pytest

from benchmark_modules import load_benchmark


def test_quick_run_writes_a_row_per_cell(tmp_path):
    training = load_benchmark("training")
    bench = training.main(["--quick", "--out-dir", tmp_path])
    stem = tmp_path / f"training-{bench.slug}"
    data = json.loads(stem.with_suffix(".json").read_text())
    args = bench.args
    requested = {(s, o, w, d) for d in args.dtypes for s in args.shapes
                 for w in args.weights for o in args.objectives}
    rows = data["rows"]
    assert len(rows) == len(requested)
    assert {(r["shape"], r["objective"], r["weights"], r["dtype"]) for r in rows} == requested
    for row in rows:
        assert "error" not in row, row["error"]
        for key in ("median_s", "tokens_per_s"):
            assert math.isfinite(row[key]) and row[key] > 0, (key, row)
        assert row["tokens_per_s"] == row["batch"] * row["sequence_length"] / row["median_s"]
    (ar,) = [r for r in rows if r["objective"] == "ar"]
    assert ar["x_ar_step"] == 1.0
    assert all(r["x_ar_step"] > 0 for r in rows)
    # The report names the CPU and the command, and has the table.
    assert data["cpu"] and data["cpu_cores"] == os.cpu_count()
    assert "--quick" in data["command"]
    text = stem.with_suffix(".md").read_text()
    assert "| tiny | ar | full | float32 | off | 32 | 2 |" in text
    assert "x AR step" in text


def test_held_out_losses_and_the_window_yardstick(tmp_path):
    training = load_benchmark("training")
    bench = training.main(["--quick", "--objectives", "l12,elbo", "--loss-steps", "3",
                           "--out-dir", tmp_path])
    l12, elbo = bench.rows
    assert l12["trained_steps"] == elbo["trained_steps"] == 3
    # L(1:2) adds the unrolled pass's loss to L(1); near chance (a tiny model
    # after 3 steps) the two terms are alike, so L(1) alone is about half.
    assert 0 < l12["heldout_window_l1"] < 0.75 * l12["heldout_loss"]
    assert "heldout_window_l1" not in elbo  # Mask noise: another objective.
    text = (tmp_path / f"training-{bench.slug}.md").read_text()
    assert f"| {l12['heldout_loss']:.3f} | {l12['heldout_window_l1']:.3f} |" in text


@pytest.mark.large  # The quick run above checks the benchmark by default.
def test_remat_rows_build_the_model_in_a_remat_scope(tmp_path, monkeypatch):
    training = load_benchmark("training")
    modes = []
    build = training.row_model

    def recording(*args, **kwargs):  # Which RematScope each row's model is built in.
        from keras.src.backend.common.remat import get_current_remat_mode

        mode = get_current_remat_mode()
        modes.append(None if mode is None else mode.mode)
        return build(*args, **kwargs)

    monkeypatch.setattr(training, "row_model", recording)
    bench = training.main(["--quick", "--objectives", "ar,elbo-window", "--remat", "off,full",
                           "--out-dir", tmp_path])
    assert "remat-off-full" in bench.slug
    assert modes == [None, None, "full", "full"]
    rows = bench.rows
    assert [(r["objective"], r["remat"]) for r in rows] == [
        ("ar", "off"), ("elbo-window", "off"), ("ar", "full"), ("elbo-window", "full")]
    assert all("error" not in r and r["median_s"] > 0 for r in rows[:2])
    # Keras 3.15 cannot fit a keras-hub backbone built in a RematScope from
    # tf.data on JAX (TF's custom_gradient in graph mode); such rows carry
    # the error instead of numbers, and the grid goes on.
    for row in rows[2:]:
        assert ("error" in row) != ("median_s" in row), row
    if "median_s" in rows[2]:  # Compared with the AR row built the same way.
        assert rows[2]["x_ar_step"] == 1.0
