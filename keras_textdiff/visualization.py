"""Pictures of decoding: the denoising trajectory as a tokens x steps grid."""

import numpy as np


def plot_denoising_trajectory(token_strings, path, title=None, max_tokens=48):
    """Save a PNG grid of the target tokens (columns) at each step (rows).

    A cell is highlighted where the token changed since the previous step, so
    one sees the text settle as the steps go on.

    Args:
        token_strings: list over steps of lists of token strings (step 0 is
            the random start).
        path: where to write the PNG.
        title: optional figure title.
        max_tokens: show at most this many target positions.

    Returns:
        `path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [row[:max_tokens] for row in token_strings]
    num_steps, width = len(steps), max(len(r) for r in steps)
    changed = np.zeros((num_steps, width))
    for s in range(num_steps):
        for t, token in enumerate(steps[s]):
            changed[s, t] = s == 0 or t >= len(steps[s - 1]) or token != steps[s - 1][t]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * width), 0.45 * num_steps + 1.2))
    ax.imshow(changed, cmap="Oranges", vmin=0, vmax=1.6, aspect="auto")
    for s, row in enumerate(steps):
        for t, token in enumerate(row):
            text = token.replace("\n", "\\n").replace("\t", "\\t")
            text = "".join(c if c.isprintable() else "?" for c in text)[:6]
            ax.text(t, s, text, ha="center", va="center", fontsize=6, family="monospace")
    ax.set_yticks(range(num_steps), ["init"] + [f"step {i}" for i in range(1, num_steps)])
    ax.set_xlabel("target position (orange: changed at this step)")
    ax.set_title(title or "Denoising trajectory")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
