"""`claimwatch export`: write one research view to CSV, JSON Lines or Parquet.

Rows are streamed from the database and typed alike on both backends (db.research.normalise);
the file is written next to the target and renamed into place, so a failed export leaves no
half-written file behind.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from db.research import ViewQuery, iter_view_rows
from db.views import View

logger = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "jsonl")
PARQUET_BATCH = 10_000


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def write_csv(view: View, rows: Iterable[tuple[Any, ...]], path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(view.column_names)
        for row in rows:
            writer.writerow([_text(value) for value in row])
            count += 1
    return count


def write_jsonl(view: View, rows: Iterable[tuple[Any, ...]], path: Path) -> int:
    count = 0
    names = view.column_names
    with path.open("w", encoding="utf-8") as stream:
        for row in rows:
            record = {name: _text(value) for name, value in zip(names, row, strict=True)}
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def parquet_schema(view: View) -> Any:
    import pyarrow as pa

    types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "text": pa.string(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "datetime": pa.timestamp("us"),
    }
    return pa.schema(
        [pa.field(c.name, types[c.kind], metadata={"description": c.description}) for c in view.columns],
        metadata={"view": view.name, "description": view.description},
    )


def write_parquet(view: View, rows: Iterable[tuple[Any, ...]], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema(view)
    count = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        for chunk in _batches(rows, PARQUET_BATCH):
            columns = list(zip(*chunk, strict=True))
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            count += len(chunk)
        if count == 0:
            writer.write_table(schema.empty_table())
    return count


WRITERS: dict[str, Callable[[View, Iterable[tuple[Any, ...]], Path], int]] = {
    "csv": write_csv,
    "jsonl": write_jsonl,
    "parquet": write_parquet,
}


def _batches(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` that replaces it only when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    temporary.chmod(0o666 & ~umask)  # mkstemp's 0600 would make the export private
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def export_view(sessions: sessionmaker[Session], query: ViewQuery, fmt: str, output: Path) -> int:
    """Write the rows of ``query`` to ``output`` in ``fmt``; returns the number of rows."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    with sessions() as session, atomic_path(output) as temporary:
        count = WRITERS[fmt](query.view, iter_view_rows(session, query), temporary)
    logger.debug("exported %d rows of %s to %s (%s)", count, query.view.name, output, fmt)
    return count
