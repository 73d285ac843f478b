"""Card decisions at the gate: whose card was read, and (face+card) whether the face is that card holder's."""

from __future__ import annotations

import numpy as np

from edge_agent.readers import CardRead
from protocol.cards import card_digest
from protocol.gallery import Gallery


def find_card_holder(read: CardRead, gallery: Gallery) -> str | None:
    """The guard the gallery lists for this card, or None when the card is unknown here (or expired).

    The terminal holds no clear numbers: it digests the read with the site's salt and looks the digest up.
    """
    if not gallery.cards or not gallery.card_salt:
        return None
    return gallery.cards.get(card_digest(read.number, gallery.card_salt))


def verify_one_to_one(probe: np.ndarray, templates: np.ndarray, threshold: float) -> tuple[bool, float]:
    """Is ``probe`` the card holder? Accepted when its nearest template is within ``threshold``.

    Unlike the 1:N search in decision.py there is no runner-up and so no margin: the card already named
    the identity, and the face only has to confirm it. Returns (accepted, distance to the nearest template).
    Raises ValueError for a holder without templates, since "no face on file" is not a failed match.
    """
    if not threshold > 0.0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    probe = np.asarray(probe, dtype=np.float64)
    if probe.ndim != 1 or not np.all(np.isfinite(probe)):
        raise ValueError(f"probe must be a finite 1-d vector, got shape {probe.shape}")
    rows = np.asarray(templates, dtype=np.float64)
    if rows.size == 0:
        raise ValueError("the card holder has no face templates to verify against")
    rows = np.atleast_2d(rows)  # one template may come as a plain vector
    if rows.ndim != 2 or rows.shape[1] != probe.shape[0]:
        raise ValueError(f"templates have shape {rows.shape}, expected (n, {probe.shape[0]})")
    distance = float(np.linalg.norm(rows - probe, axis=1).min())
    return distance <= threshold, distance
