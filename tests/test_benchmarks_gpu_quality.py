"""`benchmarks/ar2diff_gpu.py`: what crosses to the GPU machine comes back intact."""

import os

import numpy as np
import pytest

from benchmark_modules import load_benchmark


def test_compact_arrays_expand_to_the_same_values_and_dtypes():
    gpu = load_benchmark("ar2diff_gpu")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 49153, size=(6, 40)).astype("int32")
    arrays = {
        "x/token_ids": ids,
        "y": ids.copy(),  # Equal: stored once.
        "x/padding_mask": rng.random((6, 40)) < 0.7,
        "sample_weight": (rng.random((6, 40)) < 0.3).astype("float32"),
        "big": np.array([[70000, 3]], "int64"),  # Too large for uint16.
        "negative": np.array([-1, 5], "int32"),
        "weights": rng.random(7).astype("float32"),
    }
    stored, layout = gpu._compact(arrays)
    assert layout["y"] == {"same_as": "x/token_ids"} and "y" not in stored
    assert stored["x/token_ids"].dtype == np.uint16
    assert stored["x/padding_mask"].nbytes == 6 * 40 // 8
    assert stored["sample_weight"].nbytes == 6 * 40 // 8
    back = gpu._expand(stored, layout)
    assert set(back) == set(arrays)
    for name, value in arrays.items():
        assert back[name].dtype == value.dtype, name
        np.testing.assert_array_equal(back[name], value, err_msg=name)


def test_the_gguf_file_is_rejoined_from_its_parts_and_checked(tmp_path):
    gpu = load_benchmark("ar2diff_gpu")
    original = tmp_path / "model.gguf"
    original.write_bytes(os.urandom(10_000))
    data = original.read_bytes()
    for i in range(3):
        (tmp_path / f"gguf.part{i}").write_bytes(data[i * 4000 : (i + 1) * 4000])
    info = {"sha256": gpu._sha256(original), "parts": 3}
    joined = tmp_path / "joined.gguf"
    gpu._join_parts(tmp_path, joined, info)
    assert joined.read_bytes() == data
    # A part that does not belong: refused, nothing left behind as the file.
    (tmp_path / "gguf.part1").write_bytes(b"x" * 4000)
    with pytest.raises(SystemExit, match="sha256"):
        gpu._join_parts(tmp_path, tmp_path / "other.gguf", info)
    assert not (tmp_path / "other.gguf").exists()


@pytest.mark.parametrize("flags", [["--adapt-corpus", "self"], ["--adapt-learning-rate", "3e-5"]])
def test_export_refuses_the_cpu_only_adaptation_variants_before_any_work(flags, monkeypatch, capsys):
    """The GPU path adapts on the corpus as it is, at the fine-tuning's rate:
    a variant it would ignore is refused (exit 2, one line) before packing."""
    gpu = load_benchmark("ar2diff_gpu")
    monkeypatch.setattr(gpu, "export", lambda *a: pytest.fail("export ran"))
    with pytest.raises(SystemExit) as exit_info:
        gpu.main(["export", *flags])
    assert exit_info.value.code == 2
    assert "--adapt-corpus and --adapt-learning-rate" in capsys.readouterr().err
