"""Errors the `hpd` command turns into one line and an exit status (SPEC §7)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3


class HpdError(Exception):
    """An error with a one-line message and the exit status it maps to."""

    exit_status = EXIT_DATA


class DataError(HpdError):
    """The exports cannot be trusted: the refresh stops, nothing is published."""

    exit_status = EXIT_DATA


class UsageError(HpdError):
    """A bad option, setting or path given by the user."""

    exit_status = EXIT_USAGE


class LockedError(HpdError):
    """Another refresh of the same warehouse is running."""

    exit_status = EXIT_LOCKED


def location(file: str, row: int | None = None, column: str | None = None) -> str:
    """`file, row N, column C`: where a problem is, as precisely as known."""
    parts = [file]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column}")
    return ", ".join(parts)
