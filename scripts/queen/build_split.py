"""Cut a word corpus from queen.1c's aligned dialogue, in metamers' corpus split format.

Each clip is 2 s at 20 kHz, centred on the midpoint of one aligned word of a fully aligned line (the paper's rule:
the label is the word at the segment's midpoint; the rest of the line is left in), zero-padded past the line's
ends, with the line scaled to RMS 0.05. Lines of ``TEXT`` or ambiguous (``A|B``) speakers are dropped.

The vocabulary is every word with at least MIN_TOKENS tokens from at least MIN_CHARS training characters, at least
MIN_LETTERS letters, and at least one token from a held-out character. The held-out characters (``HELD``) never
appear in train/valid; they make ``test-queen-clean``. ``valid`` is a random tenth (seed 0) of the training
characters' lines. Each split folder gets waves.npy (int16, n x 40000), words.npy, backgrounds.npy (-1), snr.npy
(inf), speakers.npy, spans.npy (zeros) and meta.json.

    python scripts/queen/build_split.py OUT MIN_TOKENS MIN_CHARS MIN_LETTERS [--alignments alignments.tsv]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
from collections import Counter, defaultdict

import numpy as np
import soundfile as sf
import soxr
from qreader import DEFAULT, QueenResource

HELD = ["FAYE", "FRANK", "HENRY", "LOU", "NAOMI", "IAN", "CHEF", "LOLA"]
SR = 20000
N = 40000  # samples per clip (2 s)
RMS = 0.05

Row = tuple[str, str, str, float, float]  # (file, speaker, word, start s, end s)


def read_alignments(path: str) -> list[Row]:
    """One row per aligned word of the fully aligned lines of clean (single, non-TEXT) speakers."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cells = line.rstrip("\n").split("\t")
            fn, spk, full = cells[0], cells[1], cells[3] == "1"
            if not full or spk == "TEXT" or "|" in spk:
                continue
            for seg in cells[4:]:
                w, a, b = seg.rsplit(":", 2)
                rows.append((fn, spk, w, float(a), float(b)))
    return rows


def choose_vocabulary(rows: list[Row], min_tokens: int, min_chars: int, min_letters: int) -> list[str]:
    """Sorted words that pass the token, character and letter thresholds and occur in the held-out characters."""
    train_tok: Counter[str] = Counter()
    train_chars: defaultdict[str, set[str]] = defaultdict(set)
    held_tok: Counter[str] = Counter()
    for _fn, spk, w, _a, _b in rows:
        if spk in HELD:
            held_tok[w] += 1
        else:
            train_tok[w] += 1
            train_chars[w].add(spk)
    return sorted(
        w
        for w in train_tok
        if train_tok[w] >= min_tokens
        and len(train_chars[w]) >= min_chars
        and len(w) >= min_letters
        and held_tok[w] >= 1
    )


class LineWaves:
    """Decoded, resampled and RMS-normalised lines, caching the most recent one."""

    def __init__(self, r: QueenResource) -> None:
        self.r = r
        self.name: str | None = None
        self.wave: np.ndarray | None = None

    def __call__(self, fn: str) -> np.ndarray:
        """Line ``fn`` at ``SR`` Hz, float32, scaled to RMS ``RMS``."""
        if fn != self.name:
            x, sr = sf.read(io.BytesIO(self.r.read(fn)), dtype="float32")
            y = soxr.resample(x, sr, SR).astype(np.float32)
            self.wave = y / max(1e-4, float(np.sqrt(np.mean(y**2)))) * RMS
            self.name = fn
        return self.wave


def make_splits(rows: list[Row], index: dict[str, int]) -> dict[str, list[Row]]:
    """train / valid (whole lines of training characters, a random tenth) / test-queen-clean (held-out characters)."""
    rng = random.Random(0)
    sel = [x for x in rows if x[2] in index]
    train_rows = [x for x in sel if x[1] not in HELD]
    held_rows = [x for x in sel if x[1] in HELD]
    lines = sorted({x[0] for x in train_rows})
    rng.shuffle(lines)
    valid_lines = set(lines[: len(lines) // 10])
    return {
        "train": [x for x in train_rows if x[0] not in valid_lines],
        "valid": [x for x in train_rows if x[0] in valid_lines],
        "test-queen-clean": held_rows,
    }


def write_split(out: str, name: str, part: list[Row], waves_of: LineWaves, vocab: list[str], spec_hash: str) -> None:
    """Write split folder ``out/name`` (clips in file and time order)."""
    d = f"{out}/{name}"
    index = {w: i for i, w in enumerate(vocab)}
    part = sorted(part, key=lambda x: (x[0], x[3]))
    os.makedirs(d, exist_ok=True)
    waves = np.lib.format.open_memmap(f"{d}/waves.npy", mode="w+", dtype=np.int16, shape=(len(part), N))
    spk_names = sorted({x[1] for x in part})
    for k, (fn, _spk, _w, a, b) in enumerate(part):
        y = waves_of(fn)
        mid = int((a + b) / 2 * SR)
        start = mid - N // 2
        clip = np.zeros(N, np.float32)
        lo, hi = max(0, start), min(len(y), start + N)
        clip[lo - start : hi - start] = y[lo:hi]
        waves[k] = np.clip(clip * 32767, -32767, 32767).astype(np.int16)
    waves.flush()
    del waves
    np.save(f"{d}/words.npy", np.array([index[x[2]] for x in part], np.int64))
    np.save(f"{d}/backgrounds.npy", -np.ones(len(part), np.int64))
    np.save(f"{d}/snr.npy", np.full(len(part), np.inf, np.float32))
    np.save(f"{d}/speakers.npy", np.array([spk_names.index(x[1]) for x in part], np.int64))
    np.save(f"{d}/spans.npy", np.zeros((len(part), 2), np.int64))
    meta = {
        "vocabulary": vocab,
        "background_classes": [],
        "sr": SR,
        "speakers": spk_names,
        "spec": {"source": "queen", "name": name},
        "spec_hash": spec_hash,
        "held_out": HELD,
    }
    with open(f"{d}/meta.json", "w") as f:
        json.dump(meta, f)
    print(name, len(part), "clips", len(spk_names), "characters")


def main() -> None:
    """Build OUT/{train,valid,test-queen-clean}."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("out", help="output folder")
    ap.add_argument("min_tokens", type=int, help="least training tokens per word")
    ap.add_argument("min_chars", type=int, help="least training characters per word")
    ap.add_argument("min_letters", type=int, help="least letters per word")
    ap.add_argument("--alignments", default="alignments.tsv", help="align_all.py's output")
    ap.add_argument("--queen", default=DEFAULT, help=f"path to queen.1c (default {DEFAULT})")
    args = ap.parse_args()
    rows = read_alignments(args.alignments)
    vocab = choose_vocabulary(rows, args.min_tokens, args.min_chars, args.min_letters)
    print("vocabulary", len(vocab), "held-out characters", HELD)
    waves_of = LineWaves(QueenResource(args.queen))
    spec_hash = f"queen-{args.min_tokens}-{args.min_chars}-{args.min_letters}"
    splits = make_splits(rows, {w: i for i, w in enumerate(vocab)})
    for name, part in splits.items():
        write_split(args.out, name, part, waves_of, vocab, spec_hash)


if __name__ == "__main__":
    main()
