"""Enrolment API: upload a guard's photos; hostile files get a clear 4xx and a record, never a crash."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from flask import Blueprint, abort, current_app, g, request

from biometrics.images import ImageError, load_image_bytes_rgb
from server.enrollment import EnrollmentError, enroll_rgb
from server.models import Guard
from server.web import get_session, sessions, state
from server.web.auth import require_guard, require_user, require_write

bp = Blueprint("enroll", __name__)

MAX_PHOTOS = 5
MAX_PHOTO_BYTES = 12 * 2**20  # a full-size phone JPEG; anything larger is not a portrait
# Room for the multipart envelope; werkzeug stops reading the body past this.
MAX_REQUEST_BYTES = MAX_PHOTOS * MAX_PHOTO_BYTES + 64 * 1024
ENCODER_KEY = "guardpost.face_encoder"
_load_lock = threading.Lock()
# dlib's detector is not safe to share between threads; enrolment is rare, so one at a time is fine.
_encode_lock = threading.Lock()


def _encoder():
    """One face encoder per process, loaded on first use (dlib's models take a second and ~100 MB)."""
    from biometrics.faces import FaceEncoder
    from server.enrollment import ENROLMENT_DETECT_WIDTH

    extensions = current_app.extensions
    with _load_lock:
        if ENCODER_KEY not in extensions:
            extensions[ENCODER_KEY] = FaceEncoder(detect_width=ENROLMENT_DETECT_WIDTH)
    return extensions[ENCODER_KEY]


def _refuse(guard_id: str, name: str, why: str) -> dict[str, str]:
    sessions.record(get_session(), "upload_refused", g.user.name, f"guard {guard_id}, {name}: {why}")
    current_app.logger.info("enrolment photo refused for guard %s: %s", guard_id, why)
    return {"photo": name, "error": why}


@bp.post("/guards/<guard_id>/photos")
@require_user
def upload_photos(guard_id: str) -> tuple[dict[str, Any], int]:
    """Multipart field ``photo`` (1-5 files): each is enrolled or refused with why; the photos are not kept."""
    require_write()
    session = get_session()
    if session.get(Guard, guard_id) is None:
        abort(404, f"no guard {guard_id}")
    require_guard(guard_id)
    cipher = state().cipher
    if cipher is None:
        abort(503, "enrolment is unavailable: templates are stored encrypted and the server has no key")
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        abort(413, f"send at most {MAX_PHOTOS} photos of at most {MAX_PHOTO_BYTES // 2**20} MB each")
    request.max_content_length = MAX_REQUEST_BYTES  # also bounds a chunked upload without a length
    uploads = request.files.getlist("photo")
    if not uploads:
        abort(400, "send the photos as multipart/form-data file fields named 'photo' (JPEG or PNG)")
    if len(uploads) > MAX_PHOTOS:
        abort(413, f"send at most {MAX_PHOTOS} photos at once")
    stored, refused = [], []
    for upload in uploads:
        name = (upload.filename or "photo")[:100]
        data = upload.stream.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            refused.append(_refuse(guard_id, name, f"larger than {MAX_PHOTO_BYTES // 2**20} MB"))
            continue
        try:
            rgb = load_image_bytes_rgb(data, name)
            encoder = _encoder()
            with _encode_lock:
                enrolment = enroll_rgb(session, cipher, encoder, guard_id, rgb, name, hashlib.sha256(data).hexdigest())
        except (ImageError, EnrollmentError) as exc:
            refused.append(_refuse(guard_id, name, str(exc)))
            continue
        stored.append({"photo": name, "template_id": enrolment.template.id, "warnings": enrolment.warnings})
    session.commit()
    if stored:
        current_app.logger.info("%s enrolled %d photo(s) of guard %s", g.user.name, len(stored), guard_id)
    return {"guard_id": guard_id, "stored": stored, "refused": refused}, 201 if stored else 422
