"""TSDB tools behind `watchkeeper tsdb`: import OpenMetrics, analyze, dump, export Parquet."""

from __future__ import annotations

from watchkeeper.tsdb.tools.analyze import AnalyzeReport, analyze_block, render_report
from watchkeeper.tsdb.tools.dump import DumpFormat, dump_samples
from watchkeeper.tsdb.tools.export import export_parquet
from watchkeeper.tsdb.tools.importer import ImportInputError, import_openmetrics

__all__ = [
    "AnalyzeReport",
    "DumpFormat",
    "ImportInputError",
    "analyze_block",
    "dump_samples",
    "export_parquet",
    "import_openmetrics",
    "render_report",
]
