"""Block diffusion (`attention="block"` with several target blocks): each
block trains given clean earlier blocks, and decodes block by block with an
exact key/value cache, on every supported architecture."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_textdiff as ktd
from test_fast_decoding import LENGTH
from test_fast_decoding import packed_batch
from tiny_models import ARCHITECTURES
from tiny_models import tiny_causal_lm

# `packed_batch`'s rows: targets start at 5 and 7 (so fixed position ranges
# would cut them into different blocks), the second padded from 14: blocks
# [5, 8), [8, 11), [11, 14), [14, 16) and [7, 10), [10, 13), [13, 14).
BLOCK = 3


def block_of(target_mask):
    """Each position's block, counted per row from its first target (numpy)."""
    rank = np.cumsum(target_mask, axis=1) - 1
    return np.where(target_mask, rank // BLOCK, -1)


def block_model(name, **kwargs):
    keras.utils.set_random_seed(1)
    backbone = tiny_causal_lm(name).backbone
    mask_id = backbone.vocabulary_size - 1
    options = dict(attention="block", block_size=BLOCK, shifted_prediction=True,
                   noise=ktd.MaskNoise(mask_id, seed=3))
    return ktd.DiffusionDecoder(backbone, None, **(options | kwargs)), mask_id


def reference_decoding(model, start, padding_mask, target_mask, num_steps):
    """The sampler's argmax decoding redone by hand: block after block of
    each row, `num_steps` steps each, every step a full pass over the whole
    sequence (no window, no cache). Returns every state."""
    tokens, states = start.copy(), [start.copy()]
    blocks = block_of(target_mask)
    for block in range(blocks.max() + 1):
        for _ in range(num_steps):
            logits = ops.convert_to_numpy(model.logits(tokens, padding_mask, target_mask))
            tokens = np.where(blocks == block, logits.argmax(-1), tokens).astype("int32")
            states.append(tokens.copy())
    return states


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_block_diffusion_trains_on_clean_earlier_blocks_and_decodes_exactly(name):
    model, mask_id = block_model(name)
    ids, padding_mask, target_mask = packed_batch(model.backbone.vocabulary_size)
    blocks = block_of(target_mask)

    # Training: one block per row is masked and scored; the logits are the
    # model's on the clean sequence with only those positions masked. (A
    # target mask makes the call a training one; `training=False` only turns
    # dropout off, for the comparison.)
    out = model({"token_ids": ids, "padding_mask": padding_mask, "target_mask": target_mask},
                training=False)
    trained = ops.convert_to_numpy(out["trained"]).astype(bool)
    for row in range(2):
        (chosen,) = set(blocks[row][trained[row]])
        np.testing.assert_array_equal(trained[row], blocks[row] == chosen)
    corrupted = ops.convert_to_numpy(out["corrupted"])
    assert not (corrupted & ~trained).any()
    noisy = np.where(corrupted, mask_id, ids).astype("int32")
    expected = ops.convert_to_numpy(model.logits(noisy, padding_mask, target_mask))
    np.testing.assert_allclose(ops.convert_to_numpy(out["logits"]), expected, atol=1e-5)

    # Decoding: blocks of the model's size, with and without a cache, give
    # the states of the full recomputation, step by step. A sampler without
    # `block_size` decodes in the model's blocks.
    for block_size, cache in ((None, False), (BLOCK, True)):
        model.compile(sampler=ktd.DiffusionSampler(
            num_steps=2, temperature=0.0, num_samples=1, block_size=block_size, cache=cache))
        decoded = model.generate({"token_ids": ids, "padding_mask": padding_mask,
                                  "target_mask": target_mask,
                                  "record": np.zeros((4 * 2 + 1,), "int32")})
        states = list(decoded["states"].transpose(1, 0, 2))
        expected_states = reference_decoding(model, states[0], padding_mask, target_mask, 2)
        assert len(states) == len(expected_states) == int(decoded["num_states"][0])
        np.testing.assert_array_equal(states[0], np.where(target_mask, mask_id, ids))
        for got, want in zip(states, expected_states):
            np.testing.assert_array_equal(got, want)
        # 4 blocks x 2 steps; with a cache, its first full pass and one
        # refresh pass after each block but the last.
        assert decoded["num_forward_passes"][0] == 8 + cache * (1 + 3)


def test_every_block_gets_trained_and_the_loss_reads_only_it():
    model, _ = block_model("gpt2")
    ids, padding_mask, target_mask = packed_batch(model.backbone.vocabulary_size)
    blocks = block_of(target_mask)
    inputs = {"token_ids": ids, "padding_mask": padding_mask, "target_mask": target_mask}
    seen = [set(), set()]
    for _ in range(40):
        out = model(inputs, training=True)
        trained = ops.convert_to_numpy(out["trained"]).astype(bool)
        for row in range(2):
            seen[row] |= set(blocks[row][trained[row]])
    assert seen == [{0, 1, 2, 3}, {0, 1, 2}]

    # The masked-diffusion ELBO over the trained block only (numpy).
    logits = ops.convert_to_numpy(out["logits"])
    masked = ops.convert_to_numpy(out["corrupted"])
    rate = ops.convert_to_numpy(out["rate"])
    z = logits - logits.max(-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
    expected = (nll * masked / rate * trained).sum() / trained.sum()
    loss = model.compute_loss(inputs, ids, out, target_mask.astype("float32"))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_blocks_after_the_end_token_are_not_drawn():
    # Blocks of 3 over a 9-position target. Short targets end (end token,
    # then padding) in their first or second block; the blocks after hold
    # only padding, which the output drops: training never draws them, and
    # draws every block up to the one holding the end token.
    model, _ = block_model("gpt2")
    tokenizer = tiny_causal_lm("gpt2").preprocessor.tokenizer
    model.preprocessor = ktd.DiffusionPreprocessor(tokenizer, LENGTH, target_length=3 * BLOCK)
    x, _, _ = model.preprocessor({"prefix": ["a", "b", "c"], "target": ["b", "c c", "abcdefg"]})
    x = {k: ops.convert_to_numpy(v) for k, v in x.items()}
    # The target's 9 positions of each row (the training outputs' positions).
    target = x["target_mask"].astype(bool)
    blocks = np.stack([block_of(target)[row][target[row]] for row in range(3)])
    stop = np.stack([np.isin(x["token_ids"][row][target[row]], model.preprocessor.stop_token_ids)
                     for row in range(3)])
    last = [blocks[row][stop[row]].min() for row in range(3)]
    assert len(set(last)) == 3  # The rows end in blocks 0, 1 and 2.
    seen = [set(), set(), set()]
    for _ in range(40):
        trained = ops.convert_to_numpy(model(x, training=True)["trained"]).astype(bool)
        for row in range(3):
            (chosen,) = set(blocks[row][trained[row]])
            np.testing.assert_array_equal(trained[row], blocks[row] == chosen)
            seen[row].add(chosen)
    assert seen == [set(range(end + 1)) for end in last]


def test_one_block_over_the_target_trains_as_before():
    # One block covering a fixed-length target (the protocol's models): the
    # whole target trains, and the noise's draws are a bidirectional
    # model's, so runs from before block diffusion replay exactly.
    def model_with(**kwargs):
        model, _ = block_model("gpt2", **kwargs)
        tokenizer = tiny_causal_lm("gpt2").preprocessor.tokenizer
        model.preprocessor = ktd.DiffusionPreprocessor(tokenizer, LENGTH, target_length=6)
        return model

    x, _, _ = model_with().preprocessor({"prefix": ["cat", "a dog"], "target": ["sat", "ran"]})
    x = {k: ops.convert_to_numpy(v) for k, v in x.items()}
    block = model_with(block_size=6)(x, training=True)
    plain = model_with(attention="bidirectional", block_size=None)(x, training=True)
    assert "trained" not in block
    np.testing.assert_array_equal(ops.convert_to_numpy(block["corrupted"]),
                                  ops.convert_to_numpy(plain["corrupted"]))
    assert ops.convert_to_numpy(block["corrupted"]).any()


def test_block_diffusion_fit_changes_the_weights():
    model, _ = block_model("gpt2")
    ids, padding_mask, target_mask = packed_batch(model.backbone.vocabulary_size)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    history = model.fit(
        {"token_ids": ids, "padding_mask": padding_mask, "target_mask": target_mask},
        ids, sample_weight=target_mask.astype("float32"), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = [ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_blocks_must_tile_a_fixed_target():
    tokenizer = tiny_causal_lm("gpt2").preprocessor.tokenizer
    with pytest.raises(ValueError, match="block_size` must divide the target length"):
        ktd.AR2DiffConverter(attention="block", block_size=4, target_length=6)
    backbone = tiny_causal_lm("gpt2").backbone
    for block_size, target_length in ((4, 6), (5, 12)):
        preprocessor = ktd.DiffusionPreprocessor(tokenizer, LENGTH, target_length=target_length)
        with pytest.raises(ValueError, match=f"block_size={block_size}, target_length"):
            ktd.DiffusionDecoder(backbone, preprocessor, attention="block", block_size=block_size)
    for block_size in (3, 6, 8):  # Tiles, fills, or one block past the target.
        preprocessor = ktd.DiffusionPreprocessor(tokenizer, LENGTH, target_length=6)
        ktd.DiffusionDecoder(backbone, preprocessor, attention="block", block_size=block_size)
