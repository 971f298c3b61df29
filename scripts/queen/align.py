"""Forced alignment of queen.1c speech clips with pocketsphinx 5.1.1 (its default en-us model and cmudict).

Helpers used by ``align_all.py``: ``norm_words`` (text -> lower-case words of ``[a-z']``), ``load16k`` (decode a
clip's MP3 and resample 11025 -> 16000 Hz with soxr, as 16-bit PCM bytes) and ``align`` (word segments in seconds,
100 frames per second). Run as a script to align N random clips of 3-12 words and print the segments and the
real-time factor:

    python scripts/queen/align.py --sample 10 [--transcripts transcripts.tsv] [--queen QUEEN_1C]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import time
from functools import cache

import numpy as np
import soundfile as sf
import soxr
from pocketsphinx import Decoder, get_model_path
from qreader import DEFAULT, QueenResource

FRAMES_PER_SECOND = 100.0


@cache
def cmudict_words() -> frozenset[str]:
    """The words of pocketsphinx's cmudict-en-us.dict (alternate pronunciations folded)."""
    path = os.path.join(get_model_path(), "en-us", "cmudict-en-us.dict")
    with open(path) as f:
        return frozenset(line.split()[0].split("(")[0] for line in f)


def make_decoder() -> Decoder:
    """A quiet 16 kHz pocketsphinx decoder with the default model."""
    return Decoder(samprate=16000, loglevel="FATAL")


def norm_words(text: str) -> list[str]:
    """Lower-case words of ``[a-z']`` (``&`` -> ``and``; other characters split words; outer quotes stripped)."""
    t = text.lower().replace("&", " and ")
    t = re.sub(r"[^a-z' ]+", " ", t)
    ws = [w.strip("'") for w in t.split()]
    return [w for w in ws if w]


def load16k(r: QueenResource, name: str) -> tuple[bytes, float]:
    """Clip ``name`` as 16 kHz little-endian int16 PCM bytes, and its duration in seconds."""
    x, sr = sf.read(io.BytesIO(r.read(name)), dtype="float32")
    y = soxr.resample(x, sr, 16000)
    return (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes(), len(x) / sr


def align(dec: Decoder, pcm: bytes, words: list[str]) -> list[tuple[str, float, float]]:
    """Force-align ``words`` to ``pcm``: [(word, start s, end s)], fillers such as ``<sil>`` included."""
    dec.set_align_text(" ".join(words))
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    fr = FRAMES_PER_SECOND
    return [(s.word, s.start_frame / fr, (s.end_frame + 1) / fr) for s in dec.seg()]


def sample(n: int, transcripts: str, queen: str) -> None:
    """Align ``n`` random clips (seed 0) of 3-12 words and print their segments, CPU time and real-time factor."""
    words_in_dict = cmudict_words()
    r = QueenResource(queen)
    with open(transcripts, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    random.seed(0)
    rows = [x for x in rows if 3 <= len(norm_words(x[3])) <= 12]
    pick = random.sample(rows, n)
    dec = make_decoder()
    tot_audio = tot_cpu = 0.0
    ok = 0
    for fn, spk, _src, text in pick:
        words = norm_words(text)
        oov = [w for w in words if w not in words_in_dict]
        pcm, dur = load16k(r, fn)
        t0 = time.process_time()
        try:
            segs = align(dec, pcm, [w for w in words if w in words_in_dict])
        except Exception as e:
            segs = None
            print("FAIL", fn, e)
        cpu = time.process_time() - t0
        tot_audio += dur
        tot_cpu += cpu
        if segs:
            ok += 1
        print(f"{fn}\t{spk}\tdur={dur:.2f}s cpu={cpu:.2f}s oov={oov}\t{text}")
        for w, a, b in segs or []:
            print(f"    {w:<12s} {a:.2f}-{b:.2f}")
    print(f"aligned {ok}/{n}; audio {tot_audio:.1f}s, cpu {tot_cpu:.1f}s, RTF {tot_cpu / tot_audio:.3f}")


def main() -> None:
    """Parse the arguments and run the sampling mode."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sample", type=int, default=10, metavar="N", help="number of random clips (default 10)")
    ap.add_argument("--transcripts", default="transcripts.tsv", help="transcripts.py's output")
    ap.add_argument("--queen", default=DEFAULT, help=f"path to queen.1c (default {DEFAULT})")
    args = ap.parse_args()
    sample(args.sample, args.transcripts, args.queen)


if __name__ == "__main__":
    main()
