"""What differs between the three kinds of input a model takes: an image, a sound, or a cochleagram.

A run keeps what a person sees or hears of each stimulus and metamer under one naming rule, held here: a picture is a
PNG, a sound a 16-bit WAV with a picture of its cochleagram beside it, and a metamer optimised on a cochleagram (the
paper's "inverted cochleagram" condition, nothing to play) is the cochleagram's picture itself.  The runner, the
report and the experiments read the names from here rather than spelling them out.

Examples
--------
>>> modality("audio").media_files("word-standard", "conv_0", "may")
['media/word-standard/conv_0/may.wav', 'media/word-standard/conv_0/may_cochleagram.png']
>>> modality("image").perceived, modality("cochleagram").playable
('sees', False)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["KINDS", "RESOLUTIONS", "Modality", "as_displayed", "as_presented", "as_written", "modality", "quantize"]

RESOLUTIONS: dict[str, tuple[float, float, int] | None] = {
    "float": None,
    "8-bit": (0.0, 1.0, 255),
    "16-bit": (-1.0, 1.0, 32767),
}
"""Each file resolution as (low, high, levels per unit); ``float``: the values as optimised."""


def quantize(x: torch.Tensor, resolution: str) -> torch.Tensor:
    """``x`` as a file of that resolution holds it: clamped to its range and rounded to its levels.

    Examples
    --------
    >>> quantize(torch.tensor([0.1234, 1.5]), "8-bit").mul(255).tolist()
    [31.0, 255.0]
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution {resolution!r} is not one of {', '.join(RESOLUTIONS)}.")
    q = RESOLUTIONS[resolution]
    if q is None:
        return x
    lo, hi, levels = q
    return (x.clamp(lo, hi) * levels).round() / levels


def as_displayed(x: torch.Tensor) -> torch.Tensor:
    """Images as an 8-bit PNG holds them (what a person sees): ``round(x * 255) / 255``.

    Examples
    --------
    >>> round(as_displayed(torch.tensor([0.1234])).item() * 255, 4)
    31.0
    """
    return quantize(x, "8-bit")


def as_written(x: torch.Tensor) -> torch.Tensor:
    """Waveforms as a 16-bit WAV holds them (what a person hears): ``round(x * 32767) / 32767``.

    Examples
    --------
    >>> round(as_written(torch.tensor([0.5])).item() * 32767, 3)
    16384.0
    """
    return quantize(x, "16-bit")


@dataclass(frozen=True)
class Modality:
    """One kind of input: how its media are named and what a person does with them.

    Attributes
    ----------
    kind : str
        ``"image"``, ``"audio"`` or ``"cochleagram"`` (:attr:`metamers.models.ZooModel.kind`).
    suffix : str
        The file a person sees or hears: ``".png"`` or ``".wav"``.
    playable : bool
        Whether that file is a sound (then a cochleagram picture stands beside it).
    resolution : str
        How that file holds the values (:data:`RESOLUTIONS`): ``"8-bit"`` pictures, ``"16-bit"`` waveforms; a
        cochleagram, never played, is judged as optimised (``"float"``).
    perceived : str
        What a person does with it, for sentences: ``"sees"`` or ``"hears"``.
    """

    kind: str
    suffix: str
    playable: bool
    perceived: str
    resolution: str

    def present(self, x: torch.Tensor) -> torch.Tensor:
        """What a person sees or hears of an input of this kind (:func:`quantize` at its resolution)."""
        return quantize(x, self.resolution)

    @property
    def is_sound(self) -> bool:
        """Audio and cochleagram inputs are both sounds: speech stimuli, speech nulls and word labels."""
        return self.kind != "image"

    @property
    def family(self) -> str:
        """``"image"`` or ``"audio"``: whose synthesis settings, stimuli and null a kind takes (a cochleagram view of a
        word network takes the audio ones).

        Examples
        --------
        >>> modality("cochleagram").family
        'audio'
        """
        return "audio" if self.is_sound else "image"

    def media_path(self, model: str, stage: str, stimulus: str) -> str:
        """Where a run keeps what a person sees or hears of a metamer (``stage="original"``: the stimulus itself).

        Examples
        --------
        >>> modality("image").media_path("efficientnet-lite0", "block_2", "chelsea")
        'media/efficientnet-lite0/block_2/chelsea.png'
        """
        return f"media/{model}/{stage}/{stimulus}{self.suffix}"

    def cochleagram_path(self, model: str, stage: str, stimulus: str) -> str | None:
        """The cochleagram picture beside a sound (None for images; a cochleagram metamer is its own picture).

        Examples
        --------
        >>> modality("audio").cochleagram_path("word-standard", "original", "may")
        'media/word-standard/original/may_cochleagram.png'
        """
        if self.kind == "image":
            return None
        if not self.playable:
            return self.media_path(model, stage, stimulus)
        return f"media/{model}/{stage}/{stimulus}_cochleagram.png"

    def media_files(self, model: str, stage: str, stimulus: str) -> list[str]:
        """Every file of one stimulus or metamer, relative to the run directory."""
        main = self.media_path(model, stage, stimulus)
        extra = self.cochleagram_path(model, stage, stimulus) if self.playable else None
        return [main] if extra is None else [main, extra]


KINDS: dict[str, Modality] = {
    "image": Modality("image", ".png", playable=False, perceived="sees", resolution="8-bit"),
    "audio": Modality("audio", ".wav", playable=True, perceived="hears", resolution="16-bit"),
    "cochleagram": Modality("cochleagram", ".png", playable=False, perceived="hears", resolution="float"),
}
"""The three kinds, by name."""


def modality(kind: str) -> Modality:
    """The :class:`Modality` of a kind name, with a clear error for any other.

    Examples
    --------
    >>> modality("video")
    Traceback (most recent call last):
    ...
    ValueError: unknown input kind 'video': choose from image, audio, cochleagram.
    """
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown input kind {kind!r}: choose from {', '.join(KINDS)}.") from None


def as_presented(x: torch.Tensor, kind: str) -> torch.Tensor:
    """What a person sees or hears of a model's input: 8-bit images, 16-bit waveforms; cochleagrams (which are never
    played) as they are.

    Examples
    --------
    >>> as_presented(torch.tensor([0.3]), "cochleagram").item() == as_presented(torch.tensor([0.3]), "audio").item()
    False
    """
    return modality(kind).present(x)
