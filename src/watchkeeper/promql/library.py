"""PromQL as a Python library: evaluate expressions over data given in Python or over storage.

Data can be any `storage.Queryable`, a `SeriesData`, a mapping of series to
(timestamps, values), or a pandas DataFrame with columns `timestamp`, `value` and one column
per label (pandas is optional and imported only when used). Times are integer milliseconds
since the epoch, float seconds, `datetime` or `numpy.datetime64`; steps and durations are
integer milliseconds, `timedelta` or Prometheus duration strings ("1m").

Example:
    >>> import numpy as np
    >>> data = {'http_requests_total{job="api"}': (np.arange(0, 600_000, 60_000), np.arange(10.0))}
    >>> query("rate(http_requests_total[5m])", data, time=540_000).values.tolist()
    [0.016666666666666666]
    >>> m = query_range("http_requests_total * 2", data, start=0, end=120_000, step="1m")
    >>> m.values.tolist()
    [0.0, 2.0, 4.0]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from watchkeeper.model.duration import parse_duration_ms
from watchkeeper.model.labels import METRIC_NAME, Labels
from watchkeeper.promql.engine import Engine, EngineOptions
from watchkeeper.promql.value import Matrix, QueryResult, Scalar, String, Value, Vector
from watchkeeper.storage.interface import Queryable
from watchkeeper.storage.memory import MemoryStorage

if TYPE_CHECKING:
    import pandas as pd

LIBRARY_OPTIONS = EngineOptions(
    enable_experimental_functions=True,
    enable_duration_expressions=True,
    timeout_s=600.0,
)
"""Engine options for library use: every feature on, a generous timeout."""

TimeLike = int | float | dt.datetime | np.datetime64
DurationLike = int | str | dt.timedelta


def to_ms(t: TimeLike | object) -> int:
    """Converts a time to integer milliseconds since the epoch.

    Example:
        >>> to_ms(1.5), to_ms(1500), to_ms(np.datetime64("1970-01-01T00:00:02"))
        (1500, 1500, 2000)
    """
    if isinstance(t, bool):
        raise TypeError("a time cannot be a bool")
    if isinstance(t, np.datetime64):
        return int(t.astype("datetime64[ms]").astype(np.int64))
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        return round(t.timestamp() * 1000)
    if isinstance(t, int | np.integer):
        return int(t)
    if isinstance(t, float | np.floating):
        return round(float(t) * 1000)
    # pandas.Timestamp and similar expose nanoseconds as .value
    ns = getattr(t, "value", None)
    if isinstance(ns, int):
        return ns // 1_000_000
    raise TypeError(f"cannot use {type(t).__name__} as a time")


def duration_to_ms(d: DurationLike) -> int:
    """Converts a step or duration to integer milliseconds ("1m", timedelta or int ms)."""
    if isinstance(d, str):
        return parse_duration_ms(d)
    if isinstance(d, dt.timedelta):
        return round(d.total_seconds() * 1000)
    return int(d)


class SeriesData(MemoryStorage):
    """In-memory series for library queries: a `MemoryStorage` that also takes dicts and text.

    Example:
        >>> sd = SeriesData()
        >>> sd.add({"__name__": "up", "job": "a"}, [0, 15_000], [1.0, 0.0])
        >>> len(sd)
        1
    """

    def add(
        self,
        labels: Labels | Mapping[str, str] | str,
        timestamps_ms: npt.ArrayLike,
        values: npt.ArrayLike,
    ) -> None:
        """Adds (or replaces) a series; labels may be a `Labels`, a dict or `name{a="b"}` text.

        Raises:
            ValueError: when lengths differ or the label text does not parse.
        """
        self.add_series(as_labels(labels), timestamps_ms, values)


def as_labels(labels: Labels | Mapping[str, str] | str) -> Labels:
    """Accepts a `Labels`, a dict, or series text such as `up{job="a"}`.

    Raises:
        ValueError: when the text is not a series description.
    """
    if isinstance(labels, Labels):
        return labels
    if isinstance(labels, str):
        from watchkeeper.promql.promqltest.script import parse_series_labels

        return parse_series_labels(labels)
    return Labels.from_dict(dict(labels))


def from_frame(frame: pd.DataFrame) -> SeriesData:
    """Builds series from a DataFrame with columns timestamp, value and label columns.

    `timestamp` holds integer milliseconds or datetimes; every other column is a label
    (`__name__` included); empty and missing label values are dropped.

    Raises:
        ValueError: when the timestamp or value column is missing.
    """
    for col in ("timestamp", "value"):
        if col not in frame.columns:
            raise ValueError(f"the DataFrame needs a {col!r} column (has {list(frame.columns)})")
    label_cols = [c for c in frame.columns if c not in ("timestamp", "value")]
    ts_col = frame["timestamp"]
    if np.issubdtype(ts_col.dtype, np.datetime64):
        ts_all = ts_col.to_numpy().astype("datetime64[ms]").astype(np.int64)
    else:
        ts_all = ts_col.to_numpy().astype(np.int64)
    vals_all = frame["value"].to_numpy(dtype=np.float64)
    data = SeriesData()
    if not label_cols:
        data.add(Labels(), ts_all, vals_all)
        return data
    keys = frame[label_cols].astype("string").fillna("")
    for key, idx in keys.groupby(label_cols, sort=False, dropna=False).indices.items():
        values = key if isinstance(key, tuple) else (key,)
        lb = Labels(zip(label_cols, (str(v) for v in values), strict=True))
        data.add(lb, ts_all[idx], vals_all[idx])
    return data


def as_queryable(data: Any) -> Queryable:
    """Turns library input into something the engine can read.

    Raises:
        TypeError: for input of an unsupported kind.
    """
    if hasattr(data, "querier"):
        q: Queryable = data
        return q
    if type(data).__name__ == "DataFrame":
        return from_frame(data)
    if isinstance(data, Mapping):
        out = SeriesData()
        for key, series in data.items():
            ts, vs = series
            out.add(key, ts, vs)
        return out
    raise TypeError(
        "data must be a Queryable, a SeriesData, a {series: (timestamps, values)} mapping or a "
        f"pandas DataFrame, not {type(data).__name__}"
    )


def query_result(
    expr: str,
    data: Any,
    *,
    time: TimeLike,
    options: EngineOptions = LIBRARY_OPTIONS,
) -> QueryResult:
    """Evaluates an instant query; returns the value with its annotations and stats."""
    return Engine(as_queryable(data), options).instant_query(expr, to_ms(time))


def query(
    expr: str,
    data: Any,
    *,
    time: TimeLike,
    options: EngineOptions = LIBRARY_OPTIONS,
) -> Value:
    """Evaluates an instant query and returns its value (Vector, Scalar, String or Matrix).

    Raises:
        PromQLError: when the query does not parse or fails to evaluate.
    """
    return query_result(expr, data, time=time, options=options).value


def query_range(
    expr: str,
    data: Any,
    *,
    start: TimeLike,
    end: TimeLike,
    step: DurationLike,
    options: EngineOptions = LIBRARY_OPTIONS,
) -> Matrix:
    """Evaluates a range query and returns the Matrix.

    Raises:
        PromQLError: when the query does not parse or fails to evaluate.
    """
    res = Engine(as_queryable(data), options).range_query(
        expr, to_ms(start), to_ms(end), duration_to_ms(step)
    )
    value = res.value
    if not isinstance(value, Matrix):  # pragma: no cover - range queries return matrices
        raise TypeError("range query did not return a matrix")
    return value


def to_frame(value: Value) -> pd.DataFrame:
    """Converts a result to a long DataFrame: timestamp (ms), value and one column per label."""
    import pandas as pd

    rows: dict[str, list[Any]] = {"timestamp": [], "value": []}
    label_sets: list[Labels] = []
    if isinstance(value, Scalar | String):
        return pd.DataFrame({"timestamp": [value.timestamp_ms], "value": [value.value]})
    if isinstance(value, Vector):
        rows["timestamp"] = [value.timestamp_ms] * len(value)
        rows["value"] = value.values.tolist()
        label_sets = list(value.labels)
    else:
        for i in range(len(value)):
            lb, ts, vs = value.series(i)
            rows["timestamp"].extend(ts.tolist())
            rows["value"].extend(vs.tolist())
            label_sets.extend([lb] * len(ts))
    names = sorted({n for lb in label_sets for n, _ in lb}, key=lambda n: (n != METRIC_NAME, n))
    for n in names:
        rows[n] = [lb.get(n) for lb in label_sets]
    return pd.DataFrame(rows)


__all__ = [
    "LIBRARY_OPTIONS",
    "SeriesData",
    "as_queryable",
    "duration_to_ms",
    "from_frame",
    "query",
    "query_range",
    "query_result",
    "to_frame",
    "to_ms",
]
