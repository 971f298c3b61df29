"""The demo: the whole paper as one command, on the embedded defaults (``metamers/runs/demo.toml``).

Metamers of natural photos at an early, a middle and a late stage of pretrained EfficientNet-Lite0, and of recorded
spoken words at the cochleagram, an early and a late stage of the shipped word network; validation against nulls;
transfer to the other pretrained networks and the random controls; the report.  It is a plan like any other
(:func:`metamers.runs.run_plan`), so it resumes when run again and ``metamers status`` reads it.
"""

from __future__ import annotations

import os
import tomllib
from importlib.resources import files

from metamers.audio.speech import SpeechSourceMissing, require_source
from metamers.runs.plan import Plan, parse_plan
from metamers.runs.run import run_plan
from metamers.runs.rundir import RunDir
from metamers.stimuli.photos import PHOTO_IMAGES, PhotoSourceMissing, photo_location, require_photo_source
from metamers.transfer import figure5_trend

__all__ = ["demo_plan", "format_summary", "run_demo"]


def _require_speech() -> None:
    """Raise :class:`SpeechSourceMissing` unless the audio half can run here (recorded words, espeak-ng nulls)."""
    missing = []
    for source in ("recorded", "espeak-ng"):
        try:
            require_source(source)
        except SpeechSourceMissing as e:
            missing.append(str(e))
    if missing:
        raise SpeechSourceMissing(
            "the demo's audio half cannot run: "
            + " ".join(missing)
            + " (`make demo` installs them; `metamers demo --no-audio` runs the image half alone)"
        )


def _require_photos(names: tuple[str, ...]) -> None:
    """Raise :class:`PhotoSourceMissing` unless the Debian packages holding the demo's photographs are installed."""
    for package in sorted({photo_location(n)[0] for n in names if n in PHOTO_IMAGES}):
        try:
            require_photo_source(package)
        except PhotoSourceMissing as e:
            raise PhotoSourceMissing(f"the demo's photographs cannot be read: {e} (`make demo` installs it)") from None


def demo_plan(
    iterations: int | None = None,
    images: int | None = None,
    words: int | None = None,
    pairs: int | None = None,
    audio: bool = True,
) -> Plan:
    """The demo's plan, scaled by the arguments (``None`` keeps the embedded default).

    Parameters
    ----------
    iterations : int, optional
        Iterations per metamer for images and sounds alike (the demo: at most 600 for images, each photo stopping at
        rho 0.99 with its label, and 400 for sounds; the paper: 15000).
    images, words : int, optional
        How many photos and spoken words (the first N of the plan's default lists).
    pairs : int, optional
        Pairs per null distribution (the demo: 20,000; the paper: 1,000,000).
    audio : bool
        Include the word network (needs Debian's espeak-ng and asterisk-core-sounds-en-wav).

    Examples
    --------
    >>> demo_plan(iterations=15000, pairs=1_000_000).settings("image").iterations
    15000
    """
    data = tomllib.loads(files("metamers.runs").joinpath("demo.toml").read_text())
    if iterations is not None:
        for kind in ("image", "audio"):
            data["synthesis"][kind]["iterations"] = iterations
    if images is not None:  # the first N of the demo's photos, or of every offline picture beyond them
        listed = data["stimuli"]["images"]
        data["stimuli"]["images"] = listed[:images] if 0 < images <= len(listed) else images
    if words is not None:
        data["stimuli"]["words"] = words
    if pairs is not None:
        data["validation"]["pairs"] = pairs
    if not audio:
        data["model"] = [m for m in data["model"] if not m["name"].startswith("word-")]
        data["transfer"]["recognizers"] = [r for r in data["transfer"]["recognizers"] if not r.startswith("word-")]
    return parse_plan(data)


def run_demo(
    out: str | os.PathLike = "demo-output",
    iterations: int | None = None,
    images: int | None = None,
    words: int | None = None,
    pairs: int | None = None,
    audio: bool = True,
    progress: bool | None = None,
) -> dict:
    """Run the demo plan in ``out`` (resuming what is there); the run summary with the measured Figure 5 trend.

    The demo runs whole: with ``audio=True`` (the default) a missing speech source raises
    :class:`~metamers.audio.speech.SpeechSourceMissing` before anything runs, naming the package, and so does a missing
    photograph package (:class:`~metamers.stimuli.photos.PhotoSourceMissing`). ``audio=False`` runs
    the image half alone, and the summary says so.
    """
    if audio:
        _require_speech()
    plan = demo_plan(iterations, images, words, pairs, audio)
    _require_photos(plan.images)
    summary = run_plan(plan, out, progress=progress)
    run = RunDir(out)
    summary["trends"] = figure5_trend(run.transfer(), run.stage_names())
    summary["audio_skipped"] = None if audio else "images only, as asked (--no-audio)"
    return summary


def format_summary(summary: dict) -> str:
    """The demo's summary for the terminal."""
    lines = [
        f"{summary['accepted']} of {summary['metamers']} metamers accepted; {summary['jobs']['done']} synthesis "
        f"jobs done, {summary['jobs']['failed']} failed ({summary['seconds'] / 60:.1f} minutes this session)"
    ]
    if summary.get("audio_skipped"):
        lines.append(f"audio half not run: {summary['audio_skipped']}")
    lines += [f"failed: {f}" for f in summary["failed"]]
    lines += [t["text"] for t in summary.get("trends", [])]
    if not summary.get("trends"):
        lines.append(
            "the paper's Figure 5 trend is not judged: that needs a trained generator's accepted metamers at its first "
            "and last generation layers, recognized by another trained network (more iterations would accept more)"
        )
    if summary["report"]:
        lines.append(f"report: {summary['report'].resolve()}")
    return "\n".join(lines)
