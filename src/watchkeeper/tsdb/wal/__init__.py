"""The TSDB's write-ahead log: segment files of batch records, replay and checkpoints."""

from watchkeeper.tsdb.wal.log import (
    Corruption,
    ReplayStatus,
    WriteAheadLog,
    list_segments,
    read_records,
    write_checkpoint,
)
from watchkeeper.tsdb.wal.records import (
    OutOfOrderFlushedRecord,
    Record,
    RecordDecodeError,
    RecordType,
    SamplesRecord,
    SeriesRecord,
    TombstonesRecord,
    decode,
    encode,
)

__all__ = [
    "Corruption",
    "OutOfOrderFlushedRecord",
    "Record",
    "RecordDecodeError",
    "RecordType",
    "ReplayStatus",
    "SamplesRecord",
    "SeriesRecord",
    "TombstonesRecord",
    "WriteAheadLog",
    "decode",
    "encode",
    "list_segments",
    "read_records",
    "write_checkpoint",
]
