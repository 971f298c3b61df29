"""Files that are whole or absent: the one atomic write, and damaged files (named, set aside, never deleted, and
made again)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DamagedFile", "atomic_path", "atomic_write", "safetensors_problem", "set_aside"]


@contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it becomes ``path`` in one rename when the block ends, so a crash
    at any moment leaves the old file or the new one, never a torn one (and a failed write leaves no temporary file).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(p) as tmp:
    ...     _ = tmp.write_text("whole")
    >>> p.read_text(), sorted(x.name for x in p.parent.iterdir())
    ('whole', ['a.txt'])
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (:func:`atomic_path`) and return its path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


class DamagedFile(ValueError):
    """A file that exists but cannot be read (truncated, overwritten, not written by metamers).

    Attributes
    ----------
    path : Path
        The damaged file.
    """

    def __init__(self, path: str | os.PathLike, why: object, fix: str) -> None:
        self.path = Path(path)
        why = str(why).splitlines()[0] if str(why) else type(why).__name__
        super().__init__(f"{self.path} is damaged ({why}); {fix}")


def set_aside(path: str | os.PathLike) -> Path:
    """Rename a damaged file to ``<name>.corrupt`` (``.corrupt.1``, ... when taken) so that it is made again.

    Returns
    -------
    Path
        Where the file now is.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.safetensors"
    >>> _ = p.write_bytes(b"xx")
    >>> set_aside(p).name, p.exists()
    ('a.safetensors.corrupt', False)
    """
    path = Path(path)
    target, k = path.with_name(path.name + ".corrupt"), 0
    while target.exists():
        k += 1
        target = path.with_name(f"{path.name}.corrupt.{k}")
    os.replace(path, target)
    return target


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """Why a ``.safetensors`` file cannot be read, or None when its header and size are sound (cheap: the tensors
    are not read; safetensors checks that the file is as long as its header says).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.safetensors"
    >>> _ = p.write_bytes(b"\\x10\\x00\\x00\\x00\\x00\\x00\\x00\\x00{")
    >>> safetensors_problem(p) is None
    False
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.metadata()
    except Exception as e:  # safetensors' errors have no common class
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None


def media_problem(path: str | os.PathLike) -> str | None:
    """Why a media file (PNG or WAV) cannot be read, from its header and structure; None when it reads."""
    path = Path(path)
    try:
        if path.suffix == ".png":
            from PIL import Image

            with Image.open(path) as im:
                im.verify()
        elif path.suffix == ".wav":
            import soundfile

            info = soundfile.info(str(path))
            if info.frames < 1:
                return "it holds no samples"
    except Exception as e:  # PIL and libsndfile raise many kinds: any is a file that does not read
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else 'unreadable'}"
    return None


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in 1 MiB pieces (weight files are large).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "w"
    >>> _ = p.write_bytes(b"abc")
    >>> sha256_file(p)[:12]
    'ba7816bf8f01'
    """
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
