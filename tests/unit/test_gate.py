"""The gate on real faces and real card reads: face, card, face+card, liveness and spoof refusal."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from biometrics.faces import FaceEncoder
from biometrics.images import load_image_rgb
from edge_agent.feedback import RecordingFeedback
from edge_agent.gate import Gate, GateRules
from edge_agent.liveness import AntiSpoof, LivenessConfig
from edge_agent.presentation import PresentationConfig
from edge_agent.quality import QualityConfig
from edge_agent.readers import FakeReader
from edge_agent.sources import Frame
from guardpost.samples import astronaut_path, grace_hopper_path, no_face_rgb
from protocol.cards import card_digest
from protocol.gallery import Gallery

pytestmark = pytest.mark.slow
LIVENESS = Path(__file__).parents[3] / "shared" / "models" / "liveness"
SALT = "site-salt"
HOPPER_CARD, COLLINS_CARD, CARD_ONLY = "GD2024000001", "GD2024000002", "GD2024000003"


@pytest.fixture(scope="module")
def encoder() -> FaceEncoder:
    return FaceEncoder()


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {"hopper": load_image_rgb(grace_hopper_path()), "collins": load_image_rgb(astronaut_path())}


@pytest.fixture(scope="module")
def gallery(encoder, photos) -> Gallery:
    def template(rgb: np.ndarray) -> np.ndarray:
        return encoder.largest_face(rgb)[1][None, :]

    return Gallery(
        site_id="site-a",
        version="1",
        templates={"G-HOPPER": template(photos["hopper"]), "G-COLLINS": template(photos["collins"])},
        names={"G-HOPPER": "Grace Hopper", "G-COLLINS": "Eileen Collins", "G-CARD": "Card Only"},
        cards={
            card_digest(n, SALT): g
            for n, g in [(HOPPER_CARD, "G-HOPPER"), (COLLINS_CARD, "G-COLLINS"), (CARD_ONLY, "G-CARD")]
        },
        card_salt=SALT,
    )


def make_gate(gallery, encoder, mode="face_or_card", antispoof=None, challenge="none", consensus=2, **rules):
    shown = RecordingFeedback()
    settings = dict(
        mode=mode,
        event_type="check_in",
        threshold=0.54,
        min_margin=0.08,
        borderline_threshold=0.6,
        cooldown_s=30.0,
        card_window_s=5.0,
        presentation=PresentationConfig(consensus_frames=consensus, settle_s=0),
        quality=QualityConfig(),
        liveness=LivenessConfig(challenge=challenge),
    )
    settings.update(rules)
    return Gate(GateRules(**settings), lambda: gallery, encoder, antispoof, shown.show), shown


def flipped(rgb: np.ndarray) -> Frame:
    return Frame(np.ascontiguousarray(rgb[:, ::-1]), "flipped")


def frames(gate: Gate, frame: Frame, times) -> list:
    return [r for t in times for r in gate.on_frame(frame, t)]


def card(number: str, at: float = 0.0):
    reader = FakeReader()
    reader.push(number)
    read = reader.poll()
    return read


def test_known_face_is_accepted_after_two_agreeing_frames(gallery, encoder, photos):
    gate, shown = make_gate(gallery, encoder)
    (rec,) = frames(gate, flipped(photos["hopper"]), [0.0, 0.2])
    assert (rec.type, rec.method, rec.guard_id) == ("check_in", "face", "G-HOPPER")
    assert rec.match["frames"] == 2 and rec.match["liveness"] == "not_checked" and rec.match["distance"] < 0.54
    assert rec.verdict.outcome == "accepted" and "Grace Hopper" in rec.verdict.message
    # still standing there: greeted again, nothing new recorded within the cooldown
    assert frames(gate, flipped(photos["hopper"]), [1.0, 1.2]) == []
    assert shown.last.message.endswith("already recorded.")


def test_impostor_is_denied_not_matched(encoder, photos):
    only_hopper = Gallery(
        "site-a",
        "1",
        templates={"G-HOPPER": encoder.largest_face(photos["hopper"])[1][None, :]},
        names={"G-HOPPER": "Grace Hopper"},
    )
    gate, _ = make_gate(only_hopper, encoder)
    recs = frames(gate, flipped(photos["collins"]), [i * 0.3 for i in range(8)])
    assert len(recs) == 1
    rec = recs[0]
    assert rec.type == "denied" and rec.guard_id is None and rec.candidate_id is None
    assert rec.match["distance"] > 0.6 and rec.verdict.outcome == "denied"
    assert "card" in rec.verdict.message  # face is never the only way in


def test_no_face_records_nothing(gallery, encoder):
    gate, _ = make_gate(gallery, encoder)
    assert frames(gate, Frame(no_face_rgb(), "empty"), [0.0, 0.5, 5.0]) == []


def test_walking_away_before_consensus_ends_as_a_review_case(gallery, encoder, photos):
    gate, _ = make_gate(gallery, encoder, consensus=3)
    assert frames(gate, flipped(photos["hopper"]), [0.0, 0.2]) == []
    (rec,) = gate.on_frame(Frame(no_face_rgb(), "empty"), 2.0)
    assert rec.type == "denied" and rec.candidate_id == "G-HOPPER" and rec.match["frames"] == 2


def test_blurred_face_gets_a_prompt_not_a_decision(gallery, encoder, photos):
    gate, shown = make_gate(gallery, encoder)
    blurred = Frame(cv2.GaussianBlur(photos["hopper"], (0, 0), 6), "blurred")
    assert frames(gate, blurred, [0.0, 0.2, 0.4]) == []
    assert shown.last.outcome == "prompt" and shown.last.message == "Please hold still"


def test_a_photo_cannot_pass_the_blink_challenge(gallery, encoder, photos):
    gate, shown = make_gate(gallery, encoder, challenge="blink")
    recs = frames(gate, flipped(photos["hopper"]), [i * 0.5 for i in range(12)])
    assert shown.verdicts[0].message == "Please blink"
    (rec,) = recs
    assert rec.type == "denied" and rec.match["liveness"] == "fail" and rec.candidate_id == "G-HOPPER"
    assert "live face" in rec.verdict.message


def test_card_only_check_in_and_unknown_card(gallery, encoder):
    gate, _ = make_gate(gallery, encoder, mode="card")
    rec = gate.on_card(card(CARD_ONLY), 0.0)
    assert (rec.type, rec.method, rec.guard_id, rec.match) == ("check_in", "card", "G-CARD", None)
    assert rec.card_masked == "GD******0003" and "Card Only" in rec.verdict.message
    denied = gate.on_card(card("XX9999999999"), 1.0)
    assert denied.type == "denied" and denied.method == "card" and denied.guard_id is None
    assert gate.on_frame(Frame(no_face_rgb(), "x"), 2.0) == []  # card-only gates ignore the camera


def test_face_or_card_accepts_either(gallery, encoder, photos):
    gate, _ = make_gate(gallery, encoder)
    assert gate.on_card(card(COLLINS_CARD), 0.0).method == "card"
    (rec,) = frames(gate, flipped(photos["hopper"]), [1.0, 1.2])
    assert rec.guard_id == "G-HOPPER" and rec.method == "face"


def test_face_and_card_verifies_the_card_holders_face(gallery, encoder, photos):
    gate, shown = make_gate(gallery, encoder, mode="face+card")
    assert frames(gate, flipped(photos["hopper"]), [0.0, 0.2]) == []  # no card yet: the camera waits
    assert gate.on_card(card(HOPPER_CARD), 1.0) is None
    assert shown.last.message == "Please look at the camera"
    (rec,) = frames(gate, flipped(photos["hopper"]), [1.2, 1.4])
    assert (rec.type, rec.method, rec.guard_id, rec.card_masked) == (
        "check_in",
        "face+card",
        "G-HOPPER",
        "GD******0001",
    )
    assert rec.match["margin"] is None and rec.match["frames"] == 2


def test_someone_elses_card_is_refused_with_the_holder_as_candidate(gallery, encoder, photos):
    gate, _ = make_gate(gallery, encoder, mode="face+card")
    gate.on_card(card(HOPPER_CARD), 0.0)
    recs = frames(gate, flipped(photos["collins"]), [0.2 + i * 0.3 for i in range(8)])
    (rec,) = recs
    assert rec.type == "denied" and rec.method == "face+card" and rec.candidate_id == "G-HOPPER"
    assert rec.guard_id is None and rec.match["distance"] > 0.54


def test_face_and_card_window_runs_out(gallery, encoder):
    gate, _ = make_gate(gallery, encoder, mode="face+card")
    gate.on_card(card(HOPPER_CARD), 0.0)
    assert gate.tick(4.0) is None
    rec = gate.tick(5.1)
    assert rec.type == "denied" and rec.method == "card" and rec.candidate_id == "G-HOPPER" and rec.match is None


def test_card_without_a_face_on_file_cannot_do_face_and_card(gallery, encoder):
    gate, _ = make_gate(gallery, encoder, mode="face+card")
    rec = gate.on_card(card(CARD_ONLY), 0.0)
    assert rec.type == "denied" and rec.candidate_id == "G-CARD" and "No face on file" in rec.verdict.message


@pytest.mark.skipif(
    not (LIVENESS / "models" / "MiniFASNetV2.onnx").exists(),
    reason=f"../shared/models/liveness not present ({LIVENESS}): anti-spoof models live outside the repo",
)
@pytest.mark.parametrize(
    "sample, live", [("image_F1.jpg", False), ("image_F2.jpg", False), ("image_T1.jpg", True), ("image_T2.jpg", True)]
)
def test_spoof_samples_are_refused_and_real_ones_pass(encoder, sample, live):
    rgb = load_image_rgb(LIVENESS / "samples" / sample)
    probe = encoder.largest_face(rgb)[1]
    gallery = Gallery("site-a", "1", templates={"G-SAMPLE": probe[None, :]}, names={"G-SAMPLE": "Sample"})
    antispoof = AntiSpoof(LIVENESS / "models" / "MiniFASNetV2.onnx")
    # F1 is held at a 40 degree angle, which the pose gate alone would refuse; let the model decide.
    gate, _ = make_gate(gallery, encoder, antispoof=antispoof, quality=QualityConfig(max_yaw_deg=60))
    recs = frames(gate, Frame(rgb, sample), [0.0, 0.2, 0.4])
    assert len(recs) == 1
    if live:
        assert recs[0].type == "check_in" and recs[0].match["liveness"] == "pass"
    else:
        assert recs[0].type == "denied" and recs[0].match["liveness"] == "fail"
        assert recs[0].candidate_id == "G-SAMPLE"  # recognised, but not a live face
