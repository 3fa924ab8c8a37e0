"""A short training run for the kill-and-resume test (run as a script).

Usage: python resumable_run.py OUT_DIR SECONDS_PER_STEP
"""

import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
from conftest import gpt2_backbone  # noqa: E402
from conftest import letter_tokenizer  # noqa: E402
from keras_textdiff.data import text_dataset  # noqa: E402
from keras_textdiff.recipes import RunDirectory  # noqa: E402
from keras_textdiff.recipes import train  # noqa: E402

STEPS, EVERY = 12, 4


class Slow(keras.callbacks.Callback):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def save_variables(model, path):
    np.savez(path, *[keras.ops.convert_to_numpy(v) for v in model.variables])


def main(out_dir, seconds):
    keras.utils.set_random_seed(0)
    tokenizer = letter_tokenizer()
    preprocessor = ktd.DiffusionPreprocessor(tokenizer, 16, seed=1)
    model = ktd.DiffusionDecoder(gpt2_backbone(tokenizer.vocabulary_size()), preprocessor)
    model.compile()
    texts = ["the cat sat on the mat", "a dog ran in the park", "abc def ghi"] * 4
    # Raw text: shuffled (stateless, seeded) and split at random points.
    dataset = text_dataset(texts, preprocessor, 4, seed=2, repeat=True, verbose=False)
    run = RunDirectory(out_dir, {"steps": STEPS, "checkpoint_every": EVERY})
    save_variables(model, os.path.join(out_dir, "initial.npz"))
    result = train(model, dataset, STEPS, run, EVERY, callbacks=[Slow(seconds)], verbose=0)
    save_variables(model, os.path.join(out_dir, "final.npz"))
    run.write_metrics(result)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
