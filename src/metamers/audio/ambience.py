"""Real background recordings from Debian packages, grouped into classes (rain, birdsong, traffic, ...).

The files of four packages (game ambiences, sound effects and loops) are grouped by what they sound like:

==================  ===============================================================================================
class               files
==================  ===============================================================================================
``rain``            MegaGlest tileset rain ambiences
``night``           MegaGlest night ambiences (crickets, insects), Widelands crickets
``birdsong``        MegaGlest day ambiences, Widelands birds
``fire``            LinCity-NG fire crackle
``water``           LinCity-NG water and lake ambiences
``crowd``           LinCity-NG stadium and market crowds
``traffic``         LinCity-NG road traffic
``train``           LinCity-NG trains
``machinery``       LinCity-NG industry, Widelands saws and mills
``hammering``       Widelands hammers and smithies, LinCity-NG blacksmiths
``farm animals``    Widelands farm animals, MegaGlest chickens and roosters
``howling``         Widelands wolves and coyotes, MegaGlest wolves
``drums``           Sonic Pi drum loops (CC0)
``music``           Widelands and LinCity-NG in-game music
``drone``           Sonic Pi ambient drones (CC0)
==================  ===============================================================================================

Identical files (the same ambience shipped for several tilesets) are kept once, and files under a second are left
out. Each class's files are split into a training part and a held-out part (every third file, from the second, in
path order), so that the test splits mix words with recordings the network never heard. A draw is a random
excerpt of a random file of the class (a file shorter than the excerpt is looped), resampled, at unit RMS; an
excerpt much quieter than its file (a pause between two howls) is drawn again.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch

from metamers.audio.signal import resample
from metamers.audio.speech import SpeechSourceMissing

__all__ = [
    "BACKGROUND_PACKAGES",
    "REAL_BACKGROUND_CLASSES",
    "background_dir",
    "background_files",
    "real_background",
    "require_backgrounds",
]

_MIN_SECONDS = 1.0
_TRIES = 16
_QUIET = 0.1  # an excerpt quieter than this fraction of its file's RMS (a pause between howls) is drawn again
_MARGIN_SECONDS = 0.05  # read beyond the excerpt on both sides, so that resampling does not ring inside it


@dataclass(frozen=True)
class _Package:
    root: str
    env: str
    license: str


BACKGROUND_PACKAGES: dict[str, _Package] = {
    "megaglest-data": _Package(
        "/usr/share/games/megaglest",
        "METAMERS_MEGAGLEST_DIR",
        "CC-BY-SA-3.0 ((c) 2001-2008 The Glest Team; /usr/share/doc/megaglest-data/copyright)",
    ),
    "widelands-data": _Package(
        "/usr/share/games/widelands/data",
        "METAMERS_WIDELANDS_DIR",
        "GPL-2+ ((c) 2002-2019 the Widelands Development Team); music/ingame_24-26.ogg CC-BY-SA-3.0 (Stuart Marshall)",
    ),
    "lincity-ng-data": _Package(
        "/usr/share/games/lincity-ng",
        "METAMERS_LINCITY_DIR",
        "GPL-2+ ((c) 1995-1997 I J Peters and the LinCity-NG authors; /usr/share/doc/lincity-ng-data/copyright)",
    ),
    "sonic-pi-samples": _Package(
        "/usr/share/sonic-pi/samples",
        "METAMERS_SONIC_PI_DIR",
        "CC0 (each sample used here; authors per file in /usr/share/doc/sonic-pi-samples/copyright)",
    ),
}
"""The background packages: install folder, the environment variable that overrides it, license."""

_MG, _WL, _LC, _SP = "megaglest-data", "widelands-data", "lincity-ng-data", "sonic-pi-samples"
_CLASSES: dict[str, tuple[tuple[str, str], ...]] = {
    "rain": ((_MG, "tilesets/*/sounds/rain.*"),),
    "night": ((_MG, "tilesets/*/sounds/night*.ogg"), (_WL, "sound/animals/crickets*.ogg")),
    "birdsong": (
        (_MG, "tilesets/*/sounds/day.ogg"),
        (_MG, "tilesets/*/sounds/*sunny_day.ogg"),
        (_MG, "tilesets/*/sounds/desertday.ogg"),
        (_WL, "sound/animals/bird*.ogg"),
    ),
    "fire": ((_LC, "sounds/Fire[0-9].wav"),),
    "water": ((_LC, "sounds/Water*.wav"), (_LC, "sounds/ParklandLake*.wav")),
    "crowd": ((_LC, "sounds/SportsCroud*.wav"), (_LC, "sounds/MarketFull*.wav")),
    "traffic": ((_LC, "sounds/Trafic*.wav"),),
    "train": ((_LC, "sounds/RailTrain*.wav"),),
    "machinery": (
        (_LC, "sounds/Industry*.wav"),
        (_WL, "sound/sawmill/*.ogg"),
        (_WL, "sound/atlanteans/saw/benchsaw*.ogg"),
        (_WL, "sound/mill/*.ogg"),
    ),
    "hammering": (
        (_WL, "sound/hammering/hammering_*.ogg"),
        (_WL, "sound/smiths/smith_*.ogg"),
        (_LC, "sounds/Blacksmith*.wav"),
    ),
    "farm animals": (
        (_WL, "sound/farm/donkey.ogg"),
        (_WL, "sound/farm/farm_animal_*.ogg"),
        (_WL, "sound/farm/horse_*.ogg"),
        (_WL, "sound/farm/ox_*.ogg"),
        (_WL, "sound/farm/sheep_*.ogg"),
        (_MG, "tilesets/*/sounds/chicken.wav"),
        (_MG, "tilesets/*/sounds/rooster.ogg"),
    ),
    "howling": (
        (_WL, "sound/animals/wolf_*.ogg"),
        (_WL, "sound/animals/coyote_*.ogg"),
        (_MG, "tilesets/*/sounds/wolf.wav"),
    ),
    "drums": tuple(
        (_SP, f"{name}.flac")
        for name in (
            *("loop_amen_full", "loop_breakbeat", "loop_compus", "loop_tabla"),
            *("loop_safari", "loop_garzul", "loop_mika", "drum_roll"),
        )
    ),
    "music": ((_WL, "music/ingame_*.ogg"), (_LC, "music/default/*.ogg")),
    "drone": tuple(
        (_SP, f"{name}.flac")
        for name in ("ambi_drone", "ambi_glass_hum", "ambi_haunted_hum", "ambi_lunar_land", "ambi_dark_woosh")
    ),
}

REAL_BACKGROUND_CLASSES: tuple[str, ...] = tuple(_CLASSES)
"""The real background classes, in label order (after the synthetic ones in a corpus that uses both)."""


def background_dir(package: str) -> Path:
    """Install folder of a background package (its environment variable overrides it).

    Examples
    --------
    >>> background_dir("lincity-ng-data").name
    'lincity-ng'
    """
    if package not in BACKGROUND_PACKAGES:
        raise ValueError(f"unknown background package {package!r}; choose from {tuple(BACKGROUND_PACKAGES)}")
    info = BACKGROUND_PACKAGES[package]
    return Path(os.environ.get(info.env, info.root))


def require_backgrounds(name: str) -> None:
    """Raise :class:`~metamers.audio.speech.SpeechSourceMissing` naming the apt package a class's files come from.

    Examples
    --------
    >>> require_backgrounds("thunder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown real background class 'thunder'; choose from ('rain', 'night', ...)
    """
    if name not in _CLASSES:
        raise ValueError(f"unknown real background class {name!r}; choose from {REAL_BACKGROUND_CLASSES}")
    for package, pattern in _CLASSES[name]:
        folder = background_dir(package)
        if not any(folder.glob(pattern)):
            raise SpeechSourceMissing(
                f"the {name!r} background recordings are missing ({folder / pattern} matches nothing). "
                f"Install them with: sudo apt-get install {package}"
            )


@functools.cache
def _files(name: str, roots: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``(package, path relative to its folder)`` of a class's distinct files of at least a second, in path order."""
    folders = dict(zip(BACKGROUND_PACKAGES, roots, strict=True))
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for package, pattern in _CLASSES[name]:
        folder = Path(folders[package])
        for path in sorted(folder.glob(pattern)):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen or soundfile.info(str(path)).duration < _MIN_SECONDS:
                continue
            seen.add(digest)
            found.append((package, str(path.relative_to(folder))))
    return tuple(sorted(found))


def background_files(name: str, part: str = "all") -> tuple[tuple[str, str], ...]:
    """A real class's files as ``(package, relative path)``: ``"train"``, ``"test"`` (held out) or ``"all"``.

    Examples
    --------
    >>> train, test = background_files("fire", "train"), background_files("fire", "test")
    >>> len(train), len(test), set(train) & set(test)
    (2, 1, set())
    """
    if part not in ("train", "test", "all"):
        raise ValueError(f"part must be 'train', 'test' or 'all', got {part!r}")
    require_backgrounds(name)
    files = _files(name, tuple(str(background_dir(p)) for p in BACKGROUND_PACKAGES))
    if part == "all":
        return files
    return tuple(f for i, f in enumerate(files) if (i % 3 == 1) == (part == "test"))


def real_background(name: str, n_samples: int, sr: int = 20000, seed: int = 0, part: str = "train") -> torch.Tensor:
    """A random excerpt of a recording of class ``name``, at ``sr`` Hz and unit RMS (float32 ``[n_samples]``).

    Parameters
    ----------
    name : str
        A class of :data:`REAL_BACKGROUND_CLASSES`.
    n_samples : int
        Length of the excerpt.
    sr : int
        Sample rate in Hz.
    seed : int
        Chooses the file and the excerpt: the same seed gives the same sound.
    part : str
        ``"train"`` or ``"test"``: which of the class's files to draw from (see :func:`background_files`).

    Examples
    --------
    >>> x = real_background("rain", 20000, seed=1)
    >>> x.shape, round(float(x.pow(2).mean().sqrt()), 4), bool((x == real_background("rain", 20000, seed=1)).all())
    (torch.Size([20000]), 1.0, True)
    """
    files = background_files(name, part)
    rng = np.random.default_rng(seed)
    if n_samples <= 0:
        return torch.zeros(max(n_samples, 0))
    best, best_level = None, -1.0
    for _ in range(_TRIES):
        package, path = files[int(rng.integers(len(files)))]
        x = _excerpt(background_dir(package) / path, n_samples, sr, rng)
        level = float(x.pow(2).mean().sqrt())
        if level > best_level:
            best, best_level = x, level
        if level >= _QUIET * _file_rms(str(background_dir(package) / path)):
            break
    if best is None or best_level <= 1e-9:
        raise RuntimeError(f"{_TRIES} excerpts of the {name!r} background recordings in a row were silent")
    return (best / best_level).float()


@functools.cache
def _file_rms(path: str) -> float:
    """RMS of a file; of 32 evenly spaced quarter-second pieces for a file over 30 s (music runs to minutes)."""
    info = soundfile.info(path)
    if info.duration <= 30:
        data, _ = soundfile.read(path, dtype="float64", always_2d=True)
    else:
        piece = int(0.25 * info.samplerate)
        starts = np.linspace(0, info.frames - piece, 32).astype(int)
        data = np.concatenate(
            [soundfile.read(path, start=int(a), frames=piece, dtype="float64", always_2d=True)[0] for a in starts]
        )
    return float(np.sqrt(np.mean(data.mean(axis=1) ** 2)))


def _excerpt(path: Path, n_samples: int, sr: int, rng: np.random.Generator) -> torch.Tensor:
    info = soundfile.info(str(path))
    sr_file, frames = int(info.samplerate), int(info.frames)
    margin = math.ceil(_MARGIN_SECONDS * sr_file)
    need = math.ceil(n_samples * sr_file / sr) + 2 * margin
    if frames >= need:
        start = int(rng.integers(0, frames - need + 1))
        data, _ = soundfile.read(str(path), start=start, frames=need, dtype="float64", always_2d=True)
    else:  # loop the file from a random point
        whole, _ = soundfile.read(str(path), dtype="float64", always_2d=True)
        start = int(rng.integers(0, len(whole)))
        data = np.tile(whole, (need // len(whole) + 2, 1))[start : start + need]
    x = torch.from_numpy(data.mean(axis=1))
    y = resample(x, sr_file, sr)
    cut = round(margin * sr / sr_file)
    return torch.nn.functional.pad(y, (0, max(0, cut + n_samples - y.shape[0])))[cut : cut + n_samples]
