"""Process metrics in the Prometheus text format (`GET /metrics`).

A `Registry` is created by the daemon and passed to whoever records; no global state.
"""

from __future__ import annotations

import bisect
import math
from typing import Callable, Iterable

__all__ = ["Registry", "Counter", "Gauge", "Histogram"]

Labels = tuple[tuple[str, str], ...]


def _fmt_labels(labels: Labels, extra: Labels = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in items)
    return "{" + inner + "}"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if float(v).is_integer():
        return str(int(v))
    return repr(float(v))


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str) -> None:
        self.name = name
        self.help = help

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name, help)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        return self.header() + [f"{self.name}{_fmt_labels(k)} {_num(v)}" for k, v in sorted(self._values.items())]


class Gauge(_Metric):
    """A value set by its owner, or read from a function at scrape time."""

    kind = "gauge"

    def __init__(self, name: str, help: str, fn: Callable[[], float | Iterable[tuple[dict[str, str], float]]] | None = None) -> None:
        super().__init__(name, help)
        self._values: dict[Labels, float] = {}
        self._fn = fn

    def set(self, value: float, **labels: str) -> None:
        self._values[tuple(sorted(labels.items()))] = value

    def render(self) -> list[str]:
        values = dict(self._values)
        if self._fn is not None:
            got = self._fn()
            if isinstance(got, (int, float)):
                values[()] = float(got)
            else:
                for labels, v in got:
                    values[tuple(sorted(labels.items()))] = v
        return self.header() + [f"{self.name}{_fmt_labels(k)} {_num(v)}" for k, v in sorted(values.items())]


class Histogram(_Metric):
    kind = "histogram"
    DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self, name: str, help: str, buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[Labels, list[float]] = {}  # bucket counts..., sum, count

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = [0.0] * (len(self.buckets) + 2)
        i = bisect.bisect_left(self.buckets, value)
        if i < len(self.buckets):
            s[i] += 1
        s[-2] += value
        s[-1] += 1

    def render(self) -> list[str]:
        out = self.header()
        for key, s in sorted(self._series.items()):
            cumulative = 0.0
            for b, c in zip(self.buckets, s):
                cumulative += c
                out.append(f"{self.name}_bucket{_fmt_labels(key, (('le', _num(b)),))} {_num(cumulative)}")
            out.append(f"{self.name}_bucket{_fmt_labels(key, (('le', '+Inf'),))} {_num(s[-1])}")
            out.append(f"{self.name}_sum{_fmt_labels(key)} {_num(s[-2])}")
            out.append(f"{self.name}_count{_fmt_labels(key)} {_num(s[-1])}")
        return out


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def _add(self, m: _Metric) -> _Metric:
        if m.name in self._metrics:
            raise ValueError(f"metric {m.name} registered twice")
        self._metrics[m.name] = m
        return m

    def counter(self, name: str, help: str) -> Counter:
        return self._add(Counter(name, help))  # type: ignore[return-value]

    def gauge(self, name: str, help: str, fn=None) -> Gauge:
        return self._add(Gauge(name, help, fn))  # type: ignore[return-value]

    def histogram(self, name: str, help: str, buckets: tuple[float, ...] = Histogram.DEFAULT_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help, buckets))  # type: ignore[return-value]

    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(self._metrics):
            lines.extend(self._metrics[name].render())
        return "\n".join(lines) + "\n"
