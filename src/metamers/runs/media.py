"""What a person sees or hears of a run: the originals and each job's metamers, as PNG, WAV and cochleagram files.

Every file is made from a synthesis result (or the plan's stimuli), so a missing one is written again by the next
``metamers run``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from metamers.audio.clips import word_clips
from metamers.modality import modality
from metamers.models import ZooModel
from metamers.runs.plan import Plan
from metamers.synthesis import SynthesisResult

__all__ = [
    "display_cochleagram",
    "initial_noise",
    "media_files",
    "media_path",
    "natural_stimuli",
    "sample_rate",
    "write_media",
    "write_originals",
]


def media_path(model: str, stage: str, stimulus: str, kind: str) -> str:
    """Where a run keeps what a person sees or hears of a metamer (``stage="original"`` for the stimulus):
    :meth:`metamers.modality.Modality.media_path`.

    Examples
    --------
    >>> media_path("efficientnet-lite0", "block_2", "chelsea", "image")
    'media/efficientnet-lite0/block_2/chelsea.png'
    """
    return modality(kind).media_path(model, stage, stimulus)


def media_files(kind: str, model: str, stage: str, names: Sequence[str]) -> list[str]:
    """Every media file of a job (relative to the run directory): a PNG per image or cochleagram metamer, a WAV and
    its cochleagram PNG per sound.

    Examples
    --------
    >>> media_files("audio", "word-standard", "conv_0", ["may"])
    ['media/word-standard/conv_0/may.wav', 'media/word-standard/conv_0/may_cochleagram.png']
    """
    m = modality(kind)
    return [f for n in names for f in m.media_files(model, stage, n)]


def sample_rate(zoo: ZooModel) -> int:
    """The rate an audio model takes: a user model's own, else the word networks' 20 kHz."""
    return int(zoo.provenance.get("sample_rate") or 20000)


def natural_stimuli(plan: Plan, zoo: ZooModel, out: Path | None) -> torch.Tensor:
    """The natural stimuli of a model (all of them, in plan order), written to the run's media as they are shown
    (unless ``out`` is None)."""
    names = plan.stimuli(zoo.kind)
    found = plan.files(zoo.kind)
    if zoo.kind == "image":
        from metamers.stimuli import load_photos
        from metamers.stimuli.files import load_image_files

        size = zoo.input_shape[-1]
        x = load_image_files(found, size) if found is not None else load_photos(names, size=size)[0]
        if out is not None:
            write_originals(zoo, x, names, out)
        return x

    def clips(n_samples: int) -> torch.Tensor:
        if found is None:
            return word_clips(names, source=plan.speech, n_samples=n_samples, sr=sample_rate(zoo))
        from metamers.stimuli.files import load_sound_files

        return load_sound_files(found, n_samples, sample_rate(zoo))

    if zoo.kind == "cochleagram":
        with torch.no_grad():
            x = zoo.frontend(clips(zoo.frontend.settings.n_samples))
        if out is not None:
            write_originals(zoo, x, names, out)
        return x
    x = clips(zoo.input_shape[-1])
    if out is not None:
        write_originals(zoo, x, names, out)
    return x


def _write_cochleagrams(
    zoo: ZooModel, c: torch.Tensor, names: Sequence[str], stage: str, out: Path, like: torch.Tensor
) -> None:
    from metamers.report.figures import cochleagram_image

    top = like.amax(dim=(1, 2, 3))
    for i, n in enumerate(names):
        cochleagram_image(c[i, 0], out / media_path(zoo.name, stage, n, zoo.kind), vmax=float(top[i]))


def initial_noise(zoo: ZooModel, settings, n: int) -> torch.Tensor | None:
    """The initial noise of a cochleagram view: pink noise at the audio RMS, through the cochleagram; else None."""
    if zoo.kind != "cochleagram":
        return None
    from metamers.noise import pink_noise

    wave = pink_noise((n, zoo.frontend.settings.n_samples), rms_level=settings.init_scale or 0.01, seed=settings.seed)
    with torch.no_grad():
        return zoo.frontend(wave)


def display_cochleagram(zoo: ZooModel) -> torch.nn.Module:
    """The cochleagram drawn beside a sound: the model's own, or (a user's waveform model) one at its clip and rate."""
    from metamers.audio.cochleagram import Cochleagram, CochleagramSettings

    own = getattr(zoo.module, "preprocess", None)
    if isinstance(own, Cochleagram):
        return own
    return Cochleagram(CochleagramSettings(sr=sample_rate(zoo), n_samples=zoo.input_shape[-1]))


def _write_audio(
    zoo: ZooModel, x: torch.Tensor, names: Sequence[str], stage: str, out: Path, like: torch.Tensor | None = None
) -> None:
    """WAV files and cochleagram images; each cochleagram on the colour scale of its stimulus's (``like``)."""
    from metamers.audio.signal import write_wav
    from metamers.report.figures import cochleagram_image

    coch = display_cochleagram(zoo)
    device = next(coch.buffers()).device
    with torch.no_grad():
        c = coch(x.to(device)).cpu()
        top = coch((x if like is None else like).to(device)).cpu().amax(dim=(1, 2, 3))
    for i, n in enumerate(names):
        wav = out / media_path(zoo.name, stage, n, "audio")
        write_wav(wav, x[i], coch.settings.sr)
        picture = modality("audio").cochleagram_path(zoo.name, stage, n)
        cochleagram_image(c[i, 0], out / picture, vmax=float(top[i]))


def write_media(zoo: ZooModel, result: SynthesisResult, names: Sequence[str], stage: str, out: Path) -> None:
    """What a person sees or hears of a result's metamers, under ``media/<model>/<stage>/`` (a sound's cochleagram
    on the colour scale of its stimulus's)."""
    _write(zoo, result.metamers, names, stage, out, like=result.stimuli)


def write_originals(zoo: ZooModel, x: torch.Tensor, names: Sequence[str], out: Path) -> None:
    """The natural stimuli as a person sees or hears them, under ``media/<model>/original/``."""
    _write(zoo, x, names, "original", out, like=x)


def _write(zoo: ZooModel, x: torch.Tensor, names: Sequence[str], stage: str, out: Path, like: torch.Tensor) -> None:
    if zoo.kind == "image":
        from metamers.stimuli import save_png

        for i, n in enumerate(names):
            save_png(x[i], out / media_path(zoo.name, stage, n, "image"))
    elif zoo.kind == "cochleagram":
        _write_cochleagrams(zoo, x, names, stage, out, like=like)
    else:
        _write_audio(zoo, x, names, stage, out, like=like)
