"""Which positions a denoising step rewrites: the decoding strategies.

Each rule gets, for a window of positions, the step's logits, the current
tokens, the tokens just sampled from the logits and the positions allowed to
change (`candidates`), and returns a bool `[batch, window]` of the positions
to overwrite with the samples.

- `"resample"`: every candidate (the paper's decoder, SUNDAE's plain one).
- `"argmax_unrolled"`: SUNDAE's argmax-unrolled decoding: keep the
  `keep_fraction` share of candidates whose *current* token the model finds
  most likely, resample the rest.
- `"confidence"`, `"entropy"`, `"margin"`: mask-noise decoding (MDLM, LLaDA,
  Dream): only masked candidates change; each step commits the most confident
  of them (highest sampled-token probability, lowest entropy, or largest
  top-1 minus top-2 probability), as many as keep an even pace to the last
  step, and the rest stay masked.
- `"threshold"`: Fast-dLLM's confidence-threshold parallel decoding: commit
  every masked candidate whose sampled token has probability
  >= `threshold`, at least the most confident one per step, and all that
  are left at a block's last step.
- `"left_to_right"`: threshold decoding without gaps: commit the first masked
  candidate and the masked candidates right after it while each is
  >= `threshold` and samples another token than its neighbour before it
  (all that are left at a block's last step). A token never lands to the
  right of a masked one, where a model that predicts each position from the
  one before it (shifted prediction) tends to copy it into the gap
  (`Harvard Library Library`), and two neighbours guessed in one step never
  get the same word (`Street Street`).
- `"entropy_bound"`: commit the masked candidates of lowest entropy, in
  that order, while their summed entropy (nats) stays <= `entropy_bound`;
  at least the surest one per step, and all that are left at a block's last
  step. A step commits many tokens where the model is sure of each, few
  where it hesitates (the entropy-bounded acceptance of DiffusionGemma and
  of "Accelerated Sampling from Masked Diffusion Models via Entropy
  Bounded Unmasking").

With `stop_token_ids`, the mask strategies commit a stop token (end or
padding) only once no masked position before it would get content, so that
an output's length follows its content: a short answer's end token is
otherwise often the most confident guess while the answer is still masked,
and cuts it off. A sampled stop token's confidence (and entropy) counts the
stop ids as one outcome: the output ends there, whichever of them it is.
"""

from keras import ops

STRATEGIES = (
    "resample", "argmax_unrolled", "confidence", "entropy", "margin", "threshold",
    "left_to_right", "entropy_bound",
)
MASK_STRATEGIES = ("confidence", "entropy", "margin", "threshold", "left_to_right", "entropy_bound")


def _top_k(scores, candidates, k):
    """Mark the `k[row]` highest-scoring candidates of each row."""
    scores = ops.where(candidates, scores, -1e30)
    order = ops.argsort(-scores, axis=-1)
    rank = ops.argsort(order, axis=-1)  # rank[i] = place of position i
    return ops.logical_and(candidates, rank < k[:, None])


def _count(mask):
    return ops.sum(ops.cast(mask, "int32"), axis=-1)


def is_stop(token_ids, stop_token_ids):
    """Where `token_ids` hold one of `stop_token_ids` (end, padding): bool,
    the shape of `token_ids`."""
    stop_ids = ops.convert_to_tensor(list(stop_token_ids), "int32")
    return ops.any(ops.cast(token_ids, "int32")[..., None] == stop_ids, axis=-1)


def select(
    strategy,
    logits,
    tokens,
    samples,
    candidates,
    steps_left,
    mask_token_id=None,
    keep_fraction=0.5,
    threshold=0.9,
    stop_token_ids=None,
    entropy_bound=1.0,
):
    """Positions to overwrite with `samples` (bool `[batch, window]`).

    Args:
        strategy: one of `STRATEGIES`.
        logits: float `[batch, window, vocab]`, any float dtype.
        tokens: int `[batch, window]`, the step's input tokens.
        samples: int `[batch, window]`, tokens drawn from `logits`.
        candidates: bool `[batch, window]`, positions allowed to change.
        steps_left: int scalar >= 1, steps left in this block, this one
            included (paces the mask strategies).
        mask_token_id: int, for the mask strategies.
        keep_fraction: float in `[0, 1]`, for `"argmax_unrolled"`.
        threshold: float in `(0, 1]`, for `"threshold"` and `"left_to_right"`.
        entropy_bound: float > 0, nats, for `"entropy_bound"`.
        stop_token_ids: ids or `None`, for the mask strategies: a sampled
            stop token is committed only when every masked position before
            it also samples a stop token (or at a block's last step).
    """
    if strategy == "resample":
        return candidates
    probs = ops.softmax(ops.cast(logits, "float32"), axis=-1)
    if strategy == "argmax_unrolled":
        current = ops.take_along_axis(probs, tokens[..., None], axis=-1)[..., 0]
        keep = ops.cast(
            ops.floor(keep_fraction * ops.cast(_count(candidates), "float32")), "int32"
        )
        return ops.logical_and(candidates, ~_top_k(current, candidates, keep))
    # Mask strategies: only masked positions are still undecided.
    masked = ops.logical_and(candidates, tokens == mask_token_id)
    last_step = steps_left <= 1
    ready = masked
    chosen = ops.take_along_axis(probs, samples[..., None], axis=-1)[..., 0]
    if stop_token_ids:
        stop_ids = ops.convert_to_tensor(stop_token_ids, "int32")
        stopped = is_stop(samples, stop_token_ids)
        # A stop token waits while a masked position before it would still
        # get content: then the content, not the stop, decides the length.
        content = ops.cast(ops.logical_and(masked, ~stopped), "int32")
        content_before = ops.cumsum(content, axis=-1) - content
        ready = ops.logical_and(masked, ops.logical_or(~stopped, content_before == 0))
        ready = ops.logical_or(ready, ops.logical_and(masked, last_step))
        # Which stop token a position gets does not matter (the output ends
        # there either way), so a sampled stop is as sure as the model is
        # that the output has ended: the stop ids' summed probability. A
        # model that spreads the padding after an answer over its end and
        # padding tokens (0.5 each) is then sure of it, and threshold
        # decoding fills it in one step instead of one position a step.
        stop_probs = ops.take(probs, stop_ids, axis=-1)
        chosen = ops.where(stopped, ops.sum(stop_probs, axis=-1), chosen)
    if strategy == "threshold":
        # At least the best one; everything at a block's last step.
        best = _top_k(chosen, ready, ops.ones_like(_count(ready)))
        sure = ops.logical_or(chosen >= threshold, last_step)
        return ops.logical_or(ops.logical_and(ready, sure), best)
    if strategy == "left_to_right":
        # The first masked position, then each masked one while every masked
        # position from the first up to it is sure: a run without gaps.
        first = ops.logical_and(masked, ops.cumsum(ops.cast(masked, "int32"), axis=-1) == 1)
        # Two neighbours guessed in one step saw neither's token; the same
        # word sampled at both is the parallel-decoding copy (`Street
        # Street`), so the run ends before the second. Next step it is the
        # first masked position, predicted from the token now before it.
        # A run of stop tokens (the padding after an answer) is no copy.
        repeat = ops.logical_and(samples[:, 1:] == samples[:, :-1], masked[:, :-1])
        if stop_token_ids:
            repeat = ops.logical_and(repeat, ~stopped[:, 1:])
        repeat = ops.pad(ops.cast(repeat, "int32"), [[0, 0], [1, 0]]) > 0
        sure = ops.logical_and(ready, ops.logical_and(chosen >= threshold, ~repeat))
        sure = ops.logical_or(sure, first)
        unsure = ops.cast(ops.logical_and(masked, ~sure), "int32")
        run = ops.logical_and(masked, ops.cumsum(unsure, axis=-1) == 0)
        return ops.logical_or(run, ops.logical_and(ready, last_step))
    if strategy == "entropy_bound":
        entropy = -ops.sum(probs * ops.log(probs + 1e-10), axis=-1)
        if stop_token_ids:  # The stop ids as one outcome, as above.
            merged = entropy + ops.sum(stop_probs * ops.log(stop_probs + 1e-10), axis=-1)
            merged = merged - chosen * ops.log(chosen + 1e-10)
            entropy = ops.where(stopped, merged, entropy)
        # Ready positions by entropy, surest first; the summed entropy of
        # each one and all surer ones decides (others count as infinite).
        entropy = ops.where(ready, entropy, 1e30)
        order = ops.argsort(entropy, axis=-1)
        summed = ops.cumsum(ops.take_along_axis(entropy, order, axis=-1), axis=-1)
        rank = ops.argsort(order, axis=-1)
        within = ops.take_along_axis(summed, rank, axis=-1) <= entropy_bound
        best = ops.logical_and(ready, rank == 0)
        return ops.logical_or(ops.logical_and(ready, ops.logical_or(within, last_step)), best)
    if strategy == "confidence":
        score = chosen
    elif strategy == "entropy":
        score = ops.sum(probs * ops.log(probs + 1e-10), axis=-1)  # -entropy
    elif strategy == "margin":
        # Top-1 minus top-2 without a sort (`top_k` is slow on CPU).
        top = ops.argmax(probs, axis=-1)
        is_top = ops.arange(ops.shape(probs)[-1]) == top[..., None]
        second = ops.max(ops.where(is_top, -1.0, probs), axis=-1)
        score = ops.max(probs, axis=-1) - second
    else:
        raise ValueError(f"Unknown strategy {strategy!r}; one of {STRATEGIES}.")
    # An even pace: ceil(masked / steps left) per step, all by the last.
    left = ops.maximum(ops.cast(steps_left, "int32"), 1)
    k = (_count(masked) + left - 1) // left
    return _top_k(score, ready, k)
