"""Retry semantics: the backoff schedule, and what each answer does to a batch."""

from __future__ import annotations

import pytest

from server.reporting.config import RetryConfig
from server.reporting.retry import backoff_delay, parse_retry_after, refusal_text, schedule, verdict

RETRY = RetryConfig(max_attempts=6, base_delay_s=30, factor=2, max_delay_s=300, jitter=0.2)


def test_the_schedule_doubles_up_to_the_maximum():
    assert schedule(RETRY) == [30, 60, 120, 240, 300]  # waits between 6 attempts
    assert backoff_delay(5, RETRY, 0.0) == 300 and backoff_delay(60, RETRY, 0.0) == 300
    assert backoff_delay(10_000, RETRY, 0.0) == 300  # no overflow for a batch retried for ever


def test_jitter_takes_off_at_most_its_fraction():
    assert backoff_delay(2, RETRY, 0.5) == pytest.approx(54.0)
    delays = [backoff_delay(3, RETRY, r / 100) for r in range(100)]
    assert min(delays) > 120 * 0.8 and max(delays) == 120
    assert backoff_delay(3, RetryConfig(jitter=0.0), 0.99) == 120
    with pytest.raises(ValueError):
        backoff_delay(0, RETRY, 0.0)
    with pytest.raises(ValueError):
        backoff_delay(1, RETRY, 1.0)


@pytest.mark.parametrize("status", [200, 201, 202])
def test_2xx_is_accepted(status):
    assert verdict(status, 1, RETRY, 0.0, None).status == "accepted"


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 413, 422])
def test_other_4xx_and_redirects_are_refused_without_retry(status):
    assert verdict(status, 1, RETRY, 0.0, None).status == "refused"


@pytest.mark.parametrize("status", [None, 408, 425, 429, 500, 502, 503, 504])
def test_no_answer_5xx_and_transient_4xx_are_retried_then_failed(status):
    first = verdict(status, 1, RETRY, 0.0, None)
    assert (first.status, first.delay_s) == ("pending", 30)
    assert verdict(status, 5, RETRY, 0.0, None).delay_s == 300
    assert verdict(status, 6, RETRY, 0.0, None).status == "failed"


def test_retry_after_is_honoured_up_to_the_maximum_delay():
    assert verdict(503, 1, RETRY, 0.0, 90.0).delay_s == 90
    assert verdict(429, 1, RETRY, 0.0, 86_400.0).delay_s == 300
    assert verdict(503, 3, RETRY, 0.0, 5.0).delay_s == 120  # never sooner than the backoff
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None and parse_retry_after(None) is None


def test_a_refusal_reads_as_one_line_with_the_receivers_reasons():
    receipt = {"rejected": [{"item": "G-1.XM", "reason": "required item missing"}], "error": "batch refused"}
    assert refusal_text(422, receipt, b"") == "HTTP 422: G-1.XM: required item missing"
    assert refusal_text(403, {"error": "wrong province"}, b"") == "HTTP 403: wrong province"
    assert refusal_text(400, None, b"<html>\nBad\nRequest</html>") == "HTTP 400: <html> Bad Request</html>"
    assert len(refusal_text(400, None, b"x" * 5000)) < 600
