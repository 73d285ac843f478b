"""Match a face encoding against the gallery: threshold, margin to the runner-up, and unknown."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Decision:
    """What one probe matched; guard_id is set only for an accept."""

    outcome: Literal["accept", "borderline", "unknown"]
    guard_id: str | None
    candidate_id: str | None
    distance: float | None
    margin: float | None


def decide(
    probe: np.ndarray,
    gallery: Mapping[str, np.ndarray],
    threshold: float = 0.5,
    min_margin: float = 0.08,
    borderline_threshold: float = 0.6,
) -> Decision:
    """Decide who ``probe`` is, given guard_id -> (n, d) templates.

    An identity's distance is its nearest template. The best identity is accepted only when it is
    close enough and clearly closer than the runner-up; otherwise a near miss is ``borderline``
    (worth a retry or a supervisor look) and anything further is ``unknown``.
    """
    if threshold > borderline_threshold:
        raise ValueError(f"threshold {threshold} must not exceed borderline_threshold {borderline_threshold}")
    probe = np.asarray(probe, dtype=np.float64)
    if probe.ndim != 1 or not np.all(np.isfinite(probe)):
        raise ValueError(f"probe must be a finite 1-d vector, got shape {probe.shape}")

    templates = {guard_id: _templates(guard_id, rows, probe.shape[0]) for guard_id, rows in gallery.items()}
    # Guards without templates cannot match, and reduceat below needs non-empty segments.
    ids = [guard_id for guard_id, rows in templates.items() if len(rows)]
    if not ids:
        return Decision("unknown", None, None, None, None)

    stacked = np.concatenate([templates[guard_id] for guard_id in ids])
    starts = np.cumsum([0] + [len(templates[guard_id]) for guard_id in ids[:-1]])
    identity_distances = np.minimum.reduceat(np.linalg.norm(stacked - probe, axis=1), starts)

    # Stable sort so equal distances resolve by gallery order, run after run.
    order = np.argsort(identity_distances, kind="stable")
    best = ids[order[0]]
    d1 = float(identity_distances[order[0]])
    margin = float(identity_distances[order[1]]) - d1 if len(ids) > 1 else None

    if d1 <= threshold and (margin is None or margin >= min_margin):
        return Decision("accept", best, best, d1, margin)
    if d1 <= borderline_threshold:
        return Decision("borderline", None, best, d1, margin)
    return Decision("unknown", None, None, d1, margin)


def _templates(guard_id: str, rows: np.ndarray, dim: int) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        return rows.reshape(0, dim)
    rows = np.atleast_2d(rows)  # a guard with one template may be stored as a plain vector
    if rows.ndim != 2 or rows.shape[1] != dim:
        raise ValueError(f"templates of {guard_id} have shape {rows.shape}, expected (n, {dim})")
    return rows


def consensus(decisions: Sequence[Decision], required: int) -> Decision | None:
    """The closest accept when at least ``required`` decisions accept one guard and none accepts another.

    Frames that accept two different guards disagree about who is at the gate, and a wrong accept at
    a gate is worse than a retry, so nobody is accepted.
    """
    if required < 1:
        raise ValueError(f"required must be at least 1, got {required}")
    accepts: dict[str, list[Decision]] = defaultdict(list)
    for decision in decisions:
        if decision.outcome == "accept" and decision.guard_id is not None:
            accepts[decision.guard_id].append(decision)
    if len(accepts) != 1:
        return None
    (group,) = accepts.values()
    if len(group) < required:
        return None
    return min(group, key=lambda decision: decision.distance or 0.0)
