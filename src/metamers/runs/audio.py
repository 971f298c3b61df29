"""Audio metamers end to end: speech clips -> metamers at each stage -> WAV files, cochleagram figures, validation.

The directory is laid out as a plan's run (:mod:`metamers.runs.run`): ``results/<model>__<stage>__b0.safetensors``
per stage (resumable checkpoints under ``checkpoints/``), ``media/<model>/<stage>/<word>.wav`` with its cochleagram
picture (the originals under ``media/<model>/original/``: 16-bit WAV files a person can play),
``figures/cochleagrams_<model>.png`` (originals beside their metamers) and, after validation, what
:func:`metamers.runs.validate.validate_dir` writes (catalog, nulls from random pairs of speech clips, Table S4 rows).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from metamers.audio.clips import word_clips
from metamers.models import ZooModel, load
from metamers.runs.jobs import Job, reusable
from metamers.runs.media import display_cochleagram, sample_rate, write_media, write_originals
from metamers.settings import SynthesisSettings
from metamers.synthesis import SynthesisResult, synthesize

__all__ = ["audio_metamers"]


def _settings(iterations: int, lr: float, seed: int, **stop: object) -> SynthesisSettings:
    return SynthesisSettings.preset("feather2019_audio", iterations=iterations, lr=lr, seed=seed, **stop)


def audio_metamers(
    model: str | ZooModel,
    words: Sequence[str],
    stages: Sequence[str] | None = None,
    out: str | os.PathLike = "audio-metamers",
    *,
    source: str = "recorded",
    iterations: int = 2000,
    lr: float = 0.001,
    seed: int = 0,
    progress: bool | None = None,
    checkpoint_every: int = 250,
    stop_rho: float | None = None,
    stop_label: bool = False,
) -> dict[str, SynthesisResult]:
    """Synthesize audio metamers of spoken words at several stages of a word network; write WAVs and a figure.

    Each stage's synthesis starts from pink noise at RMS 0.01 (the paper's) and optimises the waveform through the
    cochleagram and the network with Adam on the squared error. Stages already finished in ``out`` are loaded, and
    an interrupted stage resumes from its checkpoint.

    Parameters
    ----------
    model : str or ZooModel
        An audio zoo model, e.g. ``"word-standard"``.
    words : sequence of str
        Words to make clips of (see :func:`word_clips`).
    stages : sequence of str, optional
        Stage names (``model.stages``: ``cochleagram``, ``conv_0``, ...); default all of them.
    out : path
        Run directory.
    source : str
        Speech source of the clips.
    iterations, lr, seed
        Synthesis settings (Adam learning rate; seed of the pink noise).
    progress : bool, optional
        Progress bars (default: when stderr is a terminal).
    checkpoint_every : int
        Iterations between checkpoints.
    stop_rho, stop_label
        Stop each clip once its rho at the stage reaches ``stop_rho`` (and, with ``stop_label``, the network hears
        its word), judged on the clip as its 16-bit WAV holds it; ``iterations`` is then a cap
        (:class:`metamers.SynthesisSettings`).

    Returns
    -------
    dict
        ``{stage: SynthesisResult}``.

    Examples
    --------
    >>> results = audio_metamers("word-standard", ["seven"], ["conv_0"], iterations=10)  # doctest: +SKIP
    """
    zoo = load(model) if isinstance(model, str) else model
    if zoo.kind != "audio":
        raise ValueError(f"{zoo.name} is an {zoo.kind} model; audio_metamers takes audio models (word-standard, ...).")
    from metamers.taps import list_layers

    stages = list(stages) if stages else list(zoo.stages)
    layers = {lay.name for lay in list_layers(zoo.module, zoo.example())}
    unknown = [s for s in stages if s not in zoo.stages and s not in layers]
    if unknown:
        raise ValueError(
            f"{zoo.name} has no stage or layer {', '.join(unknown)}; its stages: {', '.join(zoo.stages) or 'none'} "
            f"(`metamers layers` lists its layers)."
        )
    out = Path(out)
    sr = sample_rate(zoo)
    x = word_clips(words, source=source, n_samples=zoo.input_shape[-1], sr=sr)
    names = list(words)
    write_originals(zoo, x, names, out)
    stop_on = "float" if stop_rho is None else "16-bit"  # judged as the WAV holds it
    settings = _settings(iterations, lr, seed, stop_rho=stop_rho, stop_label=stop_label, stop_on=stop_on)
    results: dict[str, SynthesisResult] = {}
    for stage in stages:
        job = Job(zoo.name, zoo.kind, stage, zoo.layer(stage), 0, tuple(names), settings.iterations)  # a plan's layout
        path = out / job.result
        if path.exists():
            r = SynthesisResult.load(path)
            if reusable(r, settings, x, names, zoo.weights_id):
                results[stage] = r
                continue
        r = synthesize(
            zoo.module,
            x,
            job.layer,
            settings,
            checkpoint=out / "checkpoints" / f"{job.stem}.pt",
            checkpoint_every=checkpoint_every,
            progress=progress,
        )
        r.extra.update(
            model=zoo.name,
            stimuli=names,
            stage=stage,
            source=source,
            model_spec=zoo.provenance.get("spec"),
            weights_id=zoo.weights_id,
        )
        r.save(path)
        results[stage] = r
        write_media(zoo, r, names, stage, out)
    from metamers.report.figures import cochleagram_grid

    coch = display_cochleagram(zoo)
    with torch.no_grad():
        columns = {s: coch(r.metamers) for s, r in results.items()}
        notes = {}
        for s, r in results.items():
            labels = zoo.predict(r.metamers)
            notes[s] = [f"rho {float(r.layer_rho[i]):.3f}, '{zoo.labels[int(labels[i])]}'" for i in range(len(names))]
        cochleagram_grid(
            coch(x),
            columns,
            names,
            coch.centre_frequencies,
            out / "figures" / f"cochleagrams_{zoo.name}.png",
            env_sr=coch.settings.env_sr,
            notes=notes,
        )
    return results
