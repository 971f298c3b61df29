"""The held-out accuracies of shipped word networks, as Markdown, read from their weights cards.

One row per network: validation accuracy, then each held-out split of the real-speech corpus as "noisy / clean"
(backgrounds at -10 to +10 dB SNR / none), then the same per held-out real speaker.

    .venv/bin/python scripts/held_out_table.py word-real-standard word-real-reduced-aliasing
"""

from __future__ import annotations

import sys

from metamers.models.word_zoo import WEIGHTS_DIR, read_card

GROUPS = ("flite", "asterisk", "hedgewars", "kajongg", "klettres")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def table(names: list[str]) -> str:
    cards = {n: read_card(WEIGHTS_DIR / f"{n}.safetensors") for n in names}
    head = ["network", "architecture", "epochs", "validation", *(f"held out: {g}" for g in GROUPS)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, card in cards.items():
        held = card["held_out"]
        cells = [f"`{name}`", card["architecture"].replace("_", "-"), str(card["best_epoch"])]
        cells.append(_pct(card["valid_accuracy"]))
        for g in GROUPS:
            noisy, clean = held.get(f"test-{g}", {}), held.get(f"test-{g}-clean", {})
            cells.append(f"{_pct(noisy.get('accuracy'))} / {_pct(clean.get('accuracy'))}")
        lines.append("| " + " | ".join(cells) + " |")
    speakers = sorted({s for c in cards.values() for split in c["held_out"].values() for s in split["speakers"]})
    speakers = [s for s in speakers if ":" in s]  # real speakers ("<package>:<voice>")
    lines += ["", "| held-out real speaker | " + " | ".join(f"`{n}`" for n in cards) + " |"]
    lines.append("|" + " --- |" * (len(cards) + 1))
    for s in speakers:
        row = [f"`{s}`"]
        for card in cards.values():
            splits = card["held_out"]
            noisy = next((v["speakers"][s] for k, v in splits.items() if s in v["speakers"] and "clean" not in k), None)
            clean = next((v["speakers"][s] for k, v in splits.items() if s in v["speakers"] and "clean" in k), None)
            n = (noisy or clean or {}).get("clips", 0)
            row.append(f"{_pct((noisy or {}).get('accuracy'))} / {_pct((clean or {}).get('accuracy'))} ({n})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1:] or ["word-real-standard", "word-real-reduced-aliasing"]))
