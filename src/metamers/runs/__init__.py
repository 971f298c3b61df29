"""Runs: a directory of metamers, its SQLite catalog, and the steps that fill it."""

from metamers.runs.catalog import Catalog
from metamers.runs.transfer import transfer_dir
from metamers.runs.validate import validate_dir

__all__ = ["Catalog", "transfer_dir", "validate_dir"]
