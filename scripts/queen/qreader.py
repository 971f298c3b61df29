"""Reader for the ScummVM "rebuilt" Flight of the Amazon Queen resource container (queen.1c).

Layout (ScummVM engines/queen/resource.cpp, ``detectVersion`` and ``readTableEntries``)::

    'QTBL' | version string (6 bytes, e.g. 'CEM10\\0') | 2 bytes skipped | compression byte
    (0 none, 1 MP3, 2 OGG, 3 FLAC) | u16 BE n_entries |
    n_entries x {name[12] (NUL padded) | bundle u8 | offset u32 BE | size u32 BE}

Offsets are absolute within queen.1c (bundle 1). Run as a script to print the version, the compression and the
number of entries per file extension:

    python scripts/queen/qreader.py [QUEEN_1C]
"""

from __future__ import annotations

import argparse
import struct
from collections import Counter

DEFAULT = "/usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"


class QueenResource:
    """An open queen.1c: ``entries`` maps an upper-case name to (bundle, offset, size); ``read`` returns the bytes."""

    def __init__(self, path: str = DEFAULT) -> None:
        self.path = path
        self.f = open(path, "rb")  # kept open for random access; see close()
        hdr = self.f.read(4)
        if hdr != b"QTBL":
            raise ValueError(f"{path}: not a rebuilt queen container (header {hdr!r})")
        self.version = self.f.read(6).rstrip(b"\0").decode()
        self.flags = self.f.read(2)
        self.compression = self.f.read(1)[0]
        (n,) = struct.unpack(">H", self.f.read(2))
        self.entries: dict[str, tuple[int, int, int]] = {}
        for _ in range(n):
            raw, bundle, off, size = struct.unpack(">12sBII", self.f.read(21))
            name = raw.split(b"\0")[0].decode("latin-1")
            self.entries[name] = (bundle, off, size)

    def read(self, name: str) -> bytes:
        """Return the bytes of entry ``name`` (case-insensitive)."""
        _bundle, off, size = self.entries[name.upper()]
        self.f.seek(off)
        return self.f.read(size)

    def close(self) -> None:
        """Close the underlying file."""
        self.f.close()


def main() -> None:
    """Print the container's version, compression and entry counts per extension."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("queen", nargs="?", default=DEFAULT, help=f"path to queen.1c (default {DEFAULT})")
    args = ap.parse_args()
    r = QueenResource(args.queen)
    print(r.version, "compression", r.compression, "entries", len(r.entries))
    ext = Counter(n.rsplit(".", 1)[-1] for n in r.entries)
    print(ext.most_common())


if __name__ == "__main__":
    main()
