"""Debian's headless Chromium for the tests that look at HTML as a person would."""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

_chromium_failure: list[str] = []


def ensure_chromium() -> Path:
    """Debian's Chromium, installed once per session when missing (as root).

    Fails the calling test with the reason when it cannot be installed.
    """
    if CHROMIUM.exists():
        return CHROMIUM
    # Test workers run in parallel: one installs, the others wait for it.
    with (Path(tempfile.gettempdir()) / "hpd-chromium-install.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install_chromium()


def _install_chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if _chromium_failure:
        pytest.fail(_chromium_failure[0])
    if os.geteuid() != 0:
        _chromium_failure.append(f"{CHROMIUM} is missing and installing it needs root")
        pytest.fail(_chromium_failure[0])
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
    ):
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=1200, env=environment
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            _chromium_failure.append(f"cannot install Chromium: {' '.join(command)}: {error}")
            pytest.fail(_chromium_failure[0])
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
            _chromium_failure.append(
                f"cannot install Chromium: `{' '.join(command)}` exited with "
                f"{done.returncode}:\n" + "\n".join(tail)
            )
            pytest.fail(_chromium_failure[0])
    if not CHROMIUM.exists():
        _chromium_failure.append(f"apt-get installed chromium but {CHROMIUM} is still missing")
        pytest.fail(_chromium_failure[0])
    return CHROMIUM


def chromium_run(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ensure_chromium()), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
