"""`watchkeeper tsdb export --format parquet`: writes samples as a Parquet table.

One row per sample: a dictionary-encoded string column per label name (null where a series
lacks the label), `timestamp` (UTC, milliseconds) and `value`. pyarrow is an optional extra
(`pip install watchkeeper[parquet]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from watchkeeper.model.matchers import Matcher
from watchkeeper.tsdb.block import Block
from watchkeeper.tsdb.compact import iter_merged


class ExportError(RuntimeError):
    """Raised when an export cannot run (pyarrow missing, output not writable)."""


def export_parquet(
    blocks: Sequence[Block],
    output: Path,
    *,
    matcher_sets: Sequence[Sequence[Matcher]] = ((),),
    mint_ms: int = -(1 << 63),
    maxt_ms: int = (1 << 63) - 1,
) -> int:
    """Writes matching samples to a Parquet file (atomically); returns the row count.

    Raises:
        ExportError: when pyarrow is not installed.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ExportError(
            "Parquet export needs pyarrow: pip install 'watchkeeper[parquet]'"
        ) from exc
    names = sorted({n for b in blocks for n in b.index.label_names()})
    columns = {n: (f"label_{n}" if n in ("timestamp", "value") else n) for n in names}
    fields = [pa.field(columns[n], pa.dictionary(pa.int32(), pa.string())) for n in names]
    fields += [pa.field("timestamp", pa.timestamp("ms", tz="UTC")), pa.field("value", pa.float64())]
    schema = pa.schema(fields)
    tmp = output.with_name(output.name + ".tmp")
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in iter_merged(blocks, matcher_sets, mint_ms, maxt_ms):
                lens = np.diff(batch.offsets)
                series_of_row = np.repeat(np.arange(len(batch), dtype=np.int32), lens)
                arrays = []
                for n in names:
                    vals = [lbls.get(n) for lbls in batch.labels]
                    missing = np.asarray([v == "" for v in vals], dtype=np.bool_)
                    indices = pa.array(series_of_row, mask=np.repeat(missing, lens))
                    arrays.append(
                        pa.DictionaryArray.from_arrays(indices, pa.array(vals, type=pa.string()))
                    )
                arrays.append(pa.array(batch.timestamps_ms, type=pa.timestamp("ms", tz="UTC")))
                arrays.append(pa.array(batch.values, type=pa.float64()))
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                rows += len(batch.timestamps_ms)
        tmp.replace(output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows
