"""CSV files of the custom dataset: a header row, then one sample per row. The
``target`` parameter names the label column (default: the last column); every other
column is a numeric feature. Rows are read in blocks, and every error names the file,
line and column."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Iterator, Mapping, Sequence

import numpy as np

from mlx.datasets.tabular_labels import Table, check_finite_features
from mlx.errors import DatasetError

__all__ = ["csv_columns", "csv_shape", "read_csv", "read_csv_columns"]

_CSV_BLOCK_ROWS = 8192
_EXACT_COUNT_LIMIT = 256 * 1024 * 1024
# The longest line of a CSV read, in characters: a file without line breaks (a
# sparse file of NUL bytes, a binary file) fails here instead of being read whole.
_CSV_LINE_LIMIT = 64 * 1024 * 1024


def _open_csv(file: Path) -> IO[str]:
    # utf-8-sig: spreadsheets often write a byte-order mark before the header
    return open(file, newline="", encoding="utf-8-sig")


def _csv_lines(file: Path, handle: IO[str]) -> Iterator[str]:
    """The lines of ``handle``, each read with a bounded ``readline``; DatasetError
    naming the line that is longer than :data:`_CSV_LINE_LIMIT` characters."""
    number = 0
    while True:
        line = handle.readline(_CSV_LINE_LIMIT + 1)
        if not line:
            return
        number += 1
        if len(line) > _CSV_LINE_LIMIT:
            raise DatasetError(
                f"{file}:{number}: the line is longer than {_CSV_LINE_LIMIT} "
                "characters; this does not look like a CSV file."
            )
        yield line


def _csv_header(
    file: Path, reader: Iterator[list[str]], target: str | None
) -> tuple[list[str], int]:
    try:
        header = next(reader)
    except StopIteration:
        raise DatasetError(
            f"{file}: the file is empty; expected a header row."
        ) from None
    names = [cell.strip() for cell in header]
    if not any(names):
        raise DatasetError(f"{file}:1: the header row is empty.")
    seen = set()
    for column, name in enumerate(names, start=1):
        if not name:
            raise DatasetError(f"{file}:1: column {column} has an empty header name.")
        if name in seen:
            raise DatasetError(f"{file}:1: column name {name!r} appears twice.")
        seen.add(name)
    if target is None:
        target_index = len(names) - 1
    elif target in names:
        target_index = names.index(target)
    else:
        raise DatasetError(
            f"{file}: target column {target!r} not found; the header has "
            f"{', '.join(repr(n) for n in names)}."
        )
    if len(names) < 2:
        raise DatasetError(
            f"{file}:1: the header has only the target column {names[0]!r}; "
            "at least one feature column is needed."
        )
    return names, target_index


def read_csv(
    file: Path, target: str | None, allow_nan: bool, skip: Sequence[str] = ()
) -> Table:
    """Features, labels, feature names and label locator of a CSV file; the
    columns named in ``skip`` (read by :func:`read_csv_columns`) are no features."""
    with _open_csv(file) as handle:
        reader = csv.reader(_csv_lines(file, handle), strict=True)
        row_start = 1  # the line the row being read starts on
        try:
            names, target_index = _csv_header(file, reader, target)
            row_start = reader.line_num + 1
            feature_columns = [
                i for i, n in enumerate(names) if i != target_index and n not in skip
            ]
            feature_names = [names[i] for i in feature_columns]
            if not feature_columns:
                raise DatasetError(f"{file}:1: no feature column is left.")
            blocks: list[np.ndarray] = []
            block: list[list[str]] = []
            block_lines: list[int] = []
            labels: list[str] = []
            lines: list[int] = []
            for row in reader:
                line = reader.line_num
                row_start = line + 1  # where the next row starts
                if not any(cell.strip() for cell in row):
                    continue  # blank line
                if len(row) != len(names):
                    raise DatasetError(
                        f"{file}:{line}: expected {len(names)} fields as in the "
                        f"header, got {len(row)}."
                    )
                block.append([row[i] for i in feature_columns])
                block_lines.append(line)
                labels.append(row[target_index].strip())
                lines.append(line)
                if len(block) == _CSV_BLOCK_ROWS:
                    blocks.append(
                        _csv_block(
                            file, block, block_lines, feature_names, feature_columns
                        )
                    )
                    block, block_lines = [], []
        except csv.Error as exc:
            raise _csv_error(file, exc, row_start, reader.line_num) from None
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{file}: not UTF-8 text ({exc}).") from None
    if block:
        blocks.append(
            _csv_block(file, block, block_lines, feature_names, feature_columns)
        )
    if not labels:
        raise DatasetError(f"{file}: the file has a header but no data rows.")
    X = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]

    def where(index: int) -> str:
        return f"{file}:{lines[index]}: column {names[target_index]!r}"

    def where_x(row: int, column: int) -> str:
        return (
            f"{file}:{lines[row]}: column {feature_names[column]!r} "
            f"(column {feature_columns[column] + 1})"
        )

    if not allow_nan:
        check_finite_features(X, where_x)
    return X, np.array(labels), tuple(feature_names), where


def _csv_error(file: Path, exc: csv.Error, row_start: int, line: int) -> DatasetError:
    if "unexpected end of data" in str(exc):
        return DatasetError(
            f"{file}:{row_start}: unterminated quote: a quoted field opened in the "
            f"row starting on line {row_start} is never closed (the file ends at "
            f"line {line})."
        )
    return DatasetError(f"{file}:{line}: malformed CSV: {exc}.")


def _csv_block(
    file: Path,
    block: list[list[str]],
    lines: list[int],
    names: list[str],
    columns: list[int],
) -> np.ndarray:
    try:
        return np.array(block, dtype=np.float64)
    except ValueError:
        pass
    # slow path, only to say exactly which cell is wrong
    for row, line in zip(block, lines):
        for column, cell in enumerate(row):
            try:
                float(cell)
            except ValueError:
                shown = "an empty cell" if not cell.strip() else repr(cell)
                raise DatasetError(
                    f"{file}:{line}: column {names[column]!r} (column "
                    f"{columns[column] + 1}) holds {shown}; expected a number."
                ) from None
    raise AssertionError("a cell failed to convert but none was found")


def csv_shape(file: Path, target: str | None) -> tuple[int, int, tuple[str, ...]]:
    """(data rows, feature columns, notes) of a CSV file from its header and line
    count, never parsing a row; the count is estimated for a very large file."""
    with _open_csv(file) as handle:
        reader = csv.reader(_csv_lines(file, handle), strict=True)
        try:
            names, _ = _csv_header(file, reader, target)
        except csv.Error as exc:
            raise _csv_error(file, exc, 1, reader.line_num) from None
    size = file.stat().st_size
    notes: tuple[str, ...] = ()
    if size <= _EXACT_COUNT_LIMIT:
        n_rows = _count_data_lines(file)
        if n_rows == 0:
            raise DatasetError(f"{file}: the file has a header but no data rows.")
    else:
        n_rows = _estimate_data_lines(file, size)
        notes = ("n_samples estimated from the file size",)
    return (n_rows, len(names) - 1, notes)


def _count_data_lines(file: Path) -> int:
    newlines = 0
    last = b"\n"
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    lines = newlines + (0 if last == b"\n" else 1)
    return max(lines - 1, 0)


def _estimate_data_lines(file: Path, size: int) -> int:
    with open(file, "rb") as handle:
        sample = handle.read(1 << 20)
    per_line = len(sample) / max(sample.count(b"\n"), 1)
    return max(int(size / per_line) - 1, 0)


def csv_columns(file: Path) -> list[str]:
    """The column names of a CSV file's header."""
    with _open_csv(file) as handle:
        reader = csv.reader(_csv_lines(file, handle), strict=True)
        try:
            return _csv_header(file, reader, None)[0]
        except csv.Error as exc:
            raise _csv_error(file, exc, 1, reader.line_num) from None


def read_csv_columns(file: Path, columns: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The text of named columns, one cell per data row as :func:`read_csv` reads
    the rows (blank lines skipped), stripped. ``columns`` maps the parameter that
    names a column (``id_column``) to the column; the result is keyed the same."""
    with _open_csv(file) as handle:
        reader = csv.reader(_csv_lines(file, handle), strict=True)
        try:
            names, _ = _csv_header(file, reader, None)
            index = {}
            for key, column in columns.items():
                if column not in names:
                    raise DatasetError(
                        f"{file}: {key} column {column!r} not found; the header has "
                        f"{', '.join(repr(n) for n in names)}."
                    )
                index[key] = names.index(column)
            cells: dict[str, list[str]] = {key: [] for key in columns}
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank line, as read_csv skips it
                for key, i in index.items():
                    cells[key].append(row[i].strip())
        except csv.Error as exc:
            raise _csv_error(file, exc, 1, reader.line_num) from None
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{file}: not UTF-8 text ({exc}).") from None
    return {key: np.array(values, dtype=str) for key, values in cells.items()}
