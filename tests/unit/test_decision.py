"""Decision rules on synthetic encodings: threshold, margin, borderline, unknown and consensus."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.decision import Decision, consensus, decide

DIM = 128


def unit(axis: int) -> np.ndarray:
    vector = np.zeros(DIM)
    vector[axis] = 1.0
    return vector


def at_distance(base: np.ndarray, distance: float, axis: int = 100) -> np.ndarray:
    return base + distance * unit(axis)


def test_close_probe_with_clear_margin_is_accepted() -> None:
    gallery = {"G-1": np.stack([unit(0), unit(1)]), "G-2": unit(2)[None, :]}
    decision = decide(at_distance(unit(1), 0.2), gallery)
    assert decision.outcome == "accept"
    assert decision.guard_id == "G-1"
    assert decision.distance == pytest.approx(0.2)
    assert decision.margin == pytest.approx(np.sqrt(2 + 0.04) - 0.2)


def test_small_margin_is_borderline_not_accept() -> None:
    # Two guards almost equally close: accepting either would be a coin toss.
    probe = np.zeros(DIM)
    gallery = {"G-1": (0.40 * unit(0))[None, :], "G-2": (0.45 * unit(1))[None, :]}
    decision = decide(probe, gallery)
    assert decision == Decision("borderline", None, "G-1", pytest.approx(0.40), pytest.approx(0.05))


def test_near_miss_beyond_threshold_is_borderline() -> None:
    decision = decide(at_distance(unit(0), 0.55), {"G-1": unit(0)[None, :]})
    assert (decision.outcome, decision.guard_id, decision.candidate_id) == ("borderline", None, "G-1")


def test_far_probe_is_unknown_with_distance() -> None:
    gallery = {"G-1": unit(0)[None, :], "G-2": unit(1)[None, :]}
    decision = decide(at_distance(unit(0), 0.9), gallery)
    assert decision.outcome == "unknown"
    assert decision.guard_id is None and decision.candidate_id is None
    assert decision.distance == pytest.approx(0.9)
    assert decision.margin is not None


def test_empty_gallery_is_unknown_without_distance() -> None:
    assert decide(unit(0), {}) == Decision("unknown", None, None, None, None)
    assert decide(unit(0), {"G-1": np.empty((0, DIM))}) == Decision("unknown", None, None, None, None)


def test_single_identity_has_no_margin_and_can_be_accepted() -> None:
    decision = decide(at_distance(unit(0), 0.1), {"G-1": unit(0)})
    assert decision.outcome == "accept"
    assert decision.margin is None


def test_threshold_above_borderline_is_rejected() -> None:
    with pytest.raises(ValueError, match="borderline_threshold"):
        decide(unit(0), {"G-1": unit(0)[None, :]}, threshold=0.7, borderline_threshold=0.6)


def test_templates_of_wrong_width_are_rejected() -> None:
    with pytest.raises(ValueError, match="G-1"):
        decide(unit(0), {"G-1": np.zeros((2, 64))})


def accept(guard_id: str, distance: float) -> Decision:
    return Decision("accept", guard_id, guard_id, distance, 0.2)


def test_consensus_needs_enough_agreeing_accepts() -> None:
    unknown = Decision("unknown", None, None, 0.8, None)
    frames = [accept("G-1", 0.40), unknown, accept("G-1", 0.30)]
    assert consensus(frames, required=2) == accept("G-1", 0.30)
    assert consensus(frames, required=3) is None
    assert consensus([], required=1) is None


def test_one_frame_accepting_someone_else_vetoes_the_consensus() -> None:
    frames = [accept("G-1", 0.40), accept("G-1", 0.30), accept("G-2", 0.35)]
    assert consensus(frames, required=2) is None


def test_consensus_refuses_when_two_guards_both_qualify() -> None:
    frames = [accept("G-1", 0.3), accept("G-2", 0.3)]
    assert consensus(frames, required=1) is None


def test_consensus_ignores_borderline_candidates() -> None:
    frames = [Decision("borderline", None, "G-1", 0.55, 0.2)] * 3
    assert consensus(frames, required=2) is None


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    guards=st.integers(1, 6),
    per_guard=st.integers(1, 4),
    noise=st.floats(0.0, 0.6),
)
def test_accepted_guard_always_has_the_minimum_distance(seed: int, guards: int, per_guard: int, noise: float) -> None:
    rng = np.random.default_rng(seed)
    # Real encodings sit ~0.3-0.9 apart; scale random directions into that range.
    gallery = {f"G-{i}": rng.normal(0, 0.06, (per_guard, DIM)) for i in range(guards)}
    target = gallery[f"G-{rng.integers(guards)}"][rng.integers(per_guard)]
    probe = target + rng.normal(0, noise / np.sqrt(DIM), DIM)

    decision = decide(probe, gallery)

    distances = {gid: np.linalg.norm(rows - probe, axis=1).min() for gid, rows in gallery.items()}
    if decision.outcome == "accept":
        assert distances[decision.guard_id] == pytest.approx(min(distances.values()))
        assert decision.distance <= 0.5
    else:
        assert decision.guard_id is None
    if decision.distance is not None:
        assert decision.distance == pytest.approx(min(distances.values()))
