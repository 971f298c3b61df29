"""Build a human recognition experiment from a run: stimuli under opaque names, trial lists, the headphone check.

An experiment is a directory::

    EXP/experiment.json        conditions, stimuli (with answers), trial lists, timing, settings: never served
    EXP/stimuli/<id>.png|wav   what participants see or hear, named by random ids, metadata stripped
    EXP/researcher_token.txt   the token researcher pages ask for (only its hash is in experiment.json)
    EXP/responses.sqlite       the responses, once `metamers experiment serve` has run (SQLite by default)
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import shutil
import time
from pathlib import Path

from metamers.experiments.design import DesignError, trial_lists
from metamers.experiments.headphones import TRIALS, calibration_noise, headphone_trial
from metamers.modality import modality
from metamers.runs.plan import PlanError
from metamers.runs.rundir import RunDir, RunError
from metamers.stimuli.photos import PHOTO_IMAGES, human_name

__all__ = ["HUMAN_NAMES", "ExperimentError", "build_experiment", "load_experiment"]

FORMAT = 1
MAX_PARTICIPANTS = 10_000
"""Most distinct trial lists an experiment has (participants beyond them reuse the lists in turn)."""

# What a person would call each picture of :data:`metamers.stimuli.IMAGES` (its 16-way category where it has one).
HUMAN_NAMES: dict[str, str] = {
    "astronaut": "astronaut",
    "brick": "brick wall",
    "camera": "camera",
    "chelsea": "cat",
    "clock": "clock",
    "coffee": "coffee cup",
    "coins": "coins",
    "grass": "grass",
    "gravel": "gravel",
    "hubble_deep_field": "galaxies",
    "immunohistochemistry": "stained tissue",
    "moon": "moon",
    "retina": "eye",
    "rocket": "rocket",
    "cell": "cell",
    "page": "page of text",
    "text": "text",
    "china": "temple",
    "flower": "flower",
}
HUMAN_NAMES.update({n: human_name(n) for n in PHOTO_IMAGES})  # the Debian photographs: their category or object
# Pictures tried first for practice trials (everyday objects).
_PRACTICE_IMAGES = ("astronaut", "clock", "flower", "china", "camera", "coffee", "rocket", "chelsea", "moon")
_PRACTICE_WORDS = ("seven", "monday", "hotel", "april", "zero", "victor", "tomorrow", "three", "echo")


class ExperimentError(ValueError):
    """An experiment cannot be built or read as asked; the message says why and what to do."""


def _accepted(run: Path) -> tuple[list[dict], object]:
    rundir = RunDir(run)
    try:
        plan = rundir.plan
    except (RunError, PlanError) as exc:
        raise ExperimentError(str(exc)) from None
    return rundir.metamers(accepted_only=True), plan


def _write_png(src: Path, dst: Path) -> tuple[int, int]:
    """Re-encode a picture as an uncompressed RGB PNG and return its (width, height).

    Re-encoded, nothing of the source file's metadata travels. Uncompressed, every picture of one size has the same
    number of bytes: compressed, a natural photo (47-92 KB) and a noise-like metamer (141-148 KB) would tell a
    participant their condition by the size of the download alone.
    """
    from PIL import Image

    with Image.open(src) as im:
        rgb = im.convert("RGB")
    rgb.save(dst, format="PNG", compress_level=0)
    return rgb.size


def _write_wav(src: Path, dst: Path) -> tuple[int, int]:
    """Re-encode a sound as 16-bit PCM WAV (nothing of the source file's metadata travels); its (samples, rate)."""
    import soundfile as sf

    x, sr = sf.read(str(src), dtype="int16")
    sf.write(str(dst), x, sr, subtype="PCM_16", format="WAV")
    return len(x), sr


def _unreadable() -> tuple[type[BaseException], ...]:
    """What Pillow and libsndfile raise on a damaged file (truncated, overwritten, not a PNG or WAV at all)."""
    import zlib

    import soundfile as sf

    return OSError, SyntaxError, ValueError, EOFError, zlib.error, sf.LibsndfileError


_LIMITS = {  # argument: (least, most or None, what it is)
    "participants": (1, MAX_PARTICIPANTS, "the number of distinct trial lists"),
    "practice": (0, None, "the number of practice trials"),
    "trials_per_condition": (1, None, "the number of trials of each condition per participant"),
    "catch": (0, None, "the number of catch trials"),
    "presentation_ms": (1, 60_000, "the time an image is shown, in ms,"),
    "seed": (0, None, "the seed"),
}


def _check_settings(**given: int | None) -> None:
    """Refuse numbers no experiment can have (``--presentation-ms -5``, ``--participants 0``) before anything is
    written; None is a default left to the build."""
    for name, value in given.items():
        if value is None:
            continue
        low, high, what = _LIMITS[name]
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ExperimentError(f"{flag} {value!r}: {what} must be a whole number.")
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise ExperimentError(f"{flag} {value}: {what} must be {bounds}.")


def _new_id(taken: set[str]) -> str:
    while True:
        i = secrets.token_urlsafe(12)
        if i not in taken and not i.startswith("-"):
            taken.add(i)
            return i


def build_experiment(
    run: str | os.PathLike,
    out: str | os.PathLike,
    *,
    kind: str | None = None,
    models: list[str] | None = None,
    trials_per_condition: int | None = None,
    participants: int = 16,
    practice: int = 3,
    catch: int | None = None,
    presentation_ms: int = 200,
    completion_code: str | None = None,
    seed: int = 0,
) -> dict:
    """Turn a run's accepted metamers into a recognition experiment and return its description.

    Conditions are every (model, generation stage) with accepted metamers, plus ``natural`` (the original stimuli).
    For sounds the ``cochleagram`` stage of a word network is the paper's inverted-cochleagram condition; metamers
    optimised on a cochleagram (``name:cochleagram`` models) cannot be played and are left out.

    Parameters
    ----------
    run : path
        A run directory (``metamers run``) whose validation step has finished.
    out : path
        The new experiment's directory (must not hold an experiment already).
    kind : {"image", "audio"}, optional
        Which of the run's stimuli; needed only when the run has both.
    models : list of str, optional
        Only these generating models (default: all of that kind).
    trials_per_condition : int, optional
        Trials per condition per participant (default: the smallest condition's size, at most 10 for images as in
        the paper and 5 for sounds).
    participants : int
        Number of distinct trial lists (1 to 10000); participants beyond it reuse them in turn.
    practice : int
        Practice trials per participant (with feedback, on stimuli outside the run).
    catch : int, optional
        Catch trials per participant: natural stimuli the participant does not see in the natural condition
        (default: 2, or as many as the natural stimuli left after the natural condition allow).
    presentation_ms : int
        How long an image is shown before its mask, 1 to 60000 (Geirhos et al. 2018: 200 ms). Sounds play once,
        whole.
    completion_code : str, optional
        The code shown at the end (Prolific's, MTurk's); default a random one.
    seed : int
        Seed of the trial lists and the headphone check (0 or more).

    Examples
    --------
    >>> exp = build_experiment("runs/demo", "experiments/demo-images", kind="image")  # doctest: +SKIP
    >>> len(exp["conditions"])  # doctest: +SKIP
    4
    """
    _check_settings(participants=participants, practice=practice, trials_per_condition=trials_per_condition,
                    catch=catch, presentation_ms=presentation_ms, seed=seed)  # fmt: skip
    run, final = Path(run), Path(out)
    if (final / "experiment.json").exists():
        raise ExperimentError(f"{final} already holds an experiment; give another directory, or delete it first.")
    if final.exists() and any(final.iterdir()):
        raise ExperimentError(f"{final} is not empty; give a new directory for the experiment.")
    rows, plan = _accepted(run)
    if not rows:
        raise ExperimentError(
            f"{run} has no accepted metamers yet; finish the run (`metamers run {run}`) so that validation has "
            "judged them."
        )
    kinds = sorted({r["kind"] for r in rows} - {"cochleagram"})
    if kind is None:
        if len(kinds) != 1:
            raise ExperimentError(f"{run} has metamers of {' and '.join(kinds) or 'no playable kind'}; pick --kind.")
        kind = kinds[0]
    if kind not in ("image", "audio"):
        raise ExperimentError(f"kind must be 'image' or 'audio', not {kind!r}.")
    rows = [r for r in rows if r["kind"] == kind]
    if models:
        unknown = sorted(set(models) - {r["model"] for r in rows})
        if unknown:
            raise ExperimentError(
                f"no accepted {kind} metamers from {', '.join(unknown)} in {run}; it has "
                f"{', '.join(sorted({r['model'] for r in rows})) or 'none'}."
            )
        rows = [r for r in rows if r["model"] in models]
    if not rows:
        raise ExperimentError(f"{run} has no accepted {kind} metamers.")
    out = final.with_name(f".{final.name}.partial")
    shutil.rmtree(out, ignore_errors=True)
    try:
        exp = _build(run, out, rows, plan, kind, trials_per_condition, participants, practice, catch,
                     presentation_ms, completion_code, seed)  # fmt: skip
        final.mkdir(parents=True, exist_ok=True)
        for f in out.iterdir():
            os.replace(f, final / f.name)
        out.rmdir()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    exp["name"] = final.name
    tmp = final / ".experiment.json.tmp"
    tmp.write_text(json.dumps(exp, indent=1))
    os.replace(tmp, final / "experiment.json")  # written last: its presence means the experiment is whole
    return exp


def _build(
    run: Path,
    out: Path,
    rows: list[dict],
    plan,
    kind: str,
    trials_per_condition: int | None,
    participants: int,
    practice: int,
    catch: int | None,
    presentation_ms: int,
    completion_code: str | None,
    seed: int,
) -> dict:

    media = modality(kind)
    ext = media.suffix.lstrip(".")
    (out / "stimuli").mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    stimuli: dict[str, dict] = {}
    shapes: dict[tuple[int, int], Path] = {}  # (width, height) or (samples, rate): one of the files of each

    given = plan.stimulus_labels(kind) if plan is not None else {}  # the user's labels of their own files

    def label(source: str) -> str:
        if source in given:
            return given[source]
        return HUMAN_NAMES.get(source, source) if kind == "image" else source

    def add(src: Path, condition: str, source: str) -> str:
        # a rerun writes missing or damaged media again, from the results (nothing is synthesized again)
        fix = f"rerun `metamers run {run}` to write it again"
        if not src.is_file():
            raise ExperimentError(f"{src} is missing from the run; {fix}.")
        sid = _new_id(taken)
        try:
            shape = (_write_png if kind == "image" else _write_wav)(src, out / "stimuli" / f"{sid}.{ext}")
        except _unreadable() as exc:
            why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise ExperimentError(f"{src} is damaged, not a readable {ext.upper()} ({why}); {fix}.") from None
        shapes.setdefault(shape, src)
        stimuli[sid] = {
            "file": f"stimuli/{sid}.{ext}",
            "condition": condition,
            "source": source,
            "answer": label(source),
        }
        return sid

    conditions: list[dict] = []
    pools: dict[str, list[str]] = {}
    index: dict[tuple[str, str], str] = {}
    for r in rows:
        key = (r["model"], r["stage"])
        if key not in index:
            cid = f"c{len(conditions) + 1}"
            index[key] = cid
            conditions.append({"id": cid, "model": r["model"], "stage": r["stage"], "layer": r["layer"]})
            pools[cid] = []
        pools[index[key]].append(
            add(run / media.media_path(r["model"], r["stage"], r["stimulus"]), index[key], r["stimulus"])
        )
    sources = list(dict.fromkeys(r["stimulus"] for r in rows))
    first_model = {s: next(r["model"] for r in rows if r["stimulus"] == s) for s in sources}
    conditions.append({"id": "natural", "model": None, "stage": "natural", "layer": None})
    pools["natural"] = [add(run / media.media_path(first_model[s], "original", s), "natural", s) for s in sources]
    if len(shapes) > 1:
        (a, fa), (b, fb) = list(shapes.items())[:2]
        what = "pictures" if kind == "image" else "sounds"
        size = "{0}x{1}".format if kind == "image" else "{0} samples at {1} Hz".format
        raise ExperimentError(
            f"the run's {what} differ in size ({fa}: {size(*a)}, {fb}: {size(*b)}), which would tell a participant "
            "which model made each; build one experiment per input size (--models)."
        )
    (shape,) = shapes

    # practice: stimuli outside the run, with feedback
    practice_ids = _practice(out, kind, plan, sources, practice, stimuli, taken, ext, shape)
    if trials_per_condition is None:
        room = [len(p) for p in pools.values()] + [len(pools["natural"]) - (catch or 0)]
        trials_per_condition = max(1, min(*room, 10 if kind == "image" else 5))
    if catch is None:
        catch = max(0, min(2, len(pools["natural"]) - trials_per_condition))
    try:
        lists = trial_lists(
            pools,
            participants,
            trials_per_condition,
            practice=practice_ids,
            catch_pool=pools["natural"],
            catch=catch,
            seed=seed,
        )
    except DesignError as exc:
        raise ExperimentError(str(exc)) from None

    answers = sorted({s["answer"] for s in stimuli.values()})
    if kind == "image":
        from metamers.models.geirhos16 import CATEGORIES

        choices = list(CATEGORIES) if set(answers) <= set(CATEGORIES) else answers
        task = "Which of these is in the picture?"
    else:
        from metamers.audio.speech import VOCABULARY

        choices = sorted(VOCABULARY) if set(answers) <= set(VOCABULARY) else answers
        task = "Which word did you hear? Type to find it."

    checks = []
    if kind == "audio":
        rng = random.Random(seed)
        cal = _new_id(taken)
        calibration_noise(out / "stimuli" / f"{cal}.wav", seed=seed)
        stimuli[cal] = {"file": f"stimuli/{cal}.wav", "condition": "calibration", "source": None, "answer": None}
        for _ in range(TRIALS):
            hid = _new_id(taken)
            answer = headphone_trial(out / "stimuli" / f"{hid}.wav", rng)
            stimuli[hid] = {
                "file": f"stimuli/{hid}.wav",
                "condition": "headphones",
                "source": None,
                "answer": str(answer),
            }
            checks.append(hid)

    token = secrets.token_urlsafe(24)
    exp = {
        "format": FORMAT,
        "name": out.name,
        "kind": kind,
        "run": str(run.resolve()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": seed,
        "task": {
            "prompt": task,
            "choices": choices,
            "presentation_ms": presentation_ms if kind == "image" else None,
            "fixation_ms": 300 if kind == "image" else None,
            "mask_ms": 200 if kind == "image" else None,
        },
        "trials_per_condition": trials_per_condition,
        "practice": practice,
        "catch": catch,
        "conditions": conditions,
        "stimuli": stimuli,
        "lists": [[t.to_dict() for t in trials] for trials in lists],
        "headphone_check": {"calibration": cal, "trials": checks} if kind == "audio" else None,
        "exclusion": {"headphones_min": 5 if kind == "audio" else None, "catch_min": 1.0 if catch else None},
        "completion_code": completion_code or secrets.token_hex(4).upper(),
        "researcher_token_sha256": hashlib.sha256(token.encode()).hexdigest(),
    }
    if kind == "image":
        mask = _new_id(taken)
        _mask_png(out / "stimuli" / f"{mask}.png", seed, shape)
        stimuli[mask] = {"file": f"stimuli/{mask}.png", "condition": "mask", "source": None, "answer": None}
        exp["task"]["mask"] = mask
    tok = out / "researcher_token.txt"
    tok.write_text(token + "\n")
    tok.chmod(0o600)
    return exp


def _practice(
    out: Path, kind: str, plan, sources: list[str], n: int, stimuli: dict, taken: set, ext: str, shape: tuple[int, int]
) -> list[str]:
    """Practice stimuli (outside the run), of the trials' size: (width, height) or (samples, rate)."""
    if n <= 0:
        return []
    ids = []
    if kind == "image":
        from metamers.stimuli import load_photos, save_png

        names = [p for p in _PRACTICE_IMAGES if p not in sources][:n]
        if len(names) < n:
            raise ExperimentError(f"only {len(names)} pictures outside the run are left for practice; ask for fewer.")
        x, _ = load_photos(names, size=shape[0])
        for i, name in enumerate(names):
            sid = _new_id(taken)
            path = save_png(x[i], out / "stimuli" / f"{sid}.png")
            _write_png(path, path)  # uncompressed, as the trials' pictures
            stimuli[sid] = {"file": f"stimuli/{sid}.png", "condition": "practice", "source": name}
            stimuli[sid]["answer"] = HUMAN_NAMES[name]
            ids.append(sid)
        return ids
    import soundfile as sf

    from metamers.audio.clips import word_clips

    words = [w for w in _PRACTICE_WORDS if w not in sources][:n]
    if len(words) < n:
        raise ExperimentError(f"only {len(words)} words outside the run are left for practice; ask for fewer.")
    samples, sr = shape
    clips = word_clips(words, source=plan.speech, n_samples=samples, sr=sr).clamp(-1, 1)
    for i, word in enumerate(words):
        sid = _new_id(taken)
        sf.write(str(out / "stimuli" / f"{sid}.wav"), clips[i].numpy(), sr, subtype="PCM_16")
        stimuli[sid] = {"file": f"stimuli/{sid}.wav", "condition": "practice", "source": word, "answer": word}
        ids.append(sid)
    return ids


def _mask_png(path: Path, seed: int, shape: tuple[int, int]) -> None:
    """A 1/f noise mask of the pictures' (width, height), as Geirhos et al. (2018) showed after each image."""
    import numpy as np
    from PIL import Image

    w, h = shape
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(h), np.fft.fftfreq(w)
    r = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    r[0, 0] = 1
    spectrum = (rng.standard_normal((h, w)) + 1j * rng.standard_normal((h, w))) / r
    x = np.real(np.fft.ifft2(spectrum))
    x = (x - x.mean()) / x.std() * 0.2 + 0.5
    mask = Image.fromarray((np.clip(x, 0, 1) * 255).astype("uint8"), "L").convert("RGB")
    mask.save(path, format="PNG", compress_level=0)  # as the pictures: RGB, uncompressed


def load_experiment(directory: str | os.PathLike) -> dict:
    """Read an experiment directory's description (``experiment.json``).

    Examples
    --------
    >>> load_experiment("experiments/demo-images")["kind"]  # doctest: +SKIP
    'image'
    """
    path = Path(directory) / "experiment.json"
    if not path.is_file():
        raise ExperimentError(
            f"{directory} is not an experiment (no experiment.json); build one with `metamers experiment build RUN "
            "--out DIR`."
        )
    exp = json.loads(path.read_text())
    if exp.get("format") != FORMAT:
        raise ExperimentError(f"{path} is of format {exp.get('format')}, this toolkit reads format {FORMAT}.")
    exp["directory"] = str(Path(directory).resolve())
    return exp
