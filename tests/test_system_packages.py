"""scripts/system-packages: what `make` runs to install the Debian packages the demo and the suite need."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "scripts" / "system-packages"


def _run(*args: str, env: dict | None = None, as_nobody: bool = False) -> subprocess.CompletedProcess:
    cmd = [str(SCRIPT), *args]
    if as_nobody and os.geteuid() == 0:
        cmd = ["runuser", "-u", "nobody", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)


def test_on_this_machine_nothing_is_missing():
    """`make test` ran the script before the suite: everything the suite needs is here."""
    done = _run("--list", "test")
    assert done.returncode == 0 and done.stdout.strip() == ""


def test_a_missing_package_is_named_and_the_demo_needs_less_than_the_tests():
    env = {"METAMERS_ASTERISK_DIR": "/nonexistent/recordings"}
    assert _run("--list", "demo", env=env).stdout.split() == ["asterisk-core-sounds-en-wav"]
    assert _run("--list", "test", env=env).stdout.split() == ["asterisk-core-sounds-en-wav"]


def test_without_root_or_sudo_it_stops_at_once_with_the_command_to_run():
    fake = Path(tempfile.mkdtemp())
    try:
        fake.chmod(0o777)  # the user the script runs as can leave the mark
        (fake / "sudo").write_text("#!/bin/sh\nexit 1\n")  # sudo that wants a password
        (fake / "apt-get").write_text(f"#!/bin/sh\ntouch {fake}/apt-get-ran\n")  # would leave a mark if called
        for tool in ("sudo", "apt-get"):
            (fake / tool).chmod(0o755)
        env = {"METAMERS_ASTERISK_DIR": "/nonexistent/recordings", "PATH": f"{fake}:{os.environ['PATH']}"}
        done = _run("demo", env=env, as_nobody=True)
        tried = (fake / "apt-get-ran").exists()
    finally:
        shutil.rmtree(fake)
    assert done.returncode == 1
    assert "sudo apt-get install -y --no-install-recommends asterisk-core-sounds-en-wav" in done.stderr
    assert not tried  # it stopped at once: no apt-get without root


def test_an_unknown_target_is_refused():
    done = _run("everything")
    assert done.returncode == 2 and "usage:" in done.stderr
