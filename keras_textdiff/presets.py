"""Write presets so that a failure never leaves a half-written directory."""

import contextlib
import os
import shutil
import tempfile


def check_output_dir(out_dir, overwrite=False):
    """Refuse a non-empty `out_dir` unless `overwrite`, before any work."""
    if os.path.isfile(out_dir):
        raise ValueError(f"{out_dir!r} is a file; pass a directory path.")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise ValueError(
            f"{out_dir!r} already exists and is not empty. Pass another "
            "directory, or `overwrite=True` (`--overwrite`) to replace it."
        )


@contextlib.contextmanager
def atomic_directory(out_dir, overwrite=False):
    """Yield a temporary directory that becomes `out_dir` on success.

    The temporary directory sits next to `out_dir` (same file system, so the
    final rename is atomic) and is removed if the body raises; `out_dir` is
    only replaced once everything is written.

    Example:
    ```python
    with atomic_directory("./my_preset") as tmp:
        model.save_to_preset(tmp)
    ```
    """
    out_dir = os.path.abspath(out_dir)
    check_output_dir(out_dir, overwrite)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.tmp-", dir=parent)
    try:
        yield tmp
        if os.path.isdir(out_dir):
            shutil.rmtree(out_dir)
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_preset(model, out_dir, overwrite=False):
    """`model.save_to_preset(out_dir)`, atomically (see `atomic_directory`)."""
    with atomic_directory(out_dir, overwrite) as tmp:
        model.save_to_preset(tmp)
    return out_dir
