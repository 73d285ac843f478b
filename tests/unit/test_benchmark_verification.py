"""Verification benchmark: scoring on hand-made trials, labels CSV errors, and a run on the sample faces."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from benchmarks.verification import (
    LabelsError,
    Params,
    Probe,
    Trial,
    main,
    read_labels,
    run_trials,
    score,
)
from guardpost.samples import astronaut_path, grace_hopper_path

FINAL_LINE = re.compile(
    r"^TAR=(?P<tar>\d+\.\d+) FAR=(?P<far>\d+\.\d+) unknown_rate=(?P<unknown>\d+\.\d+) "
    r"decision_p50_ms=\d+\.\d+ encode_p50_ms=\d+\.\d+$"
)


# -- scoring ---------------------------------------------------------------------------------------


def test_score_counts_right_accepts_as_tar_and_every_impostor_accept_as_far() -> None:
    trials = [
        Trial("genuine", "ann", "accept", "ann"),
        Trial("genuine", "ann", "accept", "ann"),
        Trial("genuine", "bob", "accept", "ann"),  # accepted, but as the wrong person
        Trial("genuine", "bob", "borderline"),
        Trial("impostor", "ann", "unknown"),
        Trial("impostor", "bob", "accept", "ann"),
        Trial("impostor", "cid", "borderline"),
        Trial("impostor", "dee", "unknown"),
    ]
    scores = score(trials)
    assert (scores.genuine, scores.impostor, scores.correct, scores.misidentified) == (4, 4, 2, 1)
    assert scores.tar == pytest.approx(0.5)
    assert scores.far == pytest.approx(0.25)
    assert scores.unknown_rate == pytest.approx(0.25)  # the misidentified guard is neither accepted nor unknown


def test_no_face_counts_against_tar_but_is_no_impostor_trial() -> None:
    scores = score(
        [
            Trial("genuine", "ann", "accept", "ann"),
            Trial("genuine", "ann", "no_face"),
            Trial("genuine", "ann", "unknown"),
            Trial("impostor", "ann", "no_face"),
            Trial("impostor", "bob", "unknown"),
        ]
    )
    assert scores.genuine == 3 and scores.impostor == 1
    assert scores.tar == pytest.approx(1 / 3)
    assert scores.unknown_rate == pytest.approx(2 / 3)
    assert scores.far == 0.0
    assert scores.impostor_counts["no_face"] == 1


def test_empty_results_give_undefined_rates_not_errors() -> None:
    scores = score([])
    assert np.isnan(scores.tar) and np.isnan(scores.far) and np.isnan(scores.unknown_rate)
    assert not scores.meets_target()


def test_target_needs_both_tar_and_far() -> None:
    perfect = [Trial("genuine", "ann", "accept", "ann"), Trial("impostor", "bob", "unknown")]
    assert score(perfect).meets_target()
    assert not score([*perfect, Trial("impostor", "cid", "accept", "ann")]).meets_target()
    assert not score([*perfect, Trial("genuine", "ann", "unknown")]).meets_target()


def _unit(axis: int) -> np.ndarray:
    vector = np.zeros(128)
    vector[axis] = 1.0
    return vector


def test_trials_leave_enrolment_images_out_of_genuine_and_own_identity_out_of_impostor() -> None:
    gallery = {"ann": _unit(0)[None, :], "bob": _unit(1)[None, :]}
    probes = [
        Probe("ann", _unit(0), enrolled_from=True),
        Probe("ann", _unit(0) + 0.1 * _unit(5), enrolled_from=False),
        Probe("bob", None, enrolled_from=False),
        Probe("cid", _unit(0) + 0.2 * _unit(5), enrolled_from=False),  # not enrolled; looks like ann
    ]
    trials = run_trials(probes, gallery, Params(threshold=0.5, min_margin=0.08, borderline=0.6))
    assert [(t.kind, t.identity) for t in trials] == [
        ("impostor", "ann"),
        ("genuine", "ann"),
        ("impostor", "ann"),
        ("genuine", "bob"),
        ("impostor", "bob"),
        ("impostor", "cid"),
    ]
    assert trials[1] == Trial("genuine", "ann", "accept", "ann")
    assert trials[2].outcome != "accept"  # ann's probe against a gallery without ann
    assert trials[3].outcome == "no_face"
    assert trials[5] == Trial("impostor", "cid", "accept", "ann")  # a look-alike is a false accept


# -- labels CSV ------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_labels_resolve_paths_against_the_csv_folder(tmp_path: Path) -> None:
    labels = read_labels(_write(tmp_path, "path,identity\na/one.jpg,ann\n\n b.png , bob \n"))
    assert [(item.path, item.identity, item.line) for item in labels] == [
        (tmp_path / "a" / "one.jpg", "ann", 2),
        (tmp_path / "b.png", "bob", 4),
    ]


def test_labels_columns_may_come_in_any_order(tmp_path: Path) -> None:
    labels = read_labels(_write(tmp_path, "identity,path\nann,x.jpg\n"))
    assert labels[0].identity == "ann" and labels[0].path == tmp_path / "x.jpg"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,name\nx.jpg,ann\n", r"line 1: header must name the columns path,identity; missing path, identity"),
        ("path\nx.jpg\n", r"line 1: .*missing identity"),
        ("", r"line 1: .*an empty file"),
        ("path,identity\n", r"no rows after the header"),
        ("path,identity\nx.jpg,ann\ny.jpg\n", r"line 3: expected 2 fields \(path,identity\), got 1"),
        ("path,identity\nx.jpg,ann\n\nmy,photo.jpg,bob\n", r"line 4: expected 2 fields"),
        ("path,identity\nx.jpg,ann\n,bob\n", r"line 3: empty path or identity"),
    ],
    ids=["bad-header", "missing-column", "empty-file", "no-rows", "short-row", "long-row", "empty-path"],
)
def test_malformed_labels_name_the_problem_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(LabelsError, match=message):
        read_labels(_write(tmp_path, text))


def test_missing_labels_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--labels", str(tmp_path / "nope.csv")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"error: labels {tmp_path / 'nope.csv'}: no such file"]


def test_bad_row_exits_2_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = _write(tmp_path, "path,identity\nx.jpg,ann\ny.jpg\n")
    assert main(["--labels", str(labels)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "line 3" in err


# -- end to end on the registry sample photos ------------------------------------------------------


@pytest.fixture
def sample_labels(tmp_path: Path) -> Path:
    """Each sample guard enrolled from the original photo and probed with a mirrored copy."""
    rows = ["path,identity", f"{grace_hopper_path()},hopper", f"{astronaut_path()},collins"]
    for identity, source in (("hopper", grace_hopper_path()), ("collins", astronaut_path())):
        with Image.open(source) as image:
            ImageOps.mirror(image.convert("RGB")).save(tmp_path / f"{identity}-flipped.png")
        rows.append(f"{identity}-flipped.png,{identity}")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rows.append("broken.jpg,nobody")
    return _write(tmp_path, "\n".join(rows) + "\n")


@pytest.mark.slow
def test_end_to_end_on_sample_faces(sample_labels: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--labels", str(sample_labels), "--sweep", "--repeat", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()

    final = FINAL_LINE.match(lines[-1])
    assert final, lines[-1]
    assert float(final["tar"]) == 1.0 and float(final["far"]) == 0.0 and float(final["unknown"]) == 0.0
    assert re.fullmatch(r"ratio=\d+\.\d+", lines[-2]), lines[-2]
    assert lines[-3].startswith("targets: decision p50 within 1.3x of encode p50")

    assert any(line.startswith("skipped line 6: cannot read image") and "broken.jpg" in line for line in lines)
    assert any(line.startswith("machine: ") for line in lines)
    assert any(re.match(r"genuine\s+2\s+2\s", line) for line in lines)
    assert any(re.match(r"impostor\s+4\s+0\s", line) for line in lines)
    stage_rows = [
        line.split() for line in lines if re.match(r"(load|detect|encode|decide|decision|encode_only)\s", line)
    ]
    stages = {row[0]: int(row[1]) for row in stage_rows}
    assert stages == {"load": 4, "detect": 4, "encode": 4, "decide": 4, "decision": 4, "encode_only": 4}
    sweep_rows = [line for line in lines if re.match(r"\s+0\.[456]\d\s", line)]
    assert [row.split()[0] for row in sweep_rows] == [f"{0.40 + 0.02 * step:.2f}" for step in range(11)]
