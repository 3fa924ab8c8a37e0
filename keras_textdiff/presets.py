"""Write presets so that a failure never leaves a half-written directory."""

import contextlib
import os
import shutil
import tempfile


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


@contextlib.contextmanager
def atomic_directory(out_dir, overwrite=False):
    """Yield a temporary directory that becomes `out_dir` on success.

    The temporary directory sits next to `out_dir` (same file system, so the
    renames are atomic). If the body raises, it is removed and `out_dir` is
    left as it was: absent, empty, or (with `overwrite`) its old contents,
    which are only swapped out once everything new is written.

    Example:
    ```python
    with atomic_directory("./my_preset") as tmp:
        model.save_to_preset(tmp)
    ```
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    check_output_dir(out_dir, overwrite)
    parent, name = os.path.split(out_dir)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o777 & ~umask)  # `mkdtemp` makes it private.
        yield temporary
        check_output_dir(out_dir, overwrite)  # It may have changed meanwhile.
        if os.path.isdir(out_dir) and os.listdir(out_dir):
            # Swap: move the old directory aside, then the new one in.
            old = tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=parent)
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
