"""Check paths before any work; write presets so that a failure never leaves
a half-written directory."""

import contextlib
import json
import os
import re
import shutil
import tempfile


def check_writable(path):
    """Raise if `path` (a directory, existing or to be made) cannot be written.

    The nearest existing directory at or above `path` is tried by creating
    (and removing) a file in it: this answers for permissions, read-only
    file systems and pseudo file systems alike, where `os.access` can be
    wrong (e.g. for root).

    Raises:
        ValueError: naming `path` and what to do.
    """
    path = os.path.abspath(os.fspath(path))
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(
            f"'{path}' cannot be made: '{existing}' is a file, not a "
            "directory. Pass another path."
        )
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".textdiff-write-check-"):
            pass
    except OSError as error:
        raise ValueError(
            f"'{path}' cannot be written: '{existing}' refuses new files "
            f"({error.strerror}). Pass a path you may write to, or change "
            "its permissions."
        ) from error


def check_output_file(path):
    """Raise unless `path` is a file that can be (re)written, before any work.

    Its directory must exist: a mistyped directory is reported, not made.

    Raises:
        ValueError: naming `path` and what to do.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise ValueError(f"'{path}' is a directory. Pass the path of a file.")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ValueError(
            f"Cannot write '{path}': the directory '{parent}' does not exist. "
            "Create it, or pass a path in an existing directory."
        )
    check_writable(parent)


def check_output_dir(out_dir, overwrite=False):
    """Refuse a non-empty `out_dir` unless `overwrite`, before any work."""
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(
            f"'{out_dir}' exists and is not a directory. Pass the path of a "
            "new or empty directory."
        )
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise ValueError(
            f"'{out_dir}' already exists and is not empty. Pass another "
            "directory, or `overwrite=True` (`--overwrite`) to replace it."
        )
    # The preset is written next to `out_dir`, then renamed.
    check_writable(os.path.dirname(os.path.abspath(os.fspath(out_dir))))


def check_preset(preset):
    """Check a local preset's files before loading it: one clear error each.

    A `preset` that is not a local path (a `kaggle://` or `hf://` handle, or
    a keras-hub preset name) is left to keras-hub. A local one must be a
    directory with a `config.json` (a keras-hub preset or a Hugging Face
    folder); its JSON files must parse, and its weights files
    (`*.weights.h5`, `*.safetensors`) must open. This catches a truncated
    copy or an interrupted download before any work, where keras-hub or h5py
    would fail later and without naming the file.

    Raises:
        FileNotFoundError: no such local path.
        ValueError: naming the file at fault and what to do.
    """
    preset = os.fspath(preset)
    if not os.path.exists(preset):
        is_path = os.path.sep in preset or preset.startswith((".", "~"))
        if is_path and "://" not in preset:
            raise FileNotFoundError(
                f"No preset directory at '{preset}'. Pass a directory saved "
                "with `save_to_preset()`, or a `kaggle://` / `hf://` handle."
            )
        return  # A handle or a keras-hub preset name.
    if not os.path.isdir(preset):
        hint = (
            " Import a GGUF file first: `textdiff import-gguf FILE --out DIR`."
            if preset.endswith(".gguf")
            else ""
        )
        raise ValueError(
            f"'{preset}' is a file; a preset is a directory (with a "
            f"config.json).{hint}"
        )
    names = sorted(os.listdir(preset))
    if "config.json" not in names:
        raise ValueError(
            f"'{preset}' is not a preset: it has no config.json. Pass a "
            "directory saved with `save_to_preset()` (or a Hugging Face "
            "model folder)."
        )
    damaged = "The preset is damaged (an interrupted copy or save?): save or copy it again."
    for name in names:
        path = os.path.join(preset, name)
        if name.endswith(".json"):
            try:
                with open(path, encoding="utf-8") as f:
                    json.load(f)
            except ValueError as error:  # Not UTF-8, or not JSON.
                raise ValueError(f"'{path}' is not valid JSON ({error}). {damaged}") from None
        elif name.endswith(".weights.h5"):
            import h5py

            try:
                h5py.File(path, "r").close()
            except OSError as error:
                raise ValueError(f"'{path}' cannot be read ({error}). {damaged}") from None
        elif name.endswith(".safetensors"):
            from safetensors import safe_open

            try:
                with safe_open(path, "np"):
                    pass
            except Exception as error:  # safetensors' errors have no common base.
                raise ValueError(f"'{path}' cannot be read ({error}). {damaged}") from None


@contextlib.contextmanager
def atomic_directory(out_dir, overwrite=False):
    """Yield a temporary directory that becomes `out_dir` on success.

    The temporary directory sits next to `out_dir` (same file system, so the
    renames are atomic). If the body raises, it is removed and `out_dir` is
    left as it was: absent, empty, or (with `overwrite`) its old contents,
    which are only swapped out once everything new is written. What a
    killed save of `out_dir` left beside it is cleaned up first (see
    `remove_stale_temporaries`).

    Example:
    ```python
    with atomic_directory("./my_preset") as tmp:
        model.save_to_preset(tmp)
    ```
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    remove_stale_temporaries(out_dir)  # First: it may put `out_dir` back.
    check_output_dir(out_dir, overwrite)
    parent, name = os.path.split(out_dir)
    os.makedirs(parent, exist_ok=True)
    # The process id in the name tells a killed save's leftovers (removed by
    # the next save) from a running one's.
    prefix = f".{name}.{os.getpid()}-"
    temporary = tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o777 & ~umask)  # `mkdtemp` makes it private.
        yield temporary
        check_output_dir(out_dir, overwrite)  # It may have changed meanwhile.
        if os.path.isdir(out_dir) and os.listdir(out_dir):
            # Swap: move the old directory aside, then the new one in.
            old = tempfile.mkdtemp(prefix=prefix, suffix=".old", dir=parent)
            os.rmdir(old)
            os.rename(out_dir, old)
            try:
                os.rename(temporary, out_dir)
            except BaseException:
                os.rename(old, out_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(temporary, out_dir)  # Replaces an empty directory.
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def remove_stale_temporaries(out_dir):
    """Clean up what a killed `atomic_directory(out_dir)` left beside it.

    A `.{name}.*.tmp` directory is a half-written result: removed. A
    `.{name}.*.old` one is the previous `out_dir`, moved aside for the swap:
    put back if `out_dir` is missing (the kill came between the two
    renames), removed otherwise. Those of a process still running (a save
    under way) are left alone.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    parent, name = os.path.split(out_dir)
    if not os.path.isdir(parent):
        return
    # `tempfile.mkdtemp` names: prefix, 8 random characters, suffix.
    pattern = re.compile(rf"\.{re.escape(name)}\.(?:(\d+)-)?[a-z0-9_]{{8}}\.(tmp|old)")
    stale = {"tmp": [], "old": []}
    for entry in sorted(os.listdir(parent)):
        match = pattern.fullmatch(entry)
        if match and not _is_running(match.group(1)):
            stale[match.group(2)].append(os.path.join(parent, entry))
    for old in stale["old"]:
        if not os.path.lexists(out_dir):
            os.rename(old, out_dir)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for temporary in stale["tmp"]:
        shutil.rmtree(temporary, ignore_errors=True)


def _is_running(pid):
    """Whether process `pid` (a string, or `None`: unknown) runs, other than this one."""
    if pid is None or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # It exists, under another user.
        return True
    return True


def save_preset(model, out_dir, overwrite=False):
    """`model.save_to_preset(out_dir)`, atomically (see `atomic_directory`).

    A model that computes in a mixed precision policy (`"mixed_bfloat16"`)
    is saved under its weights' dtype policy (`"float32"`), see
    `saved_dtype_policy`.

    Returns:
        `out_dir`, as an absolute path.
    """
    with atomic_directory(out_dir, overwrite) as temporary:
        with saved_dtype_policy(model):
            model.save_to_preset(temporary)
    return os.path.abspath(os.fspath(out_dir))


@contextlib.contextmanager
def saved_dtype_policy(model):
    """Give `model`'s backbone its weights' dtype policy, inside the context.

    keras-hub (0.32) saves a backbone's dtype policy in the preset and
    cannot load a preset that names a mixed one (`"mixed_bfloat16"`: an
    "Invalid dtype" error). A mixed precision model's weights are float32,
    and the policy to compute in is chosen when loading
    (`keras.config.set_dtype_policy`), so it is saved as `"float32"`. Other
    policies are left as they are.

    Example:
    ```python
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = keras_textdiff.DiffusionDecoder.from_preset("./preset")
    model.fit(...)
    with saved_dtype_policy(model):
        model.save_to_preset("./tuned")  # Loads in any float policy.
    ```
    """
    backbone = getattr(model, "backbone", model)
    policy = backbone.dtype_policy
    mixed = (
        policy.quantization_mode is None
        and policy.compute_dtype != policy.variable_dtype
    )
    if not mixed:
        yield
        return
    backbone.dtype_policy = policy.variable_dtype
    try:
        yield
    finally:
        backbone.dtype_policy = policy
