"""Pictures of decoding: the denoising trajectory as a tokens x steps grid."""

import textwrap

import numpy as np

# Whitespace drawn so that one sees it.
_VISIBLE = {" ": "\u00b7", "\n": "\u21b5", "\t": "\u2192"}


def visible(token, width=8):
    """`token` as a grid cell shows it: whitespace visible, at most `width`
    characters, non-printable characters as `?`."""
    text = "".join(_VISIBLE.get(c, c if c.isprintable() else "?") for c in token)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def plot_denoising_trajectory(token_strings, path=None, title=None, max_tokens=48, caption=None):
    """Draw the target tokens (columns) at each state (rows), as a PNG or a figure.

    A cell is highlighted where the token changed since the previous state,
    so one sees the text settle as the steps go on. Whitespace is drawn
    (`·` a space, `↵` a newline); the figure is as wide as its tokens.

    Args:
        token_strings: list over states of lists of token strings (state 0
            is the start), e.g. `model.denoising_trajectory(p)["tokens"]`.
        path: where to write the PNG. `None` returns the matplotlib figure
            instead, for `plt.show()` (in a notebook) or further drawing.
        title: optional figure title.
        max_tokens: show at most this many target positions.
        caption: optional text under the grid, e.g. the final output
            (`denoising_trajectory(p)["texts"][-1]`).

    Returns:
        `path`, or the figure when `path` is `None`.

    Example:
    ```python
    t = model.denoising_trajectory("def add(a, b):")
    plot_denoising_trajectory(t["tokens"], "trajectory.png", caption=t["texts"][-1])
    figure = plot_denoising_trajectory(t["tokens"])  # then plt.show()
    ```
    """
    # pyplot's default backend: Agg on a machine without a display, inline
    # in a notebook (forcing Agg here would hide the figure there).
    import matplotlib.pyplot as plt

    if not token_strings or not any(token_strings):
        raise ValueError("`token_strings` is empty: pass at least one state with tokens.")
    states = [[visible(t) for t in row[:max_tokens]] for row in token_strings]
    num_states, width = len(states), max(len(r) for r in states)
    changed = np.zeros((num_states, width))
    for s in range(num_states):
        for t, token in enumerate(states[s]):
            changed[s, t] = s == 0 or t >= len(states[s - 1]) or token != states[s - 1][t]
    longest = max(len(t) for row in states for t in row) if width else 1
    cell = 0.12 + 0.07 * longest  # inches per column, from the longest token
    caption_lines = textwrap.wrap(caption, 100)[:4] if caption else []
    fig, ax = plt.subplots(figsize=(
        min(max(4.0, cell * width + 1.2), 40.0),
        0.32 * num_states + 1.0 + 0.2 * len(caption_lines),
    ))
    ax.imshow(changed, cmap="Oranges", vmin=0, vmax=1.6, aspect="auto")
    for s, row in enumerate(states):
        for t, text in enumerate(row):
            ax.text(t, s, text, ha="center", va="center", fontsize=7, family="monospace")
    ax.set_yticks(range(num_states), ["start"] + [f"step {i}" for i in range(1, num_states)])
    ax.set_xticks([])
    ax.set_xlabel("target position (orange: changed at this step)")
    ax.set_title(title or "Denoising trajectory")
    if caption_lines:
        fig.text(0.01, 0.01, "\n".join(caption_lines), fontsize=8, family="monospace", va="bottom")
    fig.tight_layout(rect=(0, 0.03 * len(caption_lines), 1, 1))
    if path is None:
        return fig
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
