"""TSDB block index: symbols, series with chunk references, postings, label values.

`write_index` writes the file once; `IndexReader` memory-maps it and answers matcher
lookups with roaring postings. The format is specified in docs/formats/index.md.
"""

from __future__ import annotations

from watchkeeper.tsdb.index.reader import IndexReader
from watchkeeper.tsdb.index.writer import ChunkRefs, write_index

__all__ = ["ChunkRefs", "IndexReader", "write_index"]
