"""Presentation rules: consensus across frames, liveness, give-up, settle: pure, no I/O."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.decision import Decision
from edge_agent.presentation import PresentationConfig, PresentationTracker


def accept(guard: str, d: float = 0.3) -> Decision:
    return Decision("accept", guard, guard, d, 0.2)


def unknown(d: float = 0.8) -> Decision:
    return Decision("unknown", None, None, d, 0.05)


def borderline(guard: str, d: float = 0.55) -> Decision:
    return Decision("borderline", None, guard, d, 0.01)


CFG = PresentationConfig(consensus_frames=2, max_frames=5, max_duration_s=4.0, gap_s=1.0, settle_s=3.0)


def test_two_agreeing_frames_accept_once():
    tracker = PresentationTracker(CFG)
    assert tracker.observe(0.0, accept("G1", 0.35)) is None
    out = tracker.observe(0.2, accept("G1", 0.30))
    assert out.accepted and out.decision.guard_id == "G1" and out.decision.distance == 0.30
    assert out.frames == 2 and out.liveness == "not_checked" and out.reason == "match"
    # the guard is still standing there: no second outcome while settling
    assert all(tracker.observe(0.2 + i * 0.2, accept("G1")) is None for i in range(1, 10))


def test_disagreeing_frames_end_as_a_near_miss_for_review():
    tracker = PresentationTracker(CFG)
    outs = [tracker.observe(i * 0.2, accept("G1" if i % 2 else "G2")) for i in range(5)]
    # frames accepting two different guards never add up to an accept
    assert outs[:4] == [None] * 4
    out = outs[4]
    assert not out.accepted and out.decision.outcome == "borderline" and out.reason == "no_consensus"


def test_stranger_is_denied_after_max_frames():
    tracker = PresentationTracker(CFG)
    outs = [tracker.observe(i * 0.1, unknown(0.7 + i / 100)) for i in range(5)]
    assert outs[:4] == [None] * 4
    assert not outs[4].accepted and outs[4].reason == "unknown" and outs[4].decision.distance == 0.7
    assert outs[4].frames == 5


def test_borderline_keeps_its_candidate():
    tracker = PresentationTracker(CFG)
    for i in range(4):
        assert tracker.observe(i * 0.1, borderline("G7")) is None
    out = tracker.observe(0.5, borderline("G7", 0.52))
    assert out.reason == "borderline" and out.decision.candidate_id == "G7" and out.decision.guard_id is None


def test_walking_away_ends_the_presentation():
    tracker = PresentationTracker(CFG)
    assert tracker.observe(0.0, unknown()) is None
    assert tracker.observe(0.5, None) is None
    out = tracker.observe(1.1, None)
    assert out is not None and not out.accepted and out.frames == 1
    assert tracker.observe(1.5, None) is None and not tracker.active


def test_liveness_pending_holds_the_accept_and_fail_denies():
    tracker = PresentationTracker(CFG)
    assert tracker.observe(0.0, accept("G1"), "pending") is None
    assert tracker.observe(0.2, accept("G1"), "pending") is None
    out = tracker.observe(0.4, accept("G1"), "pass")
    assert out.accepted and out.liveness == "pass" and out.frames == 3

    tracker = PresentationTracker(CFG)
    out = tracker.observe(0.0, accept("G1"), "fail")
    assert not out.accepted and out.reason == "liveness_failed" and out.liveness == "fail"


def test_recognised_but_never_live_is_refused_as_liveness_failure():
    tracker = PresentationTracker(CFG)
    outs = [tracker.observe(i * 0.2, accept("G1"), "pending") for i in range(5)]
    out = outs[-1]
    assert not out.accepted and out.reason == "liveness_failed" and out.liveness == "fail"
    assert out.decision.candidate_id == "G1" and out.decision.guard_id is None


def test_after_settling_a_new_person_starts_fresh():
    tracker = PresentationTracker(CFG)
    tracker.observe(0.0, accept("G1"))
    assert tracker.observe(0.1, accept("G1")).accepted
    assert tracker.observe(1.5, None) is None  # G1 walks away (gap)
    assert tracker.observe(2.0, accept("G2")) is None
    assert tracker.observe(2.1, accept("G2")).decision.guard_id == "G2"


def test_consensus_of_one_decides_every_frame_when_settle_is_off():
    tracker = PresentationTracker(PresentationConfig(consensus_frames=1, settle_s=0))
    assert [tracker.observe(i * 0.1, accept(f"G{i}")).decision.guard_id for i in range(3)] == ["G0", "G1", "G2"]


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["G1", "G2", "?"])), max_size=40))
def test_an_accept_always_has_consensus_behind_it(frames):
    tracker = PresentationTracker(CFG)
    for i, frame in enumerate(frames):
        decision = None if frame is None else (unknown() if frame == "?" else accept(frame))
        out = tracker.observe(i * 0.3, decision)
        if out is not None and out.accepted:
            assert out.frames >= CFG.consensus_frames and out.decision.guard_id in ("G1", "G2")
