"""Stimuli from your own files: a folder or a glob of images or sounds, with labels from a CSV or from sub-folders.

Images (PNG, JPEG) are centre-cropped square and resized to the model's input, as the built-in photos are. Sounds
(WAV, FLAC, OGG) are mixed to mono, resampled to the model's rate and cut or padded to its clip length around their
loudest part, so that a word sits in the middle of the clip as the built-in words do.

Labels, one per file:

* ``"folders"``: the name of the sub-folder each file is in (``cats/tabby.jpg`` is a ``cats``);
* a CSV file with the columns ``file`` (a path relative to the folder, or a file name) and ``label``;
* ``None``: no labels; the generating model's label of each stimulus is then the reference, as for the built-in ones.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "IMAGE_SUFFIXES",
    "SOUND_SUFFIXES",
    "StimulusFileError",
    "StimulusFiles",
    "find_stimulus_files",
    "full_image_files",
    "load_image_files",
    "load_sound_files",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SOUND_SUFFIXES = (".wav", ".flac", ".ogg")


class StimulusFileError(ValueError):
    """Stimulus files that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class StimulusFiles:
    """Files of one kind found for a stimulus source, with their names and labels.

    Attributes
    ----------
    kind : {"image", "audio"}
        What the files hold.
    paths : tuple of Path
        The files, sorted by their path under the source.
    names : tuple of str
        A unique name per file (its path under the source without the suffix, ``/`` as ``-``): the stimulus names
        of the run, its media and its report.
    labels : tuple of str, optional
        One label per file, or None.
    """

    kind: str
    paths: tuple[Path, ...]
    names: tuple[str, ...]
    labels: tuple[str, ...] | None

    def digest(self) -> str:
        """A hash of the files' contents, names and labels: the same files give the same digest anywhere."""
        h = hashlib.sha256()
        for name, path in zip(self.names, self.paths, strict=True):
            h.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        h.update(repr(self.labels).encode())
        return h.hexdigest()


def _root_and_files(source: str | Path) -> tuple[Path, list[Path]]:
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return path, sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(Path(text).expanduser()), recursive=True) if Path(p).is_file())
        root = Path(glob.escape(text).split("*")[0]).expanduser()
        while not root.is_dir():
            root = root.parent
        return root, files
    if path.is_file():
        return path.parent, [path]
    raise StimulusFileError(f"no folder or files at {text!r}: give a folder, a glob such as 'photos/*.jpg', or a file.")


def _names(root: Path, paths: Sequence[Path]) -> tuple[str, ...]:
    names = []
    for p in paths:
        rel = p.relative_to(root) if p.is_relative_to(root) else Path(p.name)
        names.append(re.sub(r"[^A-Za-z0-9_.-]+", "-", str(rel.with_suffix("")).replace("/", "-")))
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise StimulusFileError(f"two files would share the stimulus name {', '.join(twice)}; rename one of them.")
    return tuple(names)


def _labels(root: Path, paths: Sequence[Path], labels: str | Path | None) -> tuple[str, ...] | None:
    if labels is None:
        return None
    if str(labels) == "folders":
        out = []
        for p in paths:
            rel = p.relative_to(root) if p.is_relative_to(root) else p
            if len(rel.parts) < 2:
                raise StimulusFileError(
                    f"labels = 'folders', but {p} is not in a sub-folder of {root}; put each file in a folder named "
                    "for its label, or give a CSV of labels."
                )
            out.append(rel.parts[0])
        return tuple(out)
    table = Path(labels).expanduser()
    if not table.is_file():
        raise StimulusFileError(f"no label file {table}: give a CSV with columns file,label, or 'folders'.")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise StimulusFileError(f"{table} must be a CSV with a header row naming the columns file and label.")
    by_file = {r["file"].strip(): r["label"].strip() for r in rows}
    out, missing = [], []
    for p in paths:
        rel = str(p.relative_to(root)) if p.is_relative_to(root) else p.name
        label = by_file.get(rel, by_file.get(p.name))
        if label is None:
            missing.append(rel)
        out.append(label or "")
    if missing:
        raise StimulusFileError(f"{table} gives no label for {', '.join(missing[:5])}; add a row per file.")
    return tuple(out)


def find_stimulus_files(source: str | Path, labels: str | Path | None = None) -> StimulusFiles:
    """The image or sound files of ``source`` (a folder, searched recursively; a glob; or one file), with labels.

    Raises
    ------
    StimulusFileError
        When nothing usable is there, when images and sounds are mixed, or when a label is missing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from metamers.stimuli import save_png
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = save_png(torch.rand(3, 8, 8), d / "cats" / "tabby.png")
    >>> found = find_stimulus_files(d, labels="folders")
    >>> found.kind, found.names, found.labels
    ('image', ('cats-tabby',), ('cats',))
    """
    root, files = _root_and_files(source)
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    sounds = [p for p in files if p.suffix.lower() in SOUND_SUFFIXES]
    if images and sounds:
        raise StimulusFileError(
            f"{source} mixes images ({images[0].name}, ...) and sounds ({sounds[0].name}, ...); give one kind, e.g. "
            f"a glob such as '{Path(str(source)) / '**' / '*.png'}'."
        )
    paths = images or sounds
    if not paths:
        seen = ", ".join(sorted({p.suffix or p.name for p in files})[:6]) or "nothing"
        raise StimulusFileError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) or sounds ({', '.join(SOUND_SUFFIXES)}) in {source} "
            f"(found: {seen})."
        )
    return StimulusFiles(
        "image" if images else "audio", tuple(paths), _names(root, paths), _labels(root, paths, labels)
    )


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise StimulusFileError(f"cannot read the image {path}: {e}. Replace or remove the file.") from e


def load_image_files(found: StimulusFiles, size: int) -> torch.Tensor:
    """The images as a batch ``(N, 3, size, size)`` in [0, 1], centre-cropped square and resized.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from metamers.stimuli import save_png
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = save_png(torch.rand(3, 30, 40), d / "a.png")
    >>> load_image_files(find_stimulus_files(d), 16).shape
    torch.Size([1, 3, 16, 16])
    """
    from metamers.stimuli.images import to_image_tensor

    return torch.stack([to_image_tensor(_read_image(p), size) for p in found.paths])


def full_image_files(found: StimulusFiles) -> list[torch.Tensor]:
    """The images at their own size, ``(3, H, W)`` in [0, 1] each: the source of a null's augmented views."""
    images = (_read_image(p).astype(np.float32) / 255 for p in found.paths)
    return [torch.from_numpy(img).permute(2, 0, 1).contiguous() for img in images]


def _centre(x: torch.Tensor, n: int, sr: int) -> torch.Tensor:
    """``x`` as ``n`` samples with its sound in the middle: the span above -40 dB of its loudest 10 ms, centred and
    zero-padded; a span longer than ``n`` gives the ``n`` samples that hold the most energy."""
    win = max(1, sr // 100)
    env = torch.nn.functional.avg_pool1d((x * x).view(1, 1, -1), win, stride=1, ceil_mode=True).flatten()
    active = torch.nonzero(env >= env.max() * 1e-4).flatten()
    first, last = int(active[0]), min(int(active[-1]) + win, x.numel())
    if last - first > n:
        energy = torch.cat([torch.zeros(1, dtype=x.dtype), (x * x).cumsum(0)])
        first = int((energy[n:] - energy[:-n]).argmax())
        return x[first : first + n].clone()
    out = torch.zeros(n)
    start = (n - (last - first)) // 2
    out[start : start + last - first] = x[first:last]
    return out


def load_sound_files(found: StimulusFiles, n_samples: int, sr: int, rms_level: float | None = 0.05) -> torch.Tensor:
    """The sounds as a batch ``(N, n_samples)``: mono, at ``sr`` Hz, centred, at ``rms_level`` RMS (the built-in
    clips' 0.05; None: as recorded).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from metamers.audio.signal import write_wav
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_wav(d / "a.wav", 0.1 * torch.randn(8000), 16000)
    >>> load_sound_files(find_stimulus_files(d), 20000, 20000).shape
    torch.Size([1, 20000])
    """
    import soundfile

    from metamers.audio.signal import read_wav, set_rms

    out = []
    for path in found.paths:
        try:
            x = read_wav(path, sr)
        except (RuntimeError, soundfile.LibsndfileError, OSError) as e:
            raise StimulusFileError(f"cannot read the sound {path}: {e}. Replace or remove the file.") from e
        if not torch.isfinite(x).all() or float(x.abs().max()) == 0.0:
            raise StimulusFileError(f"the sound {path} is silent or holds non-finite samples.")
        x = _centre(x, n_samples, sr)
        out.append(set_rms(x, rms_level) if rms_level is not None else x)
    return torch.stack(out).clamp(-1, 1)
