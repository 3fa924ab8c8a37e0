"""Data- and model-parallel checks on 8 simulated CPU devices (run as a script).

Run by `test_distribution.py` in a fresh process: JAX reads
`--xla_force_host_platform_device_count` once, when it starts. Prints one
JSON line of results; the test asserts on them.

Usage: python distribution_check.py OUT_DIR
"""

import os
import sys

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
)
os.environ["KERAS_BACKEND"] = "jax"

import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import keras_textdiff as ktd  # noqa: E402
from conftest import letter_tokenizer  # noqa: E402
from keras_textdiff import recipes  # noqa: E402
from keras_textdiff.distribution import distributed  # noqa: E402
from keras_textdiff.distribution import get_distribution  # noqa: E402
from keras_textdiff.distribution import model_parallel  # noqa: E402

LENGTH, BATCH = 16, 8
TOKENIZER = letter_tokenizer()
VOCABULARY = TOKENIZER.vocabulary_size()  # 29: odd, as real ones often are.


def gpt2():
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCABULARY, num_layers=2, num_heads=4, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=LENGTH, dropout=0.0,
    )


def llama():
    return keras_hub.models.LlamaBackbone(
        vocabulary_size=64, num_layers=2, num_query_heads=4,
        num_key_value_heads=2, hidden_dim=32, intermediate_dim=64,
    )


BACKBONES = {"gpt2": gpt2, "llama": llama}
CLASSES = {"gpt2": keras_hub.models.GPT2Backbone, "llama": keras_hub.models.LlamaBackbone}


def make_model(name):
    return ktd.DiffusionDecoder(BACKBONES[name](), preprocessor=None)


def packed_batches():
    preprocessor = ktd.DiffusionPreprocessor(TOKENIZER, LENGTH, seed=0)
    words = ["abc", "defg", "hij", "klmno", "pq", "rstu", "vw", "xyz"]
    x, y, _ = preprocessor({"prefix": words, "target": words[::-1]})
    x = {k: keras.ops.convert_to_numpy(v) for k, v in x.items()}
    prompts = preprocessor.generate_preprocess(words)
    prompts = {k: keras.ops.convert_to_numpy(v) for k, v in prompts.items()}
    return x, keras.ops.convert_to_numpy(y), prompts


X, Y, PROMPTS = packed_batches()


def numpy_values(variables):
    return [keras.ops.convert_to_numpy(v) for v in variables]


def max_difference(a, b):
    return max(float(np.max(np.abs(p - q))) if p.size else 0.0 for p, q in zip(a, b))


def train_and_generate(name, initial, spec):
    """Two steps on one batch (the second loss is the loss after one step),
    then a seeded `generate`, under the distribution `spec`."""
    with distributed(spec, CLASSES[name], BATCH):
        model = make_model(name)
        for variable, value in zip(model.variables, initial):
            variable.assign(value)
        specs = {
            v.path: str(getattr(v.value.sharding, "spec", "one device"))
            for v in model.backbone.variables
            if "query/kernel" in v.path or "token_embedding/embeddings" in v.path
        }
        model.compile(optimizer=keras.optimizers.AdamW(1e-2))
        history = keras.Model.fit(
            model, X, Y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0
        )
        model.compile(sampler=ktd.DiffusionSampler(num_steps=3, num_samples=1, seed=0))
        generated = model.generate(dict(PROMPTS))["token_ids"]
    return {
        "losses": [float(v) for v in history.history["loss"]],
        "weights": numpy_values(model.trainable_variables),
        "generated": np.asarray(generated),
        "specs": specs,
    }


def compare(results, out_dir):
    for name, specs in (("gpt2", ["data", "2x4"]), ("llama", ["2x4"])):
        keras.utils.set_random_seed(0)
        initial = numpy_values(make_model(name).variables)
        single = train_and_generate(name, initial, None)
        for spec in specs:
            sharded = train_and_generate(name, initial, spec)
            results[f"{name} {spec}"] = {
                "single_losses": single["losses"],
                "losses": sharded["losses"],
                "weight_difference": max_difference(single["weights"], sharded["weights"]),
                "generated_equal": bool(np.array_equal(single["generated"], sharded["generated"])),
                "generated_changed": bool(
                    np.any(single["generated"] != PROMPTS["token_ids"])
                ),
                "specs": sharded["specs"],
            }


def recipe(results, out_dir):
    """`pretrain` under a 2x4 mesh: checkpoints and preset, for reloading."""
    corpus = os.path.join(out_dir, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("def add(a, b):\n    return a + b\n\n" * 40)
    result = recipes.pretrain(
        os.path.join(out_dir, "pretrain"), 2, corpus=corpus, size="tiny",
        sequence_length=LENGTH, vocabulary_size=300, batch_size=BATCH,
        checkpoint_every=1, distribution="2x4", verbose=0,
    )
    results["pretrain"] = {"loss": result["loss"], "preset": result["preset"]}


def errors(results, out_dir):
    def message(function):
        try:
            function()
        except ValueError as error:
            return str(error)
        return None

    def build_gpt2_on(mesh):
        backbone = gpt2()
        with model_parallel(backbone, mesh).scope():
            gpt2()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results["errors"] = {
            "mesh": message(lambda: get_distribution("3x3", "GPT2Backbone")),
            "batch": message(lambda: get_distribution("4x2", "GPT2Backbone", 6)),
            "heads": message(lambda: build_gpt2_on("1x8")),
            "spec": message(lambda: get_distribution("2by4", "GPT2Backbone")),
        }


def layouts(results, out_dir):
    """Batches the batch axis does not divide are replicated; a single
    key/value head (multi-query attention) is replicated, not split."""
    data = get_distribution("data")
    results["data_layouts"] = [
        list(data.get_data_layout(shape).axes) for shape in ((8, 16), (3, 16))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed("4x2", "GemmaBackbone"):
            gemma = keras_hub.models.GemmaBackbone(
                vocabulary_size=64, num_layers=1, num_query_heads=2,
                num_key_value_heads=1, hidden_dim=16, intermediate_dim=32, head_dim=8,
            )
    results["gemma_specs"] = {
        v.path: str(v.value.sharding.spec) for v in gemma.weights if "attention/" in v.path
    }


def main(out_dir):
    results = {"devices": len(keras.distribution.list_devices()), "seconds": {}}
    for phase in (compare, recipe, errors, layouts):
        start = time.time()
        phase(results, out_dir)
        results["seconds"][phase.__name__] = round(time.time() - start, 1)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
