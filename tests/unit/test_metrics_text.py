"""Exposition format: what we render is what Prometheus' parser reads back, escapes included."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.metrics_text import Family, Sample, format_value, render


def test_round_trip_through_the_prometheus_parser():
    tricky = 'a "quoted" \\ back\nslash'
    text = render(
        [
            Family("x_total", "Help with \\ and\nnewline.", "counter", (Sample(3, {"reason": tricky}),)),
            Family("y", "A gauge.", "gauge", (Sample(0.25, {"b": "2", "a": "1"}), Sample(7))),
            Family("z", "Empty but documented.", "gauge", ()),
        ]
    )
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["x"].type == "counter" and families["x"].documentation == "Help with \\ and\nnewline."
    assert [(s.name, s.labels, s.value) for s in families["x"].samples] == [("x_total", {"reason": tricky}, 3.0)]
    assert [(s.labels, s.value) for s in families["y"].samples] == [({"a": "1", "b": "2"}, 0.25), ({}, 7.0)]
    assert families["z"].type == "gauge" and families["z"].samples == []
    assert text.endswith("\n") and 'y{a="1",b="2"} 0.25\n' in text


@pytest.mark.parametrize(
    ("value", "text"),
    [(3, "3"), (3.0, "3"), (0.5, "0.5"), (-2, "-2"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN")],
)
def test_values(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("name", "kind", "labels", "message"),
    [
        ("bad-name", "gauge", {}, "bad metric name"),
        ("events", "counter", {}, "must end in _total"),
        ("ok", "gauge", {"bad-label": "x"}, "bad label name"),
        ("ok", "gauge", {"__reserved": "x"}, "bad label name"),
    ],
)
def test_invalid_families_are_refused(name, kind, labels, message):
    with pytest.raises(ValueError, match=message):
        Family(name, "h", kind, (Sample(1, labels),))
