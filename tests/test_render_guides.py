"""scripts/render_guides.py: a guide's cells are its code and prose, in order,
and rendering runs them in a kernel and keeps their outputs and pictures."""

import ast
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).parents[1]
GUIDES = sorted((ROOT / "guides").glob("*.py"))
spec = importlib.util.spec_from_file_location("render_guides", ROOT / "scripts" / "render_guides.py")
render_guides = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_guides)


def _statements(tree):
    """Top-level statements without the prose (bare string expressions)."""
    return [
        ast.unparse(node) for node in tree.body
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str))
    ]


@pytest.mark.parametrize("guide", GUIDES, ids=[g.stem for g in GUIDES])
def test_the_cells_hold_the_guides_whole_code_and_its_prose(guide):
    source = guide.read_text()
    header, cells = render_guides.guide_cells(source)
    assert header["Title"] and header["Description"] and header["Accelerator"]
    code = "\n\n".join(text for kind, text in cells if kind == "code")
    assert _statements(ast.parse(code)) == _statements(ast.parse(source))
    prose = [text for kind, text in cells if kind == "markdown"]
    strings = [
        node.value.value.strip("\n") for node in ast.parse(source).body
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    ]
    assert prose == strings[1:]  # The first string is the title block.


def test_a_guide_without_a_title_block_is_refused():
    with pytest.raises(ValueError, match="title block"):
        render_guides.guide_cells('x = 1\n"""\n## Hi\n"""\n')
    with pytest.raises(ValueError, match="unclosed"):
        render_guides.guide_cells('"""\nTitle: T\n"""\n"""\n## Hi\n')


TINY_GUIDE = '''"""
Title: A tiny guide
Author: tests
Description: Prints, redraws a line, logs like TensorFlow, and draws.
Accelerator: None
"""

"""
## Printing
"""

import sys
print("printed", 6 * 7)
print("step" + " one\\rstep" + " two")
print("I0000 00:00:1796121278.396486    4812 port.cc:153] one" + "DNN custom operations", file=sys.stderr)

"""
## Drawing
"""

import matplotlib.pyplot as plt
plt.plot([0, 1], [1, 0])
plt.show()
'''


def test_rendering_keeps_outputs_and_pictures_and_drops_log_noise(tmp_path):
    guide = tmp_path / "tiny_guide.py"
    guide.write_text(TINY_GUIDE)
    path, seconds = render_guides.render(guide, tmp_path / "md")
    text = path.read_text()
    assert text.startswith("# A tiny guide\n")
    assert "printed 42" in text and "step two" in text
    assert "step one" not in text and "oneDNN" not in text
    pictures = list((tmp_path / "md" / "tiny_guide_files").glob("*.png"))
    assert len(pictures) == 1 and pictures[0].name in text
    assert f"**Run time when rendered:** {seconds:.0f} s on CPU (" in text
    assert text.index("## Printing") < text.index("printed 42") < text.index("## Drawing")
