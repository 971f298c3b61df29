"""A run session's bookkeeping: one progress bar over the whole run, and ``run.json`` (provenance, time per step)."""

from __future__ import annotations

import json
import os
import platform
import socket
from collections.abc import Callable
from pathlib import Path

import torch

from metamers._files import atomic_write
from metamers.runs.catalog import Catalog

__all__ = ["Bar", "record_session"]


def _provenance(device: str) -> dict:
    import numpy

    from metamers.synthesis import metamers_version

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    return {
        "metamers": metamers_version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "gpu": gpu,
        "host": socket.gethostname(),
    }


class Bar:
    """One progress bar over the whole run, in units of synthesis iterations (the later steps are estimated)."""

    def __init__(self, total: int, initial: int, show: bool | None) -> None:
        import sys

        from tqdm.auto import tqdm

        show = sys.stderr.isatty() if show is None else show
        self.bar = tqdm(total=total, initial=initial, unit="it", desc="run", disable=not show, dynamic_ncols=True)

    def describe(self, text: str) -> None:
        self.bar.set_description_str(text[:60])

    def add(self, n: int) -> None:
        if n > 0:
            self.bar.update(n)

    def tick(self) -> Callable[[int], None]:
        """A counter for one job: iterations it reports are added, and :meth:`finish` adds the rest."""
        self._job = 0

        def add(n: int) -> None:
            self._job += n
            self.add(n)

        return add

    def finish(self, iterations: int) -> None:
        """A job ended: count whatever of its iterations the bar has not seen (resumed or failed ones)."""
        self.add(iterations - getattr(self, "_job", 0))
        self._job = 0

    def close(self) -> None:
        self.bar.close()


def record_session(out: Path, device: str, t0: float, seconds: float, catalog: Catalog) -> None:
    path = out / "run.json"
    info = json.loads(path.read_text()) if path.exists() else {"sessions": []}
    info["provenance"] = _provenance(device)
    info["sessions"].append({"started": t0, "seconds": seconds, "pid": os.getpid(), "host": socket.gethostname()})
    info["steps"] = {r["name"]: r["seconds"] for r in catalog.query("SELECT name, seconds FROM jobs")}
    atomic_write(path, json.dumps(info, indent=2))
