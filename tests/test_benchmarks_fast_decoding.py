"""`benchmarks/fast_decoding.py --update`: it keeps the rows it does not
rerun, and refuses a results file whose rows would not compare with new ones."""

import json

import pytest

from benchmark_modules import load_benchmark


def row(decoding, dtype, f1):
    return {"decoding": decoding, "dtype": dtype, "f1": f1, "commit": "old"}


def test_update_keeps_other_rows_and_refuses_another_device_model_or_size(tmp_path):
    fast_decoding = load_benchmark("fast_decoding")
    path = tmp_path / "fast-decoding-cpu.json"
    old = [row("confidence", "float32", 10.0), row("threshold", "float32", 30.0),
           row("confidence", "bfloat16", 9.0)]
    path.write_text(json.dumps({"device": "CPU (A)", "model": "m", "examples": 48, "rows": old}))

    kept = fast_decoding.kept_rows(str(path), "m", 48, "CPU (A)")
    assert kept == old
    new = [row("threshold", "float32", 31.0), row("entropy", "float32", 20.0)]
    assert fast_decoding.merged_rows(kept, new) == [old[0], new[0], old[2], new[1]]
    assert fast_decoding.kept_rows(str(tmp_path / "none.json"), "m", 48, "CPU (A)") == []

    for model, examples, device in [("m", 48, "CPU (B)"), ("other", 48, "CPU (A)"), ("m", 8, "CPU (A)")]:
        with pytest.raises(SystemExit, match="rerun every option without --update"):
            fast_decoding.kept_rows(str(path), model, examples, device)
