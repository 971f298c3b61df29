"""Train a word network on a queen split (``build_split.py``'s output) and score it on the held-out characters.

Uses metamers' training code (``metamers.audio.training``): width 0.125, at most 40 epochs, patience 4, at most
MAX_MINUTES of training; evaluates ``test-queen-clean``. Prints the weights card without its history (first 4000
characters). Needs the project's .venv (metamers installed).

    .venv/bin/python scripts/queen/train_exp.py CORPUS OUT ARCH MAX_MINUTES
"""

from __future__ import annotations

import argparse
import json

from metamers.audio.training import TrainSettings, train_word_net


def main() -> None:
    """Train, evaluate and print the card."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("corpus", help="split root with train/, valid/ and test-queen-clean/")
    ap.add_argument("out", help="output folder for the model and its card")
    ap.add_argument("arch", help='architecture: "standard" or "reduced_aliasing"')
    ap.add_argument("max_minutes", type=float, help="training time limit in minutes")
    args = ap.parse_args()
    s = TrainSettings(architecture=args.arch, width=0.125, epochs=40, patience=4, max_minutes=args.max_minutes)
    card = train_word_net(args.corpus, args.out, s, progress=False, eval_splits=("test-queen-clean",))
    print(json.dumps({k: card[k] for k in card if k != "history"}, indent=1, default=str)[:4000])


if __name__ == "__main__":
    main()
