"""Powertools metrics, locally: read the EMF blobs environments print and keep totals.

On AWS, CloudWatch Logs turns each Embedded Metric Format line a function
prints into metrics. Here the execution environments' stdout passes through
``MetricsCollector.take``, which keeps a total per metric name and dimension
set (served as ``GET /_local/metrics``) and makes one console line per blob.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class _Total:
    unit: str
    total: float = 0.0
    samples: int = 0


@dataclass(frozen=True)
class EmfBlob:
    """The metrics of one EMF line: (namespace, name, unit, dimensions, values) per metric."""

    metrics: tuple[tuple[str, str, str, tuple[tuple[str, str], ...], tuple[float, ...]], ...]

    def summary(self) -> str:
        """name=sum for each metric, in the order printed: what a console line shows."""
        return " ".join(f"{name}={_number(sum(values))}" for _, name, _, _, values in self.metrics)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _values(raw: Any) -> tuple[float, ...]:
    items = raw if isinstance(raw, list) else [raw]
    return tuple(float(item) for item in items if isinstance(item, int | float) and not isinstance(item, bool))


def parse_emf(line: str) -> EmfBlob | None:
    """The metrics in one line of output when it is an EMF blob, else None (a log line)."""
    if not line.startswith("{") or '"_aws"' not in line:
        return None
    try:
        blob = json.loads(line)
        directives = blob["_aws"]["CloudWatchMetrics"]
    except (ValueError, KeyError, TypeError):
        return None
    metrics = []
    for directive in directives if isinstance(directives, list) else []:
        namespace = str(directive.get("Namespace", ""))
        dimension_names = [name for group in directive.get("Dimensions", []) for name in group]
        dimensions = tuple(sorted((str(name), str(blob.get(name, ""))) for name in set(dimension_names)))
        for metric in directive.get("Metrics", []):
            name = str(metric.get("Name", ""))
            if name in blob:
                metrics.append((namespace, name, str(metric.get("Unit", "None")), dimensions, _values(blob[name])))
    return EmfBlob(tuple(metrics)) if metrics else None


class MetricsCollector:
    """Totals of every metric the environments published, per namespace, name and dimensions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # environments' output readers are threads
        self._totals: dict[tuple[str, str, tuple[tuple[str, str], ...]], _Total] = {}

    def take(self, line: str) -> EmfBlob | None:
        """Count the metrics in ``line`` if it is an EMF blob; return them (None for any other line)."""
        blob = parse_emf(line)
        if blob is None:
            return None
        with self._lock:
            for namespace, name, unit, dimensions, values in blob.metrics:
                total = self._totals.setdefault((namespace, name, dimensions), _Total(unit))
                total.total += sum(values)
                total.samples += len(values)
        return blob

    def snapshot(self) -> dict[str, Any]:
        """``{"metrics": [{namespace, name, unit, dimensions, total, samples}, ...]}``, sorted by name."""
        with self._lock:
            ordered = sorted((key, total.unit, total.total, total.samples) for key, total in self._totals.items())
        rows = [
            {
                "namespace": namespace,
                "name": name,
                "unit": unit,
                "dimensions": dict(dimensions),
                "total": _number(value),
                "samples": samples,
            }
            for (namespace, name, dimensions), unit, value, samples in ordered
        ]
        return {"metrics": rows}
