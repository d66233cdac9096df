"""Benchmark: parsing a large text exposition body (prints sample lines per second).

Run: .venv/bin/python benchmarks/exposition.py [families] [series_per_family]
Prints the median of 7 runs, in CPU time. "repeated layout" is the scraper's steady state:
an ExpositionParser that parsed the body before gets it again with new values.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from watchkeeper.model.exposition import ExpositionParser, parse_exposition


def make_body(families: int, per_family: int, *, om: bool = False) -> tuple[bytes, int]:
    rng = np.random.default_rng(0)
    lines: list[str] = []
    samples = 0
    for f in range(families):
        name = f"app_requests_{f}_total"
        lines.append(f"# HELP {name} Requests handled by the app, by code and method.")
        lines.append(f"# TYPE {name} counter")
        values = rng.integers(0, 10**9, per_family)
        for i in range(per_family):
            lines.append(
                f'{name}{{code="{200 + i % 5}",instance="host-{i}:9100",method="get"}} {values[i]}'
            )
            samples += 1
    if om:
        lines.append("# EOF")
    return ("\n".join(lines) + "\n").encode(), samples


def bench(body: bytes, content_type: str, samples: int, *, validate: bool = True) -> float:
    # NB: CPU time, not wall time, so a busy machine skews the figure less.
    runs = []
    for _ in range(7):
        start = time.process_time()
        parse_exposition(body, content_type, validate_series=validate)
        runs.append(time.process_time() - start)
    return samples / statistics.median(runs)


def bench_repeated(body: bytes, content_type: str, samples: int) -> float:
    """A scrape target's steady state: the same series every time, only the values change."""
    lines = body.decode().split("\n")
    rng = np.random.default_rng(1)
    bodies = []
    for _ in range(2):
        new = [
            line if not line or line.startswith("#") else f"{line.rsplit(' ', 1)[0]} {v}"
            for line, v in zip(lines, rng.integers(0, 10**9, len(lines)).tolist(), strict=True)
        ]
        bodies.append("\n".join(new).encode())
    parser = ExpositionParser()
    parser.parse(body, content_type, validate_series=False)
    runs = []
    for i in range(7):
        start = time.process_time()
        parser.parse(bodies[i % 2], content_type, validate_series=False)
        runs.append(time.process_time() - start)
    return samples / statistics.median(runs)


def main() -> None:
    families = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    per_family = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    body, samples = make_body(families, per_family)
    om_body, _ = make_body(families, per_family, om=True)
    text = "text/plain; version=0.0.4"
    omt = "application/openmetrics-text; version=1.0.0"
    print(f"{samples} samples, {len(body) / 1e6:.1f} MB")
    print(f"text, validated series:   {bench(body, text, samples):>12,.0f} lines/s")
    print(f"text, scraper mode:       {bench(body, text, samples, validate=False):>12,.0f} lines/s")
    print(f"openmetrics, validated:   {bench(om_body, omt, samples):>12,.0f} lines/s")
    print(f"text, repeated layout:    {bench_repeated(body, text, samples):>12,.0f} lines/s")


if __name__ == "__main__":
    main()
