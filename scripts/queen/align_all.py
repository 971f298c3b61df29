"""Force-align every transcribed queen.1c clip with pocketsphinx; write ``alignments.tsv``.

Clips with a word missing from cmudict, or whose alignment raises, are skipped. Each output line is
``file<TAB>speaker<TAB>n_words<TAB>full_match<TAB>word:start:end ...`` (times in seconds), where ``n_words`` counts
the transcript's words and ``full_match`` is 1 when the aligned words (fillers dropped) equal the transcript;
alignment sometimes stops early, so keep only full matches. One decoder is used for all clips, in file order.

    python scripts/queen/align_all.py [--transcripts transcripts.tsv] [--out DIR] [--limit N] [--queen QUEEN_1C]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from align import align, cmudict_words, load16k, make_decoder, norm_words
from qreader import DEFAULT, QueenResource


def is_filler(word: str) -> bool:
    """True for pocketsphinx fillers and silences (``<sil>``, ``<s>``, ``[NOISE]``, ...)."""
    return word.startswith("<") or word.startswith("[")


def align_rows(r: QueenResource, rows: list[list[str]], out_path: Path) -> None:
    """Align each transcript row (file, speaker, source, text) and write the alignment lines to ``out_path``."""
    words_in_dict = cmudict_words()
    dec = make_decoder()
    t0 = time.time()
    with open(out_path, "w", encoding="utf-8") as out:
        for k, (fn, spk, _src, text) in enumerate(rows):
            words = norm_words(text)
            if not words or any(w not in words_in_dict for w in words):
                continue
            pcm, _dur = load16k(r, fn)
            try:
                segs = align(dec, pcm, words)
            except Exception:
                continue
            segs = [(w.split("(")[0], a, b) for w, a, b in segs if not is_filler(w)]
            full = int([w for w, _a, _b in segs] == words)
            cells = [fn, spk, str(len(words)), str(full)] + [f"{w}:{a:.2f}:{b:.2f}" for w, a, b in segs]
            out.write("\t".join(cells) + "\n")
            if k % 500 == 0:
                print(k, len(rows), round(time.time() - t0), flush=True)
    print("done", round(time.time() - t0))


def main() -> None:
    """Write OUT/alignments.tsv."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--transcripts", default="transcripts.tsv", help="transcripts.py's output")
    ap.add_argument("--out", default=".", help="output folder (default: current directory)")
    ap.add_argument("--limit", type=int, default=None, metavar="N", help="align only the first N transcript rows")
    ap.add_argument("--queen", default=DEFAULT, help=f"path to queen.1c (default {DEFAULT})")
    args = ap.parse_args()
    with open(args.transcripts, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    if args.limit is not None:
        rows = rows[: args.limit]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    align_rows(QueenResource(args.queen), rows, out / "alignments.tsv")


if __name__ == "__main__":
    main()
