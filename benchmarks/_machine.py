"""What a benchmark ran on: written beside every result."""

from __future__ import annotations

import os
import platform

import torch


def machine() -> dict:
    """CPU model, cores, memory, GPU, library versions and thread count."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "unknown"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def load_cells(out: str, merge: list[str]) -> dict:
    """A resumable benchmark's results: ``out`` if it exists, with the cells of the ``merge`` files (parallel runs)."""
    import json
    from pathlib import Path

    path = Path(out)
    done = json.loads(path.read_text()) if path.exists() else {"cells": {}}
    for other in merge:
        done["cells"].update(json.loads(Path(other).read_text())["cells"])
    return done
