"""Chart series from plain duty data, and the SVG they are drawn as."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.chart_series import STATUSES_COUNTED, attendance_per_day, checkins_per_hour, lateness_by_site
from server.duty.records import STATUSES
from server.web.charts_svg import Bar, bar_chart, nice_max

SVG = "{http://www.w3.org/2000/svg}"
D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


def test_attendance_counts_rostered_duties_only_and_keeps_empty_days():
    records = [
        (D1, "present"),
        (D1, "late"),
        (D1, "absent"),
        (D1, "unscheduled"),  # not rostered: on neither side
        (D1, "in_progress"),  # not decided yet
        (D3, "missing_check_out"),
    ]
    days = attendance_per_day(records, D1, D3)
    assert [(d.day, d.attended, d.rostered) for d in days] == [(D1, 2, 3), (D2, 0, 0), (D3, 1, 1)]
    assert days[0].rate == pytest.approx(2 / 3) and days[1].rate is None and days[2].rate == 1.0


def test_days_outside_the_range_are_ignored():
    assert [d.rostered for d in attendance_per_day([(D3, "absent")], D1, D2)] == [0, 0]


def test_lateness_by_site_among_attended_duties():
    records = [
        ("north", "late", 12),
        ("north", "late_and_early_leave", 8),
        ("north", "present", 0),
        ("north", "absent", 0),
        ("south", "present", 0),
    ]
    north, south = lateness_by_site(records)
    assert (north.site_id, north.late, north.attended, north.late_minutes) == ("north", 2, 3, 20)
    assert north.share == pytest.approx(2 / 3) and north.average_minutes == 10
    assert (south.late, south.share, south.average_minutes) == (0, 0.0, None)


def test_check_ins_per_hour_of_the_local_day():
    times = [datetime(2026, 3, 1, 7, 59), datetime(2026, 3, 1, 8, 0), datetime(2026, 3, 2, 8, 30)]
    counts = checkins_per_hour(times)
    assert len(counts) == 24 and counts[7] == 1 and counts[8] == 2 and sum(counts) == 3


@given(st.lists(st.tuples(st.sampled_from([D1, D2, D3]), st.sampled_from(STATUSES))))
def test_attendance_never_exceeds_what_was_rostered(records):
    days = attendance_per_day(records, D1, D3)
    assert all(0 <= d.attended <= d.rostered for d in days)
    assert sum(d.rostered for d in days) == sum(status in STATUSES_COUNTED for _, status in records)


def test_nice_maxima_are_round():
    assert [nice_max(v) for v in (0, 0.3, 1, 3, 7, 12, 99, 101)] == [1, 0.5, 1, 5, 10, 20, 100, 200]


def test_a_bar_chart_is_accessible_svg_with_each_number_on_hover():
    bars = [Bar("03-01", 50.0, "1 March: 50 %"), Bar("03-02", None, "2 March: no duty"), Bar("<x>", 100, "a & b")]
    svg = str(bar_chart("att", "Attendance", "Share of duties attended", bars, max_value=100, axis_format="{} %"))
    root = ET.fromstring(svg)  # well-formed XML: every label escaped
    assert root.get("role") == "img" and root.get("aria-labelledby") == "att-title att-desc"
    assert root.find(f"{SVG}title").text == "Attendance" and root.find(f"{SVG}desc").text == "Share of duties attended"
    rects = root.findall(f"{SVG}rect")
    assert [r.find(f"{SVG}title").text for r in rects] == ["1 March: 50 %", "2 March: no duty", "a & b"]
    assert [r.get("data-value") for r in rects] == ["50", "", "100"]
    heights = [float(r.get("height")) for r in rects]
    assert heights[2] == pytest.approx(2 * heights[0]) and heights[1] == 2.0  # a stub for no data
    assert "style" not in svg and "100 %" in svg and "&lt;x&gt;" in svg


def test_count_charts_have_whole_number_gridlines():
    svg = str(bar_chart("c", "t", "d", [Bar("a", 1, "1"), Bar("b", 3, "3")], counts=True))
    assert re.findall(r'text-anchor="end"[^>]*>([\d.]+)<', svg) == ["0", "1", "2", "3", "4"]


def test_many_bars_get_thinned_axis_labels():
    bars = [Bar(f"{h:02d}", h, f"{h}") for h in range(62)]
    svg = str(bar_chart("many", "t", "d", bars))
    labels = re.findall(r'text-anchor="middle"[^>]*>(\d+)<', svg)
    assert 8 <= len(labels) <= 16 and labels[0] == "00"
