"""Find where a CSV export is broken, for a one-line error (SPEC §8).

DuckDB reads the exports; when it refuses one, this module reads the file
again, slowly but only on that error path, to name the first broken row (from
1 after the header) and column: bytes that are not UTF-8, a quote left open,
a row whose field count differs from the header's.
"""

from __future__ import annotations

import csv
from pathlib import Path

from hpd.errors import location

_CHUNK = 1 << 20


def _field_with_bad_bytes(fields: list[str]) -> int | None:
    for index, value in enumerate(fields):
        if any("\udc80" <= char <= "\udcff" for char in value):
            return index
    return None


def diagnose_csv(path: Path) -> str | None:
    """A one-line description of the first problem in `path`, or None."""
    if path.stat().st_size == 0:
        return f"{location(path.name)}: the file is empty (no header row)"
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return f"{location(path.name)}: the file is empty (no header row)"
        except csv.Error as error:
            return f"{location(path.name, 0)}: the header is not valid CSV ({error})"
        bad = _field_with_bad_bytes(header)
        if bad is not None:
            return f"{location(path.name, 0)}: the header is not UTF-8 text"
        row = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return None
            except csv.Error as error:
                return (
                    f"{location(path.name, row + 1)}: not valid CSV ({error}; a quote left open?)"
                )
            row += 1
            bad = _field_with_bad_bytes(fields)
            if bad is not None:
                column = header[bad] if bad < len(header) else None
                return (
                    f"{location(path.name, row, column)}: not UTF-8 text (the file must be UTF-8)"
                )
            if len(fields) != len(header) and fields:
                return (
                    f"{location(path.name, row)}: {len(fields)} fields where the header has "
                    f"{len(header)}"
                )
