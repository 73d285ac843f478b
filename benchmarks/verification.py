"""Verification benchmark: accuracy and latency of the terminal's own detect -> encode -> decide path."""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np

from biometrics.faces import FaceBox, FaceEncoder
from biometrics.images import ImageError, load_image_rgb
from edge_agent.config import RecognitionConfig
from edge_agent.decision import decide

Outcome = Literal["accept", "borderline", "unknown", "no_face"]
OUTCOMES: tuple[Outcome, ...] = ("accept", "borderline", "unknown", "no_face")
T = TypeVar("T")

STAGES = ("load", "detect", "encode", "decide", "decision", "encode_only")
# The terminal's targets: the guard should wait little more than one encoding, and a false accept must be rare.
TARGET_RATIO = 1.3
TARGET_TAR = 0.99
TARGET_FAR = 0.001
SWEEP_THRESHOLDS = tuple(round(0.40 + 0.02 * step, 2) for step in range(11))
_DEFAULTS = RecognitionConfig()


class LabelsError(ValueError):
    """A labels CSV that cannot be used; the message names the file and, for a bad row, its line."""


@dataclass(frozen=True)
class LabeledImage:
    path: Path
    identity: str
    line: int


@dataclass(frozen=True)
class Params:
    threshold: float = _DEFAULTS.threshold
    min_margin: float = _DEFAULTS.min_margin
    borderline: float = _DEFAULTS.borderline_threshold


@dataclass(frozen=True)
class Probe:
    """One image run through the terminal path; encoding is None when no face was found."""

    identity: str
    encoding: np.ndarray | None
    enrolled_from: bool  # this image is one of its identity's templates, so it cannot be a genuine probe


@dataclass(frozen=True)
class Trial:
    kind: Literal["genuine", "impostor"]
    identity: str
    outcome: Outcome
    guard_id: str | None = None  # who was accepted, for an accept


@dataclass(frozen=True)
class Scores:
    genuine: int
    impostor: int  # impostor trials that reached the gallery (a face was found)
    genuine_counts: Mapping[str, int]
    impostor_counts: Mapping[str, int]
    correct: int  # genuine trials accepted as the right identity

    @property
    def tar(self) -> float:
        return self.correct / self.genuine if self.genuine else float("nan")

    @property
    def far(self) -> float:
        return self.impostor_counts["accept"] / self.impostor if self.impostor else float("nan")

    @property
    def unknown_rate(self) -> float:
        missed = sum(self.genuine_counts[outcome] for outcome in ("borderline", "unknown", "no_face"))
        return missed / self.genuine if self.genuine else float("nan")

    @property
    def misidentified(self) -> int:
        return self.genuine_counts["accept"] - self.correct

    def meets_target(self) -> bool:
        return self.tar >= TARGET_TAR and self.far <= TARGET_FAR


@dataclass
class Run:
    """Everything measured once, from which every report and sweep row is computed."""

    probes: list[Probe]
    gallery: dict[str, np.ndarray]
    impostor_only: list[str]
    notes: list[str]
    timings: dict[str, list[float]] = field(default_factory=lambda: {stage: [] for stage in STAGES})


# -- labels ----------------------------------------------------------------------------------------


def read_labels(csv_path: Path) -> list[LabeledImage]:
    """Rows of a ``path,identity`` CSV with paths resolved against the CSV's folder."""
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelsError(f"labels {csv_path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsError(f"labels {csv_path}: cannot read: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = _header(csv_path, next(reader, None))
        labeled = [_parse_row(csv_path, reader.line_num, row, header) for row in reader if any(map(str.strip, row))]
    except csv.Error as exc:
        raise LabelsError(f"labels {csv_path} line {reader.line_num}: {exc}") from None
    if not labeled:
        raise LabelsError(f"labels {csv_path}: no rows after the header")
    return labeled


def _header(csv_path: Path, header: list[str] | None) -> list[str]:
    names = [cell.strip().lower() for cell in header or []]
    missing = [name for name in ("path", "identity") if name not in names]
    if missing:
        raise LabelsError(
            f"labels {csv_path} line 1: header must name the columns path,identity; "
            f"missing {', '.join(missing)} (got {','.join(header or []) or 'an empty file'!r})"
        )
    return names


def _parse_row(csv_path: Path, line: int, row: list[str], header: list[str]) -> LabeledImage:
    # A field count that differs from the header usually means an unquoted comma in a path.
    if len(row) != len(header):
        raise LabelsError(
            f"labels {csv_path} line {line}: expected {len(header)} fields ({','.join(header)}), "
            f"got {len(row)}: {','.join(row)!r}"
        )
    fields = dict(zip(header, (cell.strip() for cell in row), strict=True))
    if not fields["path"] or not fields["identity"]:
        raise LabelsError(f"labels {csv_path} line {line}: empty path or identity in {','.join(row)!r}")
    return LabeledImage(csv_path.parent / fields["path"], fields["identity"], line)


# -- scoring (pure) --------------------------------------------------------------------------------


def run_trials(probes: Sequence[Probe], gallery: Mapping[str, np.ndarray], params: Params) -> list[Trial]:
    """Genuine trials for unenrolled images of enrolled identities, an impostor trial for every image."""
    trials = []
    for probe in probes:
        if probe.identity in gallery and not probe.enrolled_from:
            trials.append(_trial("genuine", probe, gallery, params))
        # Without its own identity in the gallery, any accept is a false accept.
        others = {identity: rows for identity, rows in gallery.items() if identity != probe.identity}
        trials.append(_trial("impostor", probe, others, params))
    return trials


def _trial(
    kind: Literal["genuine", "impostor"], probe: Probe, gallery: Mapping[str, np.ndarray], params: Params
) -> Trial:
    if probe.encoding is None:
        return Trial(kind, probe.identity, "no_face")
    decision = decide(probe.encoding, gallery, params.threshold, params.min_margin, params.borderline)
    return Trial(kind, probe.identity, decision.outcome, decision.guard_id)


def score(trials: Iterable[Trial]) -> Scores:
    """TAR, FAR and unknown rate of probe results.

    A genuine trial without a face counts against TAR (the guard was not let in). An impostor image
    without a face is not an impostor trial: nothing was compared, so it says nothing about FAR.
    """
    counts: dict[str, dict[str, int]] = {kind: dict.fromkeys(OUTCOMES, 0) for kind in ("genuine", "impostor")}
    correct = 0
    for trial in trials:
        counts[trial.kind][trial.outcome] += 1
        correct += trial.kind == "genuine" and trial.outcome == "accept" and trial.guard_id == trial.identity
    genuine = sum(counts["genuine"].values())
    impostor = sum(counts["impostor"].values()) - counts["impostor"]["no_face"]
    return Scores(genuine, impostor, counts["genuine"], counts["impostor"], correct)


def distance_line(probes: Sequence[Probe], gallery: Mapping[str, np.ndarray]) -> str:
    """How far apart the two populations are: the gap a threshold has to fall into."""
    genuine, impostor = [], []
    for probe in probes:
        if probe.encoding is None:
            continue
        for identity, rows in gallery.items():
            nearest = float(np.min(np.linalg.norm(rows - probe.encoding, axis=1)))
            if identity != probe.identity:
                impostor.append(nearest)
            elif not probe.enrolled_from:
                genuine.append(nearest)
    farthest = f"{max(genuine):.3f}" if genuine else "n/a"
    closest = f"{min(impostor):.3f}" if impostor else "n/a"
    return f"distances: farthest genuine probe to its own templates {farthest}, closest impostor to any other {closest}"


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# -- measuring -------------------------------------------------------------------------------------


def _timed(call: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = call()
    return result, (time.perf_counter() - start) * 1000.0


def load_all(labeled: Sequence[LabeledImage], run: Run) -> list[tuple[LabeledImage, np.ndarray]]:
    loaded = []
    for item in labeled:
        try:
            rgb, elapsed = _timed(lambda item=item: load_image_rgb(item.path))
        except ImageError as exc:
            run.notes.append(f"skipped line {item.line}: {exc}")
            continue
        run.timings["load"].append(elapsed)
        loaded.append((item, rgb))
    return loaded


def enrol(loaded: Sequence[tuple[LabeledImage, np.ndarray]], per_identity: int, run: Run) -> set[int]:
    """Templates from the first images of each identity; returns the CSV lines used for enrolment."""
    # Enrolment happens on the server with its own default encoder, whatever the terminal's detect width.
    encoder = FaceEncoder()
    by_identity: dict[str, list[tuple[LabeledImage, np.ndarray]]] = {}
    for item, rgb in loaded:
        by_identity.setdefault(item.identity, []).append((item, rgb))
    used: set[int] = set()
    for identity, images in by_identity.items():
        if len(images) <= per_identity:
            run.impostor_only.append(identity)
            continue
        templates = []
        for item, rgb in images[:per_identity]:
            used.add(item.line)
            face = encoder.largest_face(rgb)
            if face is None:
                run.notes.append(f"enrolment: no face on line {item.line} ({item.path.name})")
            else:
                templates.append(face[1])
        if templates:
            run.gallery[identity] = np.stack(templates)
        else:
            run.impostor_only.append(identity)
    return used


def probe_all(
    loaded: Sequence[tuple[LabeledImage, np.ndarray]],
    enrolled_lines: set[int],
    encoder: FaceEncoder,
    params: Params,
    repeat: int,
    run: Run,
) -> None:
    """The terminal path on every image, each stage timed, plus a bare encoding of the same box.

    The whole set runs ``repeat`` times and each image keeps its fastest time per stage: on a shared
    machine that is the closest to the code's own cost, without other processes' bursts in it.
    """
    passes = [[_terminal_path(encoder, rgb, run.gallery, params) for _, rgb in loaded] for _ in range(repeat)]
    for index, (item, _) in enumerate(loaded):
        encoding = passes[0][index][0]
        if encoding is None:
            run.notes.append(f"no face found on line {item.line} ({item.path.name})")
        run.probes.append(Probe(item.identity, encoding, item.line in enrolled_lines))
        for stage, elapsed in _fastest([one_pass[index][1] for one_pass in passes]).items():
            run.timings[stage].append(elapsed)


def _terminal_path(
    encoder: FaceEncoder, rgb: np.ndarray, gallery: Mapping[str, np.ndarray], params: Params
) -> tuple[np.ndarray | None, dict[str, float]]:
    """The probe's encoding (None without a face) and each stage's milliseconds."""
    # Mirrors Agent.process_frame (largest_face, then decide) with a clock around each step.
    box, detect_ms = _timed(lambda: encoder.detect_largest(rgb))
    if box is None:
        return None, {"detect": detect_ms}
    encoding, encode_ms = _timed(lambda: encoder.encode(rgb, box))
    _, decide_ms = _timed(lambda: decide(encoding, gallery, params.threshold, params.min_margin, params.borderline))
    _, reference_ms = _timed(lambda: _reference_encoding(rgb, box))
    return encoding, {
        "detect": detect_ms,
        "encode": encode_ms,
        "decide": decide_ms,
        "decision": detect_ms + encode_ms + decide_ms,
        "encode_only": reference_ms,
    }


def _fastest(samples: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {stage: min(sample[stage] for sample in samples) for stage in samples[0]}


def _reference_encoding(rgb: np.ndarray, box: FaceBox) -> np.ndarray:
    """What face_recognition itself costs for one face whose box is already known: the yardstick."""
    # Imported after biometrics.faces, which silences face_recognition's import-time deprecation notice.
    import face_recognition

    return face_recognition.face_encodings(rgb, known_face_locations=[box.as_css()], num_jitters=1)[0]


def measure(labeled: Sequence[LabeledImage], per_identity: int, detect_width: int, params: Params, repeat: int) -> Run:
    run = Run(probes=[], gallery={}, impostor_only=[], notes=[])
    loaded = load_all(labeled, run)
    enrolled_lines = enrol(loaded, per_identity, run)
    probe_all(loaded, enrolled_lines, FaceEncoder(detect_width=detect_width), params, repeat, run)
    return run


# -- reporting -------------------------------------------------------------------------------------


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    blas = os.environ.get("OPENBLAS_CORETYPE")
    # Other processes slow dlib down; the load average says how much to trust the timings.
    load = ", load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return (
        f"machine: {cpu}, {os.cpu_count()} cores ({usable} usable), {platform.machine()}, "
        f"Python {platform.python_version()}, dlib {_version('dlib-bin', 'dlib')}, "
        f"face_recognition {_version('face_recognition')}" + (f", OPENBLAS_CORETYPE={blas}" if blas else "") + load
    )


def _version(*distributions: str) -> str:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def timing_table(timings: Mapping[str, Sequence[float]]) -> list[str]:
    lines = [f"{'stage':<12} {'n':>4} {'p50 ms':>9} {'p95 ms':>9}"]
    for stage in STAGES:
        values = timings[stage]
        lines.append(f"{stage:<12} {len(values):>4} {percentile(values, 50):>9.1f} {percentile(values, 95):>9.1f}")
    return lines


def trials_table(scores: Scores) -> list[str]:
    header = f"{'trials':<9} {'n':>4} {'accepted':>9} {'wrong id':>9} {'borderline':>11} {'unknown':>8} {'no face':>8}"
    genuine, impostor = scores.genuine_counts, scores.impostor_counts
    return [
        header,
        f"{'genuine':<9} {scores.genuine:>4} {scores.correct:>9} {scores.misidentified:>9} "
        f"{genuine['borderline']:>11} {genuine['unknown']:>8} {genuine['no_face']:>8}",
        # Every impostor accept is a wrong identity; no-face images are listed but are not trials.
        f"{'impostor':<9} {scores.impostor:>4} {impostor['accept']:>9} {impostor['accept']:>9} "
        f"{impostor['borderline']:>11} {impostor['unknown']:>8} {impostor['no_face']:>8}",
    ]


def sweep_table(run: Run, params: Params) -> list[str]:
    lines = [
        f"sweep (min_margin {params.min_margin:g}, same encodings):",
        f"{'threshold':>9} {'TAR':>8} {'FAR':>8} {'unknown':>8}  meets target (observed)",
    ]
    meeting = []
    for threshold in SWEEP_THRESHOLDS:
        # decide() needs borderline >= threshold; borderline only splits unknowns, so TAR and FAR are unaffected.
        swept = Params(threshold, params.min_margin, max(params.borderline, threshold))
        scores = score(run_trials(run.probes, run.gallery, swept))
        met = scores.meets_target()
        meeting += [threshold] if met else []
        lines.append(
            f"{threshold:>9.2f} {_pct(scores.tar):>8} {_pct(scores.far):>8} {_pct(scores.unknown_rate):>8}  "
            + ("yes" if met else "no")
        )
    lines.append(f"thresholds meeting the target: {', '.join(f'{t:.2f}' for t in meeting) or 'none'}")
    lines.append(distance_line(run.probes, run.gallery))
    return lines


def targets_line(scores: Scores, ratio: float) -> str:
    speed = "met" if ratio <= TARGET_RATIO else "NOT met"
    return (
        f"targets: decision p50 within {TARGET_RATIO}x of encode p50: {speed} ({ratio:.2f}x); "
        f"FAR <= {TARGET_FAR:.1%} at TAR >= {TARGET_TAR:.0%}: {_accuracy_verdict(scores)} "
        f"(TAR {_pct(scores.tar)} of {scores.genuine}, FAR {_pct(scores.far)} of {scores.impostor})"
    )


def _accuracy_verdict(scores: Scores) -> str:
    if not scores.meets_target():
        return "NOT met"
    # Zero errors in n trials bounds the error rate below 3/n at 95 % confidence (rule of three), no lower;
    # a set too small for the target can agree with it but cannot show it.
    impostor_needed, genuine_needed = round(3 / TARGET_FAR), round(3 / (1 - TARGET_TAR))
    if scores.impostor >= impostor_needed and scores.genuine >= genuine_needed:
        return "met"
    return (
        f"met as observed, but too few trials to show it "
        f"(needs >= {impostor_needed} impostor and >= {genuine_needed} genuine)"
    )


def _pct(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.2%}"


def report(run: Run, args: argparse.Namespace, labeled: Sequence[LabeledImage]) -> list[str]:
    params = Params(args.threshold, args.min_margin, args.borderline)
    scores = score(run_trials(run.probes, run.gallery, params))
    decision_p50 = percentile(run.timings["decision"], 50)
    encode_p50 = percentile(run.timings["encode_only"], 50)
    ratio = decision_p50 / encode_p50
    templates = sum(len(rows) for rows in run.gallery.values())
    lines = [
        "GuardPost verification benchmark",
        f"labels: {args.labels} ({len(labeled)} rows, {len({item.identity for item in labeled})} identities)",
        machine_description(),
        f"settings: enrol {args.enrol} per identity, threshold {params.threshold:g}, min_margin {params.min_margin:g}, "
        f"borderline {params.borderline:g}, detect_width {args.detect_width}, "
        f"repeat {args.repeat} (fastest per image)",
        f"gallery: {len(run.gallery)} identities, {templates} templates; impostor-only (fewer than "
        f"{args.enrol + 1} usable images): {', '.join(run.impostor_only) or 'none'}",
        *run.notes,
        "",
        *timing_table(run.timings),
        "",
        *trials_table(scores),
        "",
    ]
    if args.sweep:
        lines += [*sweep_table(run, params), ""]
    return lines + [
        targets_line(scores, ratio),
        f"ratio={ratio:.3f}",
        f"TAR={scores.tar:.4f} FAR={scores.far:.4f} unknown_rate={scores.unknown_rate:.4f} "
        f"decision_p50_ms={decision_p50:.1f} encode_p50_ms={encode_p50:.1f}",
    ]


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.verification", description=__doc__)
    parser.add_argument("--labels", type=Path, required=True, help="CSV of path,identity (paths relative to it)")
    parser.add_argument("--enrol", type=_positive_int, default=1, help="images enrolled per identity (default 1)")
    parser.add_argument("--threshold", type=float, default=_DEFAULTS.threshold)
    parser.add_argument("--min-margin", type=float, default=_DEFAULTS.min_margin)
    parser.add_argument("--borderline", type=float, default=_DEFAULTS.borderline_threshold)
    parser.add_argument("--detect-width", type=int, default=_DEFAULTS.detect_width)
    parser.add_argument(
        "--repeat", type=_positive_int, default=3, help="passes over the set; each image keeps its fastest (default 3)"
    )
    parser.add_argument("--sweep", action="store_true", help="also print TAR/FAR/unknown at thresholds 0.40..0.60")
    args = parser.parse_args(argv)
    if args.borderline < args.threshold:
        parser.error(f"--borderline {args.borderline} must be at least --threshold {args.threshold}")
    if args.detect_width < 80:
        parser.error(f"--detect-width must be at least 80 (HOG's face window), got {args.detect_width}")
    return args


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        labeled = read_labels(args.labels)
    except LabelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    params = Params(args.threshold, args.min_margin, args.borderline)
    run = measure(labeled, args.enrol, args.detect_width, params, args.repeat)
    if not run.timings["decision"]:
        print(f"error: no face found in any readable image of {args.labels}", file=sys.stderr)
        return 2
    print("\n".join(report(run, args, labeled)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
