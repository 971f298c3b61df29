"""Runs: a directory of metamers, its SQLite catalog, the steps that fill it, and the read model that reads it.

The steps (:func:`validate_dir`, :func:`transfer_dir`) are imported when first asked for, so that reading a run
(:class:`~metamers.runs.rundir.RunDir`) never loads the code that runs one.
"""

from importlib import import_module

from metamers.runs.catalog import Catalog
from metamers.runs.rundir import RunDir, RunError

__all__ = ["Catalog", "RunDir", "RunError", "transfer_dir", "validate_dir"]

_STEPS = {"transfer_dir": "metamers.runs.transfer", "validate_dir": "metamers.runs.validate"}


def __getattr__(name: str):
    if name in _STEPS:
        return getattr(import_module(_STEPS[name]), name)
    raise AttributeError(f"module 'metamers.runs' has no attribute {name!r}")
