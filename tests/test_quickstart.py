"""`textdiff quickstart`'s job, on a budget of a few steps."""

import json
import os

import pytest

from keras_textdiff.quickstart import body_scores
from keras_textdiff.quickstart import run_quickstart


def test_body_scores_count_exact_bodies_and_parsing_functions():
    prompts = ["def f():\n", "def g():\n", "def h():\n"]
    bodies = ["    return 1\n", "    return (\n", "  pass"]
    references = ["    return 1\n", "    return 2\n", "    pass\n"]
    scores = body_scores(prompts, bodies, references)
    assert scores["exact_match"] == pytest.approx(200 / 3)  # Whitespace aside.
    assert scores["parses"] == pytest.approx(200 / 3)  # "return (" does not.


def test_quickstart_trains_scores_saves_and_never_overwrites(tmp_path, capsys):
    out = str(tmp_path / "run")
    results = run_quickstart(out, train_seconds=60, max_steps=2, batch_size=4, num_scored=4)
    printed = capsys.readouterr().out
    assert results["train_steps"] == 2
    assert "stopped at max_steps, after 2 steps" in printed
    with open(os.path.join(out, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(results))
    assert results["baseline_pass_parses"] == 100.0  # `pass` always parses.
    assert os.path.exists(os.path.join(out, "preset", "config.json"))
    assert os.path.getsize(os.path.join(out, "trajectory.png")) > 0
    before = os.path.getmtime(os.path.join(out, "metrics.json"))
    with pytest.raises(ValueError, match="already holds a quickstart run"):
        run_quickstart(out, max_steps=1)
    assert os.path.getmtime(os.path.join(out, "metrics.json")) == before
