"""`watchkeeper tsdb ...`: import, list, analyze, dump and export TSDB data (as promtool tsdb).

Subcommands: `import openmetrics FILE [DIR]`, `list [DIR]`, `analyze [DIR] [BLOCK-ID]`,
`dump [DIR]` and `dump-openmetrics [DIR]` (blocks and the head replayed from the WAL, read
only), `export --format parquet [DIR] --output FILE`. DIR defaults to ./data, the default
`--storage.tsdb.path` of the server.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from watchkeeper.model.matchers import Matcher
from watchkeeper.storage.interface import StorageError
from watchkeeper.tsdb.block import Block, BlockMeta, open_blocks
from watchkeeper.tsdb.chunks.errors import CorruptionError
from watchkeeper.tsdb.db import TSDB
from watchkeeper.tsdb.tools.analyze import analyze_block, format_go_duration, render_report
from watchkeeper.tsdb.tools.dump import DumpFormat, dump_samples
from watchkeeper.tsdb.tools.export import ExportError, export_parquet
from watchkeeper.tsdb.tools.importer import ImportInputError, import_openmetrics
from watchkeeper.tsdb.tools.selector import SelectorError, parse_selector

DEFAULT_DIR = "data"
_MIN_TIME = -(1 << 63)
_MAX_TIME = (1 << 63) - 1
_ALL = "{__name__=~'(?s:.*)'}"


def print_blocks(metas: Sequence[BlockMeta], sizes: Sequence[int], out: TextIO) -> None:
    """Prints blocks as promtool's table (ULID, times, duration, counts, size)."""
    rows = [["BLOCK ULID", "MIN TIME", "MAX TIME", "DURATION", "NUM SAMPLES", "NUM CHUNKS",
             "NUM SERIES", "SIZE"]]  # fmt: skip
    for m, size in zip(metas, sizes, strict=True):
        rows.append([
            m.ulid, str(m.min_time_ms), str(m.max_time_ms),
            format_go_duration(m.max_time_ms - m.min_time_ms), str(m.stats.num_samples),
            str(m.stats.num_chunks), str(m.stats.num_series), str(size),
        ])  # fmt: skip
    widths = [max(13, max(len(r[i]) for r in rows) + 2) for i in range(len(rows[0]) - 1)]
    out.writelines(
        "".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + r[-1] + "\n" for r in rows
    )


def _matcher_sets(selectors: Sequence[str] | None) -> list[list[Matcher]]:
    return [parse_selector(s) for s in (selectors or [_ALL])]


def _open(dir_: str) -> list[Block]:
    path = Path(dir_)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such directory")
    return open_blocks(path)


def run_import(args: argparse.Namespace) -> int:
    """Backfills blocks from an OpenMetrics file."""
    try:
        dirs = import_openmetrics(
            Path(args.file), Path(args.dir), block_duration_ms=args.max_block_duration_ms
        )
    except (ImportInputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        _print_block_list([Block.open(d) for d in dirs])
    return 0


def _print_block_list(blocks: Sequence[Block]) -> None:
    try:
        print_blocks([b.meta for b in blocks], [b.size_bytes() for b in blocks], sys.stdout)
    finally:
        for b in blocks:
            b.close()


def run_list(args: argparse.Namespace) -> int:
    """Lists the blocks of a data directory."""
    try:
        blocks = _open(args.dir)
    except (CorruptionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_block_list(blocks)
    return 0


def run_analyze(args: argparse.Namespace) -> int:
    """Prints cardinality and churn of one block (the newest by default)."""
    try:
        blocks = _open(args.dir)
    except (CorruptionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if not blocks:
            print(f"error: no blocks found in {args.dir}", file=sys.stderr)
            return 1
        if args.block_id:
            chosen = [b for b in blocks if b.meta.ulid == args.block_id]
            if not chosen:
                print(f"error: block {args.block_id} not found", file=sys.stderr)
                return 1
            block = chosen[0]
        else:
            block = max(blocks, key=lambda b: b.meta.ulid)
        render_report(analyze_block(block, limit=args.limit), sys.stdout, plain=args.plain)
    finally:
        for b in blocks:
            b.close()
    return 0


def run_dump(args: argparse.Namespace) -> int:
    """Prints the samples of blocks and head as promtool tsdb dump (or dump-openmetrics).

    The directory is opened read-only: no lock, no WAL repair, nothing written, so a
    directory a running server holds can be dumped.
    """
    try:
        sets = _matcher_sets(args.match)
        db = TSDB.open_read_only(Path(args.dir))
    except (SelectorError, StorageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        for bad in db.head.replay_status.corruptions:
            print(
                f"warning: WAL {bad.path} is damaged at offset {bad.offset} ({bad.reason}): "
                "later records are not dumped",
                file=sys.stderr,
            )
        with db.blocks_in_range(args.min_time, args.max_time) as blocks:
            dump_samples(
                blocks,
                sys.stdout,
                head=db.head,
                matcher_sets=sets,
                mint_ms=args.min_time,
                maxt_ms=args.max_time,
                fmt=args.dump_format,
            )
    except BrokenPipeError:  # pragma: no cover - `| head`
        return 0
    finally:
        db.close()
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Exports samples to a Parquet file."""
    try:
        sets = _matcher_sets(args.match)
        blocks = _open(args.dir)
    except (SelectorError, CorruptionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        rows = export_parquet(
            blocks,
            Path(args.output),
            matcher_sets=sets,
            mint_ms=args.min_time,
            maxt_ms=args.max_time,
        )
    except (ExportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for b in blocks:
            b.close()
    print(f"wrote {rows} samples to {args.output}", file=sys.stderr)
    return 0


def _duration_ms(text: str) -> int:
    from watchkeeper.model.duration import parse_duration_ms

    try:
        return parse_duration_ms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_range(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--min-time",
        type=int,
        default=_MIN_TIME,
        help="Minimum timestamp to include, in milliseconds since the Unix epoch.",
    )
    p.add_argument(
        "--max-time",
        type=int,
        default=_MAX_TIME,
        help="Maximum timestamp to include, in milliseconds since the Unix epoch.",
    )
    p.add_argument("--match", action="append", metavar="SELECTOR",
                   help=f"Series selector; may be repeated (default {_ALL}).")  # fmt: skip


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `watchkeeper tsdb` and its subcommands."""
    parser = subparsers.add_parser("tsdb", help="Work with TSDB blocks (as promtool tsdb).")
    sub = parser.add_subparsers(dest="tsdb_command", metavar="COMMAND", required=True)

    imp = sub.add_parser("import", help="Create blocks from other formats.")
    imp_sub = imp.add_subparsers(dest="import_format", metavar="FORMAT", required=True)
    om = imp_sub.add_parser("openmetrics", help="Import samples from an OpenMetrics file.")
    om.add_argument("file", metavar="FILE", help="OpenMetrics text ending with # EOF.")
    om.add_argument("dir", metavar="DIR", nargs="?", default=DEFAULT_DIR,
                    help="Output directory for the blocks (default ./data).")  # fmt: skip
    om.add_argument("--max-block-duration", dest="max_block_duration_ms", type=_duration_ms,
                    default=7_200_000, help="Duration of the blocks (default 2h).")  # fmt: skip
    om.add_argument("--quiet", action="store_true", help="Do not print the created blocks.")
    om.set_defaults(func=run_import)

    lst = sub.add_parser("list", help="List the blocks of a data directory.")
    lst.add_argument("dir", metavar="DIR", nargs="?", default=DEFAULT_DIR)
    lst.set_defaults(func=run_list)

    ana = sub.add_parser("analyze", help="Show cardinality and churn of a block.")
    ana.add_argument("dir", metavar="DIR", nargs="?", default=DEFAULT_DIR)
    ana.add_argument("block_id", metavar="BLOCK-ID", nargs="?", help="Default: the newest.")
    ana.add_argument("--limit", type=int, default=20, help="Rows per section (default 20).")
    ana.add_argument("--plain", action="store_true", help="promtool's plain text output.")
    ana.set_defaults(func=run_analyze)

    dump = sub.add_parser("dump", help="Dump samples of blocks and head (as promtool).")
    dump.add_argument("dir", metavar="DIR", nargs="?", default=DEFAULT_DIR)
    _add_range(dump)
    dump.set_defaults(func=run_dump, dump_format=DumpFormat.TEXT)

    dom = sub.add_parser("dump-openmetrics", help="Dump samples as OpenMetrics text.")
    dom.add_argument("dir", metavar="DIR", nargs="?", default=DEFAULT_DIR)
    _add_range(dom)
    dom.set_defaults(func=run_dump, dump_format=DumpFormat.OPENMETRICS)

    exp = sub.add_parser("export", help="Export samples to a file (Parquet).")
    exp.add_argument("dir", metavar="DIR", nargs="?", default=DEFAULT_DIR)
    exp.add_argument("--format", choices=["parquet"], default="parquet", help="Output format.")
    exp.add_argument("--output", "-o", required=True, metavar="FILE", help="Output file.")
    _add_range(exp)
    exp.set_defaults(func=run_export)
