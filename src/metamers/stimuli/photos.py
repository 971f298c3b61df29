"""Photographs that Debian packages install: GCompris' photographs and Tux Paint's photographic stamps.

The catalogue (``photos.tsv`` beside this module) lists each photograph with the package it comes from, its path in
the package, a hash prefix of its bytes, what it shows, its category in the 16-way task of Geirhos et al. (2018) where
it has one, and its copyright holder and license as the package's Debian copyright file gives them.  Nothing is
downloaded: a missing package is a :class:`PhotoSourceMissing` naming the ``apt-get install`` line.

GCompris keeps its pictures inside Qt resource files (``/usr/share/gcompris-qt/rcc/*.rcc``), read here directly.
Tux Paint's stamps are RGBA cut-outs: they are composited, centred, onto a square mid-grey (0.5) canvas, so the same
file always gives the same picture and a centre crop keeps the whole object.

Examples
--------
>>> PHOTO_IMAGES["gc_chair"][:2], PHOTO_IMAGES["tp_crow"][:2]
(('chair', 'chair'), ('a crow', 'bird'))
>>> read_photo("tp_crow").shape[2], read_photo("tp_crow").dtype.name
(3, 'uint8')
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "PACKAGES",
    "PHOTO_IMAGES",
    "PhotoSourceMissing",
    "composite",
    "human_name",
    "photo_location",
    "read_photo",
    "require_photo_source",
    "source_dir",
]

# package -> (where it installs, environment variable that overrides that, a file it must have, version catalogued)
PACKAGES: dict[str, tuple[Path, str, str, str]] = {
    "gcompris-qt-data": (Path("/usr/share/gcompris-qt/rcc"), "METAMERS_GCOMPRIS_DIR", "categorization.rcc", "3.1-2"),
    "tuxpaint-stamps-default": (
        Path("/usr/share/tuxpaint/stamps"),
        "METAMERS_TUXPAINT_DIR",
        "animals/birds/crow.png",
        "2022.06.04-1",
    ),
}
BACKGROUND = 0.5
"""Grey level (in [0, 1]) that transparent stamps are composited onto."""


class PhotoSourceMissing(RuntimeError):
    """A Debian package that holds catalogued photographs is not installed (or not where it should be)."""


def _catalogue() -> tuple[dict[str, tuple[str, str | None, str]], dict[str, tuple[str, str, str]]]:
    images, where = {}, {}
    for line in (Path(__file__).with_name("photos.tsv")).read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, package, path, digest, what, category, holder, license_ = line.split("\t")
        version = PACKAGES[package][3]
        images[name] = (what, category or None, f"{holder}, Debian {package} {version}; {license_}")
        where[name] = (package, path, digest)
    return images, where


# name -> (what it shows, 16-way category or None, "copyright holder, Debian package version; license")
PHOTO_IMAGES, _WHERE = _catalogue()


def source_dir(package: str) -> Path:
    """Folder a photo package installs its pictures in (its environment variable overrides the default).

    Examples
    --------
    >>> source_dir("tuxpaint-stamps-default").name
    'stamps'
    """
    if package not in PACKAGES:
        raise ValueError(f"unknown photo package {package!r}; choose from {tuple(PACKAGES)}")
    default, variable, _, _ = PACKAGES[package]
    return Path(os.environ.get(variable, default))


def require_photo_source(package: str) -> None:
    """Raise :class:`PhotoSourceMissing`, naming the apt package to install, if ``package`` is not installed.

    Examples
    --------
    >>> require_photo_source("gcompris-qt-data")  # installed: nothing happens
    >>> require_photo_source("flickr")
    Traceback (most recent call last):
    ...
    ValueError: unknown photo package 'flickr'; choose from ('gcompris-qt-data', 'tuxpaint-stamps-default')
    """
    folder = source_dir(package)
    marker = PACKAGES[package][2]
    if not (folder / marker).is_file():
        raise PhotoSourceMissing(
            f"the photographs of {package} are missing: {folder} has no {marker}. "
            f"Install them with: sudo apt-get install {package} (or run scripts/system-packages demo)"
        )


def photo_location(name: str) -> tuple[str, Path, str]:
    """``(package, file, member)`` of a catalogued photograph: member is the path inside a Qt resource file, or ''.

    Examples
    --------
    >>> package, file, member = photo_location("gc_chair")
    >>> package, file.name, member.rsplit("/", 1)[-1]
    ('gcompris-qt-data', 'categorization.rcc', 'chair.webp')
    """
    if name not in _WHERE:
        raise ValueError(f"unknown photograph {name!r}")
    package, path, _ = _WHERE[name]
    file, _, member = path.partition(":")
    return package, source_dir(package) / file, member


@functools.cache
def _rcc_index(path: Path) -> dict[str, tuple[int, int, int]]:
    """Member path -> (offset, size, flags) of each file in a Qt resource (``.rcc``) file."""
    blob = path.read_bytes()
    if blob[:4] != b"qres":
        raise ValueError(f"{path} is not a Qt resource file")
    version, tree, data, names = struct.unpack_from(">IIII", blob, 4)
    step = 14 if version == 1 else 22
    out: dict[str, tuple[int, int, int]] = {}

    def name(offset: int) -> str:
        (length,) = struct.unpack_from(">H", blob, names + offset)
        return blob[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(node: int, prefix: str) -> None:
        at = tree + node * step
        name_offset, flags = struct.unpack_from(">IH", blob, at)
        here = prefix + (name(name_offset) if node else "")
        if flags & 2:  # a directory
            count, first = struct.unpack_from(">II", blob, at + 6)
            for child in range(first, first + count):
                walk(child, here + "/")
        else:
            (offset,) = struct.unpack_from(">I", blob, at + 10)
            (size,) = struct.unpack_from(">I", blob, data + offset)
            out[here] = (data + offset + 4, size, flags)

    walk(0, "")
    return out


def _read_bytes(name: str) -> bytes:
    package, file, member = photo_location(name)
    require_photo_source(package)
    if not member:
        if not file.is_file():
            raise PhotoSourceMissing(
                f"{file} is missing; reinstall it with: sudo apt-get install --reinstall {package}"
            )
        return file.read_bytes()
    index = _rcc_index(file) if file.is_file() else {}
    if member not in index:
        raise PhotoSourceMissing(
            f"{file} has no {member}; this catalogue was made from {package} {PACKAGES[package][3]}"
        )
    offset, size, flags = index[member]
    with open(file, "rb") as f:
        f.seek(offset)
        raw = f.read(size)
    if flags & 4:
        raise ValueError(f"{member} in {file} is zstd-compressed, which metamers does not read")
    return zlib.decompress(raw[4:]) if flags & 1 else raw


@functools.cache
def _warn_version(package: str) -> None:
    warnings.warn(
        f"{package} is not version {PACKAGES[package][3]} (the catalogued one): some of its pictures differ from "
        "the catalogue's, so results made with them are not comparable with others'.",
        RuntimeWarning,
        stacklevel=3,
    )


def composite(rgba: np.ndarray, background: float = BACKGROUND) -> np.ndarray:
    """An ``(H, W, 4)`` uint8 image over a square grey canvas, centred: ``(S, S, 3)`` uint8, ``S = max(H, W)``.

    Examples
    --------
    >>> stamp = np.zeros((2, 4, 4), dtype=np.uint8); stamp[..., 0] = stamp[..., 3] = 255
    >>> out = composite(stamp)
    >>> out.shape, out[0, 0].tolist(), out[1, 0].tolist()
    ((4, 4, 3), [128, 128, 128], [255, 0, 0])
    """
    h, w = rgba.shape[:2]
    size = max(h, w)
    rgb, alpha = rgba[..., :3].astype(np.float64), rgba[..., 3:].astype(np.float64) / 255.0
    canvas = np.full((size, size, 3), background * 255.0)
    top, left = (size - h) // 2, (size - w) // 2
    canvas[top : top + h, left : left + w] = rgb * alpha + canvas[top : top + h, left : left + w] * (1 - alpha)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def read_photo(name: str) -> np.ndarray:
    """A catalogued photograph as ``(H, W, 3)`` uint8 RGB; stamps with transparency composited by :func:`composite`.

    Examples
    --------
    >>> read_photo("gc_cat").shape
    (768, 1024, 3)
    """
    from PIL import Image

    data = _read_bytes(name)
    package, _, digest = _WHERE[name]
    if hashlib.sha256(data).hexdigest()[:16] != digest:
        _warn_version(package)
    with Image.open(io.BytesIO(data)) as img:
        has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
        arr = np.asarray(img.convert("RGBA" if has_alpha else "RGB"))
    return composite(arr) if has_alpha else arr


def human_name(name: str) -> str:
    """What a person would call a photograph: its 16-way category, else what it shows without the article.

    Examples
    --------
    >>> human_name("tp_crow"), human_name("tp_frog"), human_name("gc_chair")
    ('bird', 'frog', 'chair')
    """
    what, category, _ = PHOTO_IMAGES[name]
    for article in ("a ", "an ", "the "):
        if what.lower().startswith(article):
            what = what[len(article) :]
            break
    return category or what
