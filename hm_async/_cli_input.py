"""Reading the CLI's inputs: VIN files, and the output file a ``--resume`` continues.

Input files come from spreadsheets, shells and other people's scripts, so every way they can
be wrong ends in one message naming the file and line, never in a traceback: a binary file,
bytes that are not UTF-8, a line with more fields than ``VIN,BRAND``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import msgspec

from ._vehicles import validate_vin

__all__ = ["BadLine", "InputError", "dedupe", "numbered_vehicle_lines", "parse_vehicle_lines",
           "read_text_lines", "resume_point"]

#: Input files larger than this are refused: a VIN list of a million vehicles is ~20 MB.
MAX_INPUT_BYTES = 256 * 1024 * 1024


class InputError(ValueError):
    """An input file cannot be used; the message names the file and, where known, the line."""


@dataclass(frozen=True)
class BadLine:
    """A line that names no vehicle in a form hm-async understands."""

    number: int
    text: str
    reason: str

    @property
    def message(self) -> str:
        return f"line {self.number}: {self.reason}"


def read_text_lines(stream: IO[bytes], where: str) -> list[str]:
    """The lines of ``stream`` as text, or :class:`InputError` naming the offending line."""
    raw = stream.read(MAX_INPUT_BYTES + 1)
    if len(raw) > MAX_INPUT_BYTES:
        raise InputError(f"{where} is larger than {MAX_INPUT_BYTES // 2**20} MB")
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a BOM from a spreadsheet's "UTF-8 CSV"
    lines = raw.splitlines()
    out: list[str] = []
    for number, line in enumerate(lines, 1):
        if b"\0" in line:
            raise InputError(f"{where} is not a text file (a NUL byte on line {number})")
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{where} line {number} is not UTF-8 text (byte 0x{line[exc.start]:02x} at "
                f"column {exc.start + 1}); save the file as UTF-8") from None
    return out


def _split_row(line: str) -> list[str]:
    for sep in (",", ";", "\t"):
        if sep in line:
            return [c.strip() for c in next(csv.reader(io.StringIO(line), delimiter=sep))]
    return line.split()


def numbered_vehicle_lines(lines: Iterable[str], *, brand: str | None = None
                           ) -> Iterator[tuple[int, str | tuple[str, str] | BadLine]]:
    """VINs from text: one per line, optionally ``VIN,BRAND`` (CSV with a header works too).

    Blank lines and ``#`` comments are skipped. Malformed VINs are passed on as they are:
    the poll reports them as that line's error instead of stopping the whole job. A line
    with more fields than ``VIN BRAND`` (and no header naming the columns) is a
    :class:`BadLine`: ``VIN extra words`` is a mistake, not a brand called "extra".
    ``brand`` is used for lines that name none (and saves the clearance lookup). Each item
    comes with its line number, for messages.
    """
    vin_col, brand_col = 0, 1
    first = True
    has_header = False
    for number, text in enumerate(lines, 1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        row = _split_row(text)
        if first:
            first = False
            header = [c.lower() for c in row]
            if "vin" in header:
                vin_col = header.index("vin")
                brand_col = header.index("brand") if "brand" in header else -1
                has_header = True
                continue
        if not has_header and len([c for c in row if c]) > 2:
            yield number, BadLine(number, text, f"expected VIN or VIN,BRAND, got {len(row)} "
                                                f"fields in {text[:60]!r}")
            continue
        vin = row[vin_col].upper() if vin_col < len(row) else ""
        line_brand = row[brand_col] if 0 <= brand_col < len(row) and row[brand_col] else brand
        yield number, ((vin, line_brand) if line_brand else vin)


def parse_vehicle_lines(lines: Iterable[str], *, brand: str | None = None
                        ) -> Iterator[str | tuple[str, str] | BadLine]:
    """:func:`numbered_vehicle_lines` without the line numbers."""
    for _, item in numbered_vehicle_lines(lines, brand=brand):
        yield item


def _vin_key(item: str | tuple[str, str]) -> str:
    vin = item if isinstance(item, str) else item[0]
    try:
        return validate_vin(vin)
    except ValueError:
        return vin


def dedupe(items: Iterable[str | tuple[str, str]]) -> tuple[list[str | tuple[str, str]], int]:
    """The items with each VIN once (the first line wins), and how many were dropped.

    HM bills every vehicle-data call, so a VIN listed twice is polled once.
    """
    seen: set[str] = set()
    out: list[str | tuple[str, str]] = []
    dropped = 0
    for item in items:
        key = _vin_key(item)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        out.append(item)
    return out, dropped


class _Written(msgspec.Struct):
    vin: str


_line_decoder = msgspec.json.Decoder(_Written)


def resume_point(path: str) -> set[str]:
    """VINs already in the JSON Lines file ``path`` (empty if it does not exist).

    A last line cut short (the previous run was killed mid-write) is removed from the file,
    so the resumed run appends whole lines; any other line that is not an hm-async result
    stops the resume rather than guessing.
    """
    try:
        fh = open(path, "r+b")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise InputError(f"cannot read {path} to resume: {exc.strerror}") from None
    with fh:
        data = fh.read()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            fh.truncate(complete)
            fh.seek(0, os.SEEK_END)
    vins: set[str] = set()
    for number, line in enumerate(data[:complete].splitlines(), 1):
        if not line.strip():
            continue
        try:
            vins.add(_line_decoder.decode(line).vin)
        except msgspec.DecodeError:
            raise InputError(f"{path} line {number} is not a result line of hm-async poll; "
                             f"not resuming from it") from None
    return vins
