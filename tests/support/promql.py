"""A tiny PromQL evaluator for the forms deploy/prometheus/alerts.yml uses, over scraped text.

Not Prometheus: expressions are parsed with ``promql-parser`` (the Prometheus grammar) and
evaluated over one or more scrapes of the services' real ``/metrics`` output. Supported: vector
selectors with ``=``, ``!=``, ``=~``, ``!~``; numbers; ``+ - * /`` and the comparisons (filters,
or 0/1 with ``bool``) between vectors (one-to-one, on all labels but the name, or ``on(...)`` /
``ignoring(...)``) or with a scalar; ``and``, ``or``, ``unless``; ``abs()``, ``time()``;
``increase(m[range])`` as the last value minus the first within the range over the scrapes given
(a series absent at the first counts from 0, no extrapolation, no counter resets); ``max``,
``min``, ``sum`` with ``by``/``without``. A rule's ``for:`` is not modelled: a rule "fires" here
when its condition holds at the last scrape.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import promql_parser as pq
import yaml
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]
Vector = dict[Labels, float]
Value = Vector | float

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


@dataclass
class Scrapes:
    """Scrapes in time order: (Unix time, samples by name and labels)."""

    taken: list[tuple[float, Vector]] = field(default_factory=list)

    def add(self, at: float, *texts: str) -> None:
        samples: Vector = {}
        for text in texts:
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    samples[frozenset({**s.labels, "__name__": s.name}.items())] = float(s.value)
        self.taken.append((float(at), samples))

    @property
    def now(self) -> float:
        return self.taken[-1][0]


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def rule(name: str) -> dict[str, Any]:
    (found,) = [r for r in rules() if r.get("alert") == name]
    return found


def firing(name: str, scrapes: Scrapes) -> list[dict[str, str]]:
    """The label sets for which alert ``name``'s condition holds at the last scrape."""
    result = evaluate(pq.parse(rule(name)["expr"]), scrapes)
    assert isinstance(result, dict), f"{name}: a rule must give a vector"
    return [dict(labels) for labels in result]


def metric_names(expr: str) -> set[str]:
    """Every metric name an expression selects."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, pq.VectorSelector):
            assert node.name, "a selector without a metric name"
            names.add(node.name)
        elif isinstance(node, pq.MatrixSelector):
            walk(node.vector_selector)
        for attr in ("lhs", "rhs", "expr"):
            if hasattr(node, attr):
                walk(getattr(node, attr))
        for arg in getattr(node, "args", None) or []:
            walk(arg)

    walk(pq.parse(expr))
    return names


# -- evaluation ------------------------------------------------------------------------------------


def _matches(labels: dict[str, str], matcher: Any) -> bool:
    value, op = labels.get(matcher.name, ""), str(matcher.op)
    if op.endswith("Equal"):
        return value == matcher.value if not op.endswith("NotEqual") else value != matcher.value
    full = re.fullmatch(matcher.value, value) is not None
    return full if op.endswith(".Re") else not full


def _select(selector: Any, samples: Vector) -> Vector:
    out: Vector = {}
    for labels, value in samples.items():
        d = dict(labels)
        if d["__name__"] == selector.name and all(
            _matches(d, m) for m in selector.matchers.matchers
        ):
            out[labels] = value
    return out


def _drop_name(labels: Labels) -> Labels:
    return frozenset((k, v) for k, v in labels if k != "__name__")


def _signature(labels: Labels, modifier: Any) -> Labels:
    matching = getattr(modifier, "matching", None) if modifier is not None else None
    labels = _drop_name(labels)
    if matching is None:
        return labels
    keep = set(matching.labels)
    if str(matching.type).endswith("Include"):  # on(...)
        return frozenset((k, v) for k, v in labels if k in keep)
    return frozenset((k, v) for k, v in labels if k not in keep)  # ignoring(...)


ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
    "/": lambda a, b: a / b if b else float("nan"),
}  # fmt: skip
COMPARISON: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip


def _binary(node: Any, scrapes: Scrapes) -> Value:
    op = str(node.op)
    lhs, rhs = evaluate(node.lhs, scrapes), evaluate(node.rhs, scrapes)
    if op in ("and", "or", "unless"):
        assert isinstance(lhs, dict) and isinstance(rhs, dict), f"{op} needs vectors"
        right = {_signature(k, node.modifier) for k in rhs}
        if op == "and":
            return {k: v for k, v in lhs.items() if _signature(k, node.modifier) in right}
        if op == "unless":
            return {k: v for k, v in lhs.items() if _signature(k, node.modifier) not in right}
        left = {_signature(k, node.modifier) for k in lhs}
        return lhs | {k: v for k, v in rhs.items() if _signature(k, node.modifier) not in left}
    return_bool = node.modifier is not None and node.modifier.return_bool
    if isinstance(lhs, float) and isinstance(rhs, float):
        return _apply(op, lhs, rhs, True)  # type: ignore[return-value]
    pairs: Iterator[tuple[Labels, float, float]]
    if isinstance(rhs, float):
        pairs = ((k, v, rhs) for k, v in lhs.items())  # type: ignore[union-attr]
    elif isinstance(lhs, float):
        pairs = ((k, lhs, v) for k, v in rhs.items())
    else:
        by_sig = {_signature(k, node.modifier): v for k, v in rhs.items()}
        pairs = (
            (k, v, by_sig[_signature(k, node.modifier)])
            for k, v in lhs.items()
            if _signature(k, node.modifier) in by_sig
        )
    out: Vector = {}
    for labels, a, b in pairs:
        value = _apply(op, a, b, return_bool)
        if value is not None:
            out[labels if op in COMPARISON and not return_bool else _drop_name(labels)] = value
    return out


def _apply(op: str, a: float, b: float, return_bool: bool) -> float | None:
    if op in ARITHMETIC:
        return ARITHMETIC[op](a, b)
    held = COMPARISON[op](a, b)
    if return_bool:
        return float(held)
    return a if held else None


def _increase(selector: Any, scrapes: Scrapes) -> Vector:
    window: timedelta = selector.range
    since = scrapes.now - window.total_seconds()
    inside = [samples for at, samples in scrapes.taken if at >= since]
    first, last = (
        _select(selector.vector_selector, inside[0]),
        _select(selector.vector_selector, inside[-1]),
    )
    return {_drop_name(k): v - first.get(k, 0.0) for k, v in last.items()}


def _aggregate(node: Any, scrapes: Scrapes) -> Vector:
    inner = evaluate(node.expr, scrapes)
    assert isinstance(inner, dict)
    keep = set(node.modifier.labels) if node.modifier is not None else set()
    by = node.modifier is not None and str(node.modifier.type).endswith("By")
    groups: dict[Labels, list[float]] = {}
    for labels, value in inner.items():
        kept = frozenset(
            (k, v) for k, v in _drop_name(labels) if (k in keep if by else k not in keep)
        )
        groups.setdefault(kept, []).append(value)
    fold = {"max": max, "min": min, "sum": sum}[str(node.op)]
    return {k: float(fold(v)) for k, v in groups.items()}


def evaluate(node: Any, scrapes: Scrapes) -> Value:
    """The value of a parsed expression at the last scrape."""
    if isinstance(node, pq.NumberLiteral):
        return float(node.val)
    if isinstance(node, pq.VectorSelector):
        return _select(node, scrapes.taken[-1][1])
    if isinstance(node, pq.ParenExpr):
        return evaluate(node.expr, scrapes)
    if isinstance(node, pq.BinaryExpr):
        return _binary(node, scrapes)
    if isinstance(node, pq.AggregateExpr):
        return _aggregate(node, scrapes)
    if isinstance(node, pq.Call):
        name = node.func.name
        if name == "time":
            return scrapes.now
        if name == "increase":
            return _increase(node.args[0], scrapes)
        if name == "abs":
            inner = evaluate(node.args[0], scrapes)
            assert isinstance(inner, dict)
            return {_drop_name(k): abs(v) for k, v in inner.items()}
    raise NotImplementedError(f"not supported here: {node}")
