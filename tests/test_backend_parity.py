"""Backend parity: a model saved on JAX computes and decodes the same on
TensorFlow and PyTorch.

This process (JAX in the default run) trains a tiny mask-noise model and
saves it as a preset; one `parity_check.py` process per other backend loads
that preset in float32 and in bfloat16 and writes its numbers while this
process computes its own with the same function (`parity_check.numbers`).
Each test compares one kind of number: logits per dtype, and, for each
decoding in `parity_check.DECODINGS`, the temperature-0 token ids and
`num_forward_passes`. Decoding starts from an all-mask target (a
`MaskNoise` model), not from random tokens, which each backend's generator
would draw differently for one seed.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_textdiff as ktd
import parity_check
from conftest import gemma_backbone
from conftest import gpt2_backbone

HERE = os.path.dirname(os.path.abspath(__file__))
MASK_ID = 29  # The letters are ids 1-26; the backbone's last id is the mask.
# Absolute tolerance of the logits (which reach about 20 here), per dtype.
# float32 backends agree to about 2e-5. bfloat16 keeps 8 significant bits:
# a logit near 16 is rounded to a multiple of 1/8, and the roundings of each
# layer add up (up to 0.3 seen between backends, 0.4 against float32); a
# wrong weight, position or attention mask moves logits by whole units.
TOLERANCE = {"float32": 1e-4, "bfloat16": 0.75}
REFERENCE = keras.config.backend()
OTHERS = [b for b in ("jax", "tensorflow", "torch") if b != REFERENCE]


def trained_preset(make_backbone, directory, **kwargs):
    """A mask-noise model trained to continue the alphabet, saved to `directory`.

    Trained (about 9 s) so that its predictions are peaked: most top-two
    logit gaps are well above float32's rounding, and confidence and
    threshold decoding commit tokens at different paces.
    """
    keras.utils.set_random_seed(0)
    noise = ktd.MaskNoise(MASK_ID, seed=0)
    model = ktd.DiffusionDecoder(make_backbone(MASK_ID + 1), None, noise=noise, **kwargs)
    ids = parity_check.alphabet_rows(np.arange(64) % 26)
    target_mask = np.zeros(ids.shape, bool)
    target_mask[:, 4:] = True
    x = {"token_ids": ids, "padding_mask": np.ones_like(target_mask), "target_mask": target_mask}
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, ids, batch_size=16, epochs=150, shuffle=False, verbose=0)
    model.save_to_preset(str(directory))


def numbers_on_every_backend(directory, names):
    """`{backend: {key: array}}` for the preset in `directory / "preset"`:
    this process's backend computed here, the others each in a process of
    its own, all at once."""
    preset = str(directory / "preset")
    running = {}
    for backend in OTHERS:
        out, log = directory / f"{backend}.npz", open(directory / f"{backend}.log", "w+")
        env = dict(os.environ, KERAS_BACKEND=backend, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
        command = [sys.executable, "parity_check.py", backend, preset, str(out), ",".join(names)]
        process = subprocess.Popen(command, stdout=log, stderr=log, env=env, cwd=HERE)
        running[backend] = (process, out, log)
    try:
        numbers = {REFERENCE: parity_check.numbers(preset, names)}
        for backend, (process, out, log) in running.items():
            process.wait(timeout=600)
            log.seek(0)
            assert process.returncode == 0, f"{backend} failed:\n{log.read()[-3000:]}"
            numbers[backend] = dict(np.load(out))
    finally:
        for process, _, log in running.values():
            process.kill()  # (Nothing, if it has finished.)
            log.close()
    return numbers


@pytest.fixture(scope="module")
def numbers(tmp_path_factory):
    directory = tmp_path_factory.mktemp("parity")
    trained_preset(gpt2_backbone, directory / "preset")
    return numbers_on_every_backend(directory, list(parity_check.DECODINGS))


def decoded(results, name, dtype="float32"):
    return results[f"{dtype}/{name}/token_ids"], results[f"{dtype}/{name}/num_forward_passes"]


def check_logits(numbers, backend, dtype):
    for name in ("logits", "masked_logits"):
        key = f"{dtype}/{name}"
        np.testing.assert_allclose(
            numbers[backend][key], numbers[REFERENCE][key], rtol=0,
            atol=TOLERANCE[dtype], err_msg=f"{key} on {backend} vs {REFERENCE}",
        )
    if dtype == "bfloat16":  # It did compute in bfloat16.
        gap = np.abs(numbers[backend]["bfloat16/logits"] - numbers[backend]["float32/logits"])
        assert gap.max() > 1e-3, f"{backend}'s bfloat16 logits are its float32 ones"


def check_decoding(numbers, backend, name):
    tokens, passes = decoded(numbers[backend], name)
    expected_tokens, expected_passes = decoded(numbers[REFERENCE], name)
    np.testing.assert_array_equal(tokens, expected_tokens, err_msg=f"{name} token ids on {backend}")
    np.testing.assert_array_equal(passes, expected_passes, err_msg=f"{name} passes on {backend}")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("backend", OTHERS)
def test_logits_match(numbers, backend, dtype):
    check_logits(numbers, backend, dtype)


@pytest.mark.parametrize("name", list(parity_check.DECODINGS))
@pytest.mark.parametrize("backend", OTHERS)
def test_temperature_0_decoding_matches(numbers, backend, name):
    check_decoding(numbers, backend, name)


@pytest.mark.parametrize("backend", OTHERS)
def test_bfloat16_one_step_decoding_matches(numbers, backend):
    # A bfloat16 near-tie may round either way on another backend, so the
    # token ids are compared where the float32 logits decide clearly: where
    # the best token leads the second by more than twice the largest
    # bfloat16 error seen (backend's or reference's, against float32).
    found, reference = numbers[backend], numbers[REFERENCE]
    target = parity_check.fixed_batch()["target_mask"]
    logits = found["bfloat16/masked_logits"]
    tokens, passes = decoded(found, "one_step", "bfloat16")
    # Every target gets a token of its highest bfloat16 logit (by value:
    # bfloat16 logits can tie).
    chosen = np.take_along_axis(logits, tokens[..., None], axis=-1)[..., 0]
    np.testing.assert_array_equal(chosen[target], logits.max(-1)[target])
    exact = reference["float32/masked_logits"]
    error = max(
        np.abs(found["bfloat16/masked_logits"] - exact)[target].max(),
        np.abs(reference["bfloat16/masked_logits"] - exact)[target].max(),
    )
    best_two = np.sort(exact, axis=-1)[..., -2:]
    clear = target & (best_two[..., 1] - best_two[..., 0] > 2 * error)
    assert clear.sum() >= target.sum() // 3, (clear.sum(), error)
    expected_tokens, expected_passes = decoded(reference, "one_step", "bfloat16")
    np.testing.assert_array_equal(tokens[clear], expected_tokens[clear])
    np.testing.assert_array_equal(passes, expected_passes)


def test_the_decodings_compared_differ_and_do_what_they_name(numbers):
    # On the reference: so that equal numbers on the other backends mean
    # that each option ran there as it should.
    reference = numbers[REFERENCE]
    batch = parity_check.fixed_batch()
    target = batch["target_mask"]
    for name in parity_check.DECODINGS:
        tokens, passes = decoded(reference, name)
        np.testing.assert_array_equal(tokens[~target], batch["token_ids"][~target])
        assert not (tokens[target] == MASK_ID).any(), name
        assert passes[0] == passes[1], name  # One loop for the batch.

    def passes(name):
        return int(decoded(reference, name)[1][0])

    assert passes("resample") == 4
    # Targets 5-15 make 3 blocks of 5 (the last of one position); each
    # stops early or after 10 steps.
    assert 3 < passes("resample_blocks_early_stop") < 30
    assert 1 < passes("threshold") < 8
    # Three blocks of 3 steps, the cache's first full pass, and a refresh
    # pass after each block but the last.
    assert passes("confidence_blocks_cache") == 1 + 3 * 3 + 2
    assert 1 + 3 + 2 < passes("threshold_blocks_cache") < 1 + 3 * 8 + 2
    assert passes("one_step") == 1
    # One step from all masks: every target gets the argmax of its logits.
    one_step = decoded(reference, "one_step")[0]
    argmax = reference["float32/masked_logits"].argmax(-1)
    np.testing.assert_array_equal(one_step[target], argmax[target])
    # The model continues the alphabet so well that the strategies which
    # commit tokens (confidence, threshold, one step) may all write the
    # same, right, letters (they do on some CPUs and not on others); they
    # still differ in how many passes they take. Resampling every position
    # (the paper's loop) writes something else. So each decoding is told
    # apart by its tokens or its passes, and the tokens take two forms at
    # least: equal numbers on another backend are not one decoding's.
    outcomes = {
        (decoded(reference, name)[0].tobytes(), passes(name)) for name in parity_check.DECODINGS
    }
    assert len(outcomes) >= len(parity_check.DECODINGS) - 1, len(outcomes)
    distinct = {tokens for tokens, _ in outcomes}
    assert len(distinct) >= 2, len(distinct)


@pytest.mark.large
def test_every_strategy_and_a_rotary_prefix_model_match(tmp_path):
    # Gemma: rotary positions, grouped queries, tied embeddings; prefix
    # attention and shifted prediction (a converted AR model's setup).
    trained_preset(
        gemma_backbone, tmp_path / "preset",
        attention="prefix", shifted_prediction=True,
    )
    names = list(parity_check.ALL_DECODINGS)
    numbers = numbers_on_every_backend(tmp_path, names)
    for backend in OTHERS:
        for dtype in TOLERANCE:
            check_logits(numbers, backend, dtype)
        for name in names:
            check_decoding(numbers, backend, name)
