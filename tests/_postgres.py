"""A throwaway PostgreSQL server for the tests: the test command's own set-up, not CI's.

The server is Debian's ``postgresql`` package (``make test`` installs it), started from its binaries on a fresh data
directory with a Unix socket of its own and no TCP port, so it never meets a server the machine already runs. As root,
the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PORT = 5433  # only names the socket file: the server listens on no TCP address


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError(
            "the PostgreSQL test needs Debian's postgresql package: `make test` installs it "
            "(or `sudo apt-get install postgresql`)"
        )
    return Path(found[-1]).parent


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server on a new data directory; yield its SQLAlchemy URL; stop it and delete the directory."""
    bin_dir = _binaries()
    root = Path(tempfile.mkdtemp(prefix="metamers-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")  # the package creates this user
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"

    def run(*cmd: str) -> None:
        done = subprocess.run([*as_user, *cmd], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "metamers", "-A", "trust", "--no-sync", "-E", "UTF8")
        opts = f"-k {root} -p {PORT} -c listen_addresses='' -c fsync=off"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "start")
        try:
            run(str(bin_dir / "createdb"), "-h", str(root), "-p", str(PORT), "-U", "metamers", "metamers_test")
            yield f"postgresql+psycopg://metamers@/metamers_test?host={root}&port={PORT}"
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
