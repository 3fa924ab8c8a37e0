"""Render the guides to markdown with their real outputs and pictures.

A guide is a keras-io literate `.py` file: a title block (`Title:`,
`Author:`, ...), markdown in top-level `\"\"\"` cells, code in between.
Like keras-io's `tutobooks`, this turns it into a notebook (`nbformat`),
runs it in a Jupyter kernel (`nbclient`) so that printed text and
`plt.show()` figures are captured, and writes markdown (`nbconvert`) to
`guides/md/<guide>.md`, pictures to `guides/md/<guide>_files/`.

    pip install -e ".[guides]"
    python scripts/render_guides.py                      # every guide, full mode
    python scripts/render_guides.py guides/fast_decoding.py
    KERAS_TEXTDIFF_GUIDE_FAST=1 python scripts/render_guides.py --out /tmp/md

Guides run from the repository root, as `python guides/X.py` would, and
inherit the environment (`KERAS_TEXTDIFF_GUIDE_FAST`, `KERAS_BACKEND`, ...).
The time each guide took, and on which CPU, is written under its title.
"""

import argparse
import ast
import pathlib
import re
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from results_files import cpu_description  # noqa: E402


def guide_cells(source):
    """Split a keras-io guide into `(header, cells)`.

    `header` maps the title block's keys (`Title`, `Author`, ...) to values;
    `cells` is a list of `("markdown" | "code", text)` in order.

    >>> header, cells = guide_cells('\"\"\"\\nTitle: T\\nAuthor: A\\n\"\"\"\\n\"\"\"\\n## Hi\\n\"\"\"\\nx = 1\\n')
    >>> header["Title"], cells
    ('T', [('markdown', '## Hi'), ('code', 'x = 1')])
    """
    lines = source.splitlines()
    cells, code, i = [], [], 0

    def flush_code():
        text = "\n".join(code).strip("\n")
        if text.strip():
            cells.append(("code", text))
        code.clear()

    while i < len(lines):
        if lines[i].strip() == '"""' and not lines[i].startswith((" ", "\t")):
            flush_code()
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == '"""'), None)
            if end is None:
                raise ValueError(f"An unclosed text cell starts at line {i + 1}.")
            # The string's value, as Python reads it (`\\` is one backslash).
            text = ast.literal_eval('"""\n' + "\n".join(lines[i + 1:end]) + '\n"""')
            cells.append(("markdown", text.strip("\n")))
            i = end + 1
        else:
            code.append(lines[i])
            i += 1
    flush_code()
    if not cells or cells[0][0] != "markdown" or not cells[0][1].startswith("Title:"):
        raise ValueError('A guide starts with a title block: """\\nTitle: ...\\n""".')
    header, key = {}, None
    for line in cells[0][1].splitlines():
        match = re.match(r"^([A-Z][A-Za-z ]*): ?(.*)$", line)
        if match:
            key = match.group(1)
            header[key] = match.group(2).strip()
        elif key:  # A value continued on the next line.
            header[key] += " " + line.strip()
    return header, cells[1:]


def notebook(header, cells, seconds=None):
    import nbformat

    title = [f"# {header['Title']}", ""]
    for key in ("Author", "Date created", "Last modified", "Description", "Accelerator"):
        if key in header:
            title.append(f"**{key}:** {header[key]}<br>")
    if seconds is not None:
        # Machines differ (bfloat16 is fast with Intel AMX, slow without).
        title.append(f"**Run time when rendered:** {seconds:.0f} s on {cpu_description()}<br>")
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_markdown_cell("\n".join(title))] + [
        nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        for kind, text in cells
    ]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return book


# Start-up chatter of TensorFlow/XLA's C++ logging and tqdm, not the guide's.
_NOISE = re.compile(
    r"^([IWEF]\d{4} [\d:.]+ +\d+ \S+\] |WARNING: All log messages before absl"
    r"|.*TqdmWarning: IProgress not found|  from \.autonotebook import tqdm)"
)


def _clean_outputs(book):
    """Keep what a reader should see: the text after the last carriage return
    of each line (Keras redraws its progress bars with `\\r`), without
    colour codes or the libraries' start-up log lines."""
    for cell in book.cells:
        merged = []  # A stream arrives in pieces: join those of one stream.
        for output in cell.get("outputs", []):
            if (merged and output.get("output_type") == "stream"
                    and merged[-1].get("output_type") == "stream"
                    and merged[-1]["name"] == output["name"]):
                merged[-1]["text"] += output["text"]
            else:
                merged.append(output)
        outputs = []
        for output in merged:
            if output.get("output_type") == "stream":
                text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", output["text"])
                lines = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
                output["text"] = "\n".join(line for line in lines if not _NOISE.match(line))
                if not output["text"].strip():
                    continue
            outputs.append(output)
        if cell.get("cell_type") == "code":
            cell["outputs"] = outputs


def render(guide, out_dir):
    """Run `guide` in a kernel and write `out_dir/<stem>.md` and its pictures."""
    from nbclient import NotebookClient
    from nbconvert import MarkdownExporter

    guide = pathlib.Path(guide).resolve()
    header, cells = guide_cells(guide.read_text())
    book = notebook(header, cells)
    start = time.time()
    NotebookClient(book, timeout=None, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    seconds = time.time() - start
    book.cells[0] = notebook(header, [], seconds).cells[0]
    _clean_outputs(book)
    files_dir = f"{guide.stem}_files"
    body, resources = MarkdownExporter().from_notebook_node(
        book, resources={"output_files_dir": files_dir, "unique_key": guide.stem}
    )
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in resources.get("outputs", {}).items():
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / name).write_bytes(data)
    (out_dir / f"{guide.stem}.md").write_text(body)
    return out_dir / f"{guide.stem}.md", seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("guides", nargs="*", help="guide files (default: every guides/*.py)")
    parser.add_argument("--out", default=str(ROOT / "guides" / "md"), help="output folder")
    args = parser.parse_args(argv)
    guides = args.guides or sorted(str(p) for p in (ROOT / "guides").glob("*.py"))
    for guide in guides:
        if not pathlib.Path(guide).is_file():
            sys.exit(f"render_guides: no guide file {guide!r}.")
    for guide in guides:
        path, seconds = render(guide, args.out)
        print(f"{guide}: {seconds:.0f} s -> {path}")


if __name__ == "__main__":
    main()
