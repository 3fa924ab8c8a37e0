"""`plot_denoising_trajectory`: a readable picture, sized to its content."""

import pytest

from keras_textdiff.visualization import plot_denoising_trajectory
from keras_textdiff.visualization import visible


def test_whitespace_is_drawn_and_long_tokens_are_cut():
    assert visible(" the\n") == "\u00b7the\u21b5"
    assert visible("\tx") == "\u2192x"
    assert visible("abcdefghijk") == "abcdefg\u2026"
    assert visible("a\x00b") == "a?b"


def test_the_picture_is_as_wide_as_its_tokens(tmp_path):
    from PIL import Image

    narrow = plot_denoising_trajectory([["<mask>"] * 4, ["a", " b", "\n", "c"]], tmp_path / "n.png")
    wide = plot_denoising_trajectory([["<mask>"] * 30, ["word"] * 30], tmp_path / "w.png",
                                     caption="Output: 'word word'")
    assert Image.open(wide).size[0] > 2 * Image.open(narrow).size[0]


def test_an_empty_trajectory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        plot_denoising_trajectory([[]], tmp_path / "e.png")


def test_without_a_path_the_figure_is_returned_and_matches_the_png(tmp_path):
    import matplotlib.figure
    import matplotlib.pyplot as plt

    states = [["<mask>"] * 3, ["a", " b", "c"]]
    figure = plot_denoising_trajectory(states, caption="ab c")
    assert isinstance(figure, matplotlib.figure.Figure)
    saved = plot_denoising_trajectory(states, tmp_path / "t.png", caption="ab c")
    from PIL import Image

    assert tuple(figure.get_size_inches() * 120) == pytest.approx(Image.open(saved).size, abs=1)
    plt.close(figure)
