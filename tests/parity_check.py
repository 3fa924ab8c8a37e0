"""One backend's numbers for a preset saved on JAX, for `test_backend_parity.py`.

`python parity_check.py BACKEND PRESET OUT.npz [NAMES]` loads PRESET (a
`DiffusionDecoder` saved by the JAX test process) on BACKEND and writes to
OUT.npz what `numbers()` returns: in float32 and in bfloat16, the logits of a
fixed batch and, for each decoding named (NAMES: comma-separated keys of
`ALL_DECODINGS`; `DECODINGS` by default), the temperature-0 token ids and
`num_forward_passes`. The test calls `numbers()` in its own process and
compares. Every check of one backend runs in this one process: importing a
backend costs 10-20 s.

Token ids are comparable across backends only from a start that does not
come from the backend's random generator (each backend's `keras.random`
draws different numbers for one seed). The preset's model is trained with
`MaskNoise`, so decoding starts from an all-mask target, and temperature 0
takes the argmax: no random number is drawn. (A `UniformNoise` model starts
from random tokens, even from packed inputs, so its decodings cannot be
compared this way.)
"""

import os
import sys

if __name__ == "__main__":
    os.environ["KERAS_BACKEND"] = sys.argv[1]

import numpy as np  # noqa: E402

LENGTH = 16

# name -> `DiffusionSampler` options (temperature 0, one candidate, seed 0).
DECODINGS = {
    # The paper's loop: every target position rewritten every step.
    "resample": dict(num_steps=4),
    # Early stop ends some blocks before their 10 steps. (With blocks of 4
    # the first row's argmax tokens alternate between two states forever.)
    "resample_blocks_early_stop": dict(num_steps=10, block_size=5, early_stop=True),
    "argmax_unrolled": dict(num_steps=4, strategy="argmax_unrolled", keep_fraction=0.5),
    "confidence": dict(num_steps=4, strategy="confidence"),
    # Commits several tokens a step: fewer passes than steps.
    "threshold": dict(num_steps=8, strategy="threshold", threshold=0.8),
    "confidence_blocks_cache": dict(
        num_steps=3, strategy="confidence", block_size=4, cache=True
    ),
    "threshold_blocks_cache": dict(
        num_steps=8, strategy="threshold", threshold=0.8, block_size=4, cache=True
    ),
    # One step from all masks: every target gets the argmax of its logits.
    "one_step": dict(num_steps=1, strategy="confidence"),
}
# More strategies and options, for the `large` test.
LARGE_DECODINGS = {
    "confidence_blocks": dict(num_steps=3, strategy="confidence", block_size=4),
    # Two identical candidates (temperature 0): the best-of-N scoring path.
    "confidence_two_samples": dict(num_steps=4, strategy="confidence", num_samples=2),
    "entropy": dict(num_steps=4, strategy="entropy"),
    "margin": dict(num_steps=4, strategy="margin"),
    "entropy_bound": dict(num_steps=8, strategy="entropy_bound", entropy_bound=1.0),
    "left_to_right": dict(num_steps=8, strategy="left_to_right", threshold=0.8),
    "argmax_unrolled_blocks_cache": dict(
        num_steps=4, strategy="argmax_unrolled", block_size=4, cache=True
    ),
    "resample_early_stop_cache": dict(num_steps=10, early_stop=True, cache=True),
}
ALL_DECODINGS = DECODINGS | LARGE_DECODINGS
# In bfloat16 a near-tie of two logits may round either way on different
# backends, and a multi-step decoding then goes its own way: only the
# one-step decoding is compared (see `test_backend_parity.py`).
BFLOAT16_DECODINGS = ("one_step",)


def alphabet_rows(starts):
    """Rows of consecutive letter ids (1-26, wrapping), from each start."""
    starts = np.asarray(starts)[:, None]
    return ((starts + np.arange(LENGTH)[None, :]) % 26 + 1).astype("int32")


def fixed_batch():
    """Two rows whose targets start at different positions, one padded."""
    ids = alphabet_rows([2, 10])
    padding_mask = np.ones((2, LENGTH), bool)
    padding_mask[1, 14:] = False
    target_mask = np.zeros((2, LENGTH), bool)
    target_mask[0, 5:] = True
    target_mask[1, 7:14] = True
    return {"token_ids": ids, "padding_mask": padding_mask, "target_mask": target_mask}


def measure(model, decodings=DECODINGS):
    """`{name: array}`: the logits of the fixed batch (clean, and with the
    target masked as decoding starts) and each decoding's token ids and
    forward passes."""
    from keras import ops

    import keras_textdiff as ktd

    batch = fixed_batch()
    masked = np.where(batch["target_mask"], model.noise.mask_token_id, batch["token_ids"])
    results = {}
    for name, ids in (("logits", batch["token_ids"]), ("masked_logits", masked)):
        logits = model.logits(ids.astype("int32"), batch["padding_mask"], batch["target_mask"])
        results[name] = ops.convert_to_numpy(ops.cast(logits, "float32"))
    for name in decodings:
        options = dict(temperature=0.0, num_samples=1, seed=0) | ALL_DECODINGS[name]
        model.compile(sampler=ktd.DiffusionSampler(**options))
        out = model.generate(batch, stop_token_ids=None)
        results[f"{name}/token_ids"] = out["token_ids"]
        results[f"{name}/num_forward_passes"] = out["num_forward_passes"]
    return results


def numbers(preset, names=DECODINGS):
    """This backend's numbers for `preset`: `measure()` in float32 (the
    decodings `names`) and in bfloat16 (`BFLOAT16_DECODINGS`), each key
    prefixed with its dtype."""
    import keras_textdiff as ktd

    results = {}
    for dtype, decodings in (("float32", names), ("bfloat16", BFLOAT16_DECODINGS)):
        model = ktd.DiffusionDecoder.from_preset(preset, dtype=dtype)
        for name, value in measure(model, decodings).items():
            results[f"{dtype}/{name}"] = value
    return results


if __name__ == "__main__":
    import keras

    if keras.config.backend() == "torch":
        import torch

        torch.set_num_threads(1)
    preset, out = sys.argv[2:4]
    names = sys.argv[4].split(",") if len(sys.argv) > 4 else DECODINGS
    np.savez(out, **numbers(preset, names))
    print("OK", keras.config.backend())
