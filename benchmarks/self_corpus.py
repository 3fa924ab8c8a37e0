"""An adaptation corpus the AR model writes itself (`--adapt-corpus self`).

AR2Diff_N continues the model's training with the diffusion loss (the paper's
step 2) on text the model did not learn from: here Bible verses, Python and
SQuAD contexts, where the paper continues on its pretraining mixture. Both a
new objective and new text then move the weights. This corpus removes the
second: each example's prefix is a window of the same offline texts, and its
target is the AR model's own sampled continuation (top-k 50, temperature 1),
so the diffusion loss learns to predict, in parallel, what the model already
predicts one token at a time (a form of self-distillation). Its examples are
cached in the work directory (`self_corpus-<count>-seed<seed>.json`, one
model and corpus per work directory) and extended in batches, so an
interrupted run resumes.
"""

import json
import os

import keras_hub
import numpy as np

from keras_textdiff.diffusion_preprocessor import _string_list
from keras_textdiff.evaluation.evaluate import complete

BATCH = 32


def self_corpus(texts, preset, count, sequence_length, target_length, folder, seed=0):
    """`count` `{"prefix", "target"}` examples: a window of one of `texts`,
    then what the AR model at `preset` writes after it (at most
    `target_length - 1` tokens, the end token's room left, fewer if it ends).

    Prefixes are 16 to `sequence_length - target_length - 4` tokens long
    (room for the start, separator and end tokens, and one token to spare
    when the text is tokenized again), drawn uniformly, as `text_dataset`
    splits a text at a random token."""
    path = os.path.join(folder, f"self_corpus-{count}-seed{seed}.json")
    examples = []
    if os.path.exists(path):
        with open(path) as f:
            examples = json.load(f)
    if len(examples) >= count:
        return examples[:count]
    lm = keras_hub.models.CausalLM.from_preset(preset)
    lm.compile(sampler=keras_hub.samplers.TopKSampler(k=50, seed=seed))
    tokenizer = lm.preprocessor.tokenizer
    prompts = _prompts(texts, tokenizer, count, sequence_length - target_length - 4, seed)
    print(f"self corpus: {len(examples)} of {count} examples written; the AR model writes the rest "
          f"in batches of {BATCH}.", flush=True)
    for start in range(len(examples), count, BATCH):
        batch = [p for p, _ in prompts[start : start + BATCH]]
        longest = max(n for _, n in prompts[start : start + BATCH])
        # +1: the start token; rounded up to 16, to limit recompiles.
        outputs = complete(lm, batch, max_length=-(-(longest + 1 + target_length) // 16) * 16)
        for prefix, output in zip(batch, outputs):
            (target,) = _string_list(tokenizer.detokenize(tokenizer(output)[: target_length - 1]))
            examples.append({"prefix": prefix, "target": target})
        with open(path + ".tmp", "w") as f:
            json.dump(examples, f)
        os.replace(path + ".tmp", path)  # Written whole or not at all.
        print(f"self corpus: {len(examples)} of {count}", flush=True)
    return examples[:count]


def _prompts(texts, tokenizer, count, longest, seed):
    """`count` (prompt text, token count) pairs, sorted by token count so a
    batch's prompts are about as long (the order of the examples then comes
    from the dataset's shuffle)."""
    rng = np.random.default_rng(seed)
    chosen = [texts[i] for i in rng.choice(len(texts), size=count, replace=count > len(texts))]
    prompts = []
    for text in chosen:
        ids = np.asarray(tokenizer(text))
        n = int(rng.integers(16, longest + 1))
        begin = int(rng.integers(0, max(len(ids) - n, 0) + 1))
        window = ids[begin : begin + n]
        (prompt,) = _string_list(tokenizer.detokenize(window))
        prompts.append((prompt, len(window)))
    return sorted(prompts, key=lambda p: p[1])
