"""Reading the first rows of a CSV or Parquet file given on the command line (pandas)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from safeload.errors import OperationalError

_BATCH = 65_536


def read_table(path: str, max_rows: int, what: str = "") -> tuple[Any, bool]:
    """The first ``max_rows`` rows of a CSV or Parquet file, and whether there were more.

    Only those rows are read, whatever the file's size (Parquet in row batches). ``what``
    names the option in messages (``"--sample "``).
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise OperationalError(
            f"{what or 'reading a table '}needs pandas: pip install pandas"
        ) from exc
    source = Path(path)
    if not source.is_file():
        raise OperationalError(f"{what}{source}: no such file")
    suffix = source.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(source, nrows=max_rows + 1)
            return frame.iloc[:max_rows], len(frame) > max_rows
        if suffix in (".parquet", ".pq"):
            pq: Any = importlib.import_module("pyarrow.parquet")
            batches, read = [], 0
            with pq.ParquetFile(source) as parquet:
                for batch in parquet.iter_batches(batch_size=min(_BATCH, max_rows + 1)):
                    batches.append(batch)
                    read += batch.num_rows
                    if read > max_rows:
                        break
                schema = parquet.schema_arrow
            pa: Any = importlib.import_module("pyarrow")
            table = pa.Table.from_batches(batches, schema=schema)
            return table.slice(0, max_rows).to_pandas(), read > max_rows
    except ImportError as exc:
        raise OperationalError("reading Parquet needs pyarrow: pip install pyarrow") from exc
    except (ValueError, OSError) as exc:
        raise OperationalError(f"{what}{source} cannot be read: {exc}") from exc
    raise OperationalError(f"{what}{source}: give a .csv or .parquet file")
