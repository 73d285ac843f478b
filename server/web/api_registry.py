"""Registry API: bulk imports (admin, manager) and read-only companies, sites and guards (masked identities)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from typing import Any

from flask import Blueprint, abort, current_app, g, request
from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session, selectinload

from server.guard_records import certificate_statuses, guard_summary
from server.import_assignments import import_assignments
from server.importer import ImportRejected, ImportResult, import_guards
from server.models import Assignment, Company, Guard, Post, Site, utcnow
from server.provinces import province_name
from server.registry import RegistryError
from server.tabular import MAX_BYTES
from server.web import get_session, state
from server.web.auth import current_scope, deny, require_guard, require_user

bp = Blueprint("registry", __name__)

IMPORT_ROLES = ("admin", "manager")
# Room for the multipart envelope around a file of MAX_BYTES.
MAX_UPLOAD = MAX_BYTES + 64 * 1024
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _may_import() -> None:
    if g.user.role not in IMPORT_ROLES:
        deny(f"imports need the admin or manager role; this user is a {g.user.role}")


@contextmanager
def _new_rows(session: Session) -> Iterator[list[object]]:
    """Collects every object the block adds to the session, flushed or not."""
    added: list[object] = []

    def collect(flushing: Session, _context, _instances) -> None:
        added.extend(flushing.new)

    event.listen(session, "before_flush", collect)
    try:
        yield added
    finally:
        event.remove(session, "before_flush", collect)
        added.extend(session.new)


def _outside_scope(rows: list[object]) -> str | None:
    """Why an import touches another company's guards or sites, if it does."""
    scope, session = current_scope(), get_session()
    for row in rows:
        # A guard without an employer is the manager's to post, as long as the postings are in scope.
        if isinstance(row, Guard) and row.company_id is not None and not scope.allows_company(row.company_id):
            return f"guard {row.guard_id} would be employed by {row.company_id or 'no company'}, not {scope.company_id}"
        if isinstance(row, Assignment) and not scope.allows_site(session, row.site_id):
            return f"site {row.site_id} is outside this user's scope ({scope.describe()})"
    return None


def _upload() -> tuple[bytes, str]:
    too_large = f"the file is larger than {MAX_BYTES // 2**20} MB; split it into several files"
    if request.content_length is not None and request.content_length > MAX_UPLOAD:
        abort(413, too_large)
    request.max_content_length = MAX_UPLOAD  # also bounds a chunked upload that declared no length
    upload = request.files.get("file")
    if upload is None:
        abort(400, "send the table as a multipart/form-data file field named 'file' (.csv or .xlsx)")
    data = upload.stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        abort(413, too_large)
    return data, upload.filename or ""


def _run_import(kind: str, run: Callable[[Session, bytes, str, bool], ImportResult]) -> tuple[dict[str, Any], int]:
    dry_run = request.args.get("dry_run", "").lower() in ("1", "true", "yes")
    session = get_session()
    data, filename = _upload()
    try:
        with _new_rows(session) as added:
            result = run(session, data, filename, dry_run)
    except ImportRejected as exc:
        session.rollback()
        return {"errors": [asdict(error) for error in exc.errors]}, 422
    if (why := _outside_scope(added)) is not None:
        session.rollback()
        deny(f"nothing imported: {why}")
    if dry_run:
        session.rollback()
    else:
        session.commit()
        current_app.logger.info("%s imported %d %s from %r", g.user.name, result.imported, kind, filename)
    return {"imported": result.imported, "dry_run": dry_run}, 200


@bp.post("/imports/guards")
@require_user
def import_guards_view() -> tuple[dict[str, Any], int]:
    """Multipart field ``file``: every row is imported, or none and 422 with ``errors`` (line, column, message)."""
    _may_import()
    cipher = state().cipher
    if cipher is None:
        abort(503, "guard import is unavailable: ID numbers are stored encrypted and the server has no key")
    return _run_import("guards", lambda s, data, name, dry: import_guards(s, cipher, data, name, dry_run=dry))


@bp.post("/imports/assignments")
@require_user
def import_assignments_view() -> tuple[dict[str, Any], int]:
    _may_import()
    return _run_import("assignments", lambda s, data, name, dry: import_assignments(s, data, name, dry_run=dry))


@bp.get("/companies")
@require_user
def companies() -> dict[str, Any]:
    query = select(Company).options(selectinload(Company.cross_region_filings)).order_by(Company.company_id)
    if not current_scope().everything:
        visible = select(Site.company_id).where(current_scope().site_clause())
        query = query.where(or_(Company.company_id.in_(visible), Company.company_id == current_scope().company_id))
    return {
        "companies": [
            {
                "company_id": c.company_id,
                "name": c.name,
                "credit_code": c.credit_code,
                "filing_status": c.filing_status,
                "home_province": c.home_province,
                "home_province_name": province_name(c.home_province),
                "cross_region_filings": [
                    {"province": f.province, "province_name": province_name(f.province), "filed_on": _day(f.filed_on)}
                    for f in c.cross_region_filings
                ],
            }
            for c in get_session().scalars(query)
        ]
    }


@bp.get("/sites")
@require_user
def sites() -> dict[str, Any]:
    session = get_session()
    posts: dict[str, list[dict[str, str]]] = {}
    visible = current_scope().site_ids_query()
    for post in session.scalars(select(Post).where(Post.site_id.in_(visible)).order_by(Post.site_id, Post.post_id)):
        posts.setdefault(post.site_id, []).append({"post_id": post.post_id, "name": post.name})
    return {
        "sites": [
            {
                "site_id": s.site_id,
                "name": s.name,
                "address": s.address,
                "company_id": s.company_id,
                "province": s.province,
                "province_name": province_name(s.province),
                "timezone": s.timezone,
                "posts": posts.get(s.site_id, []),
            }
            for s in session.scalars(select(Site).where(current_scope().site_clause()).order_by(Site.site_id))
        ]
    }


@bp.get("/guards")
@require_user
def guards() -> dict[str, Any]:
    """Guards by id, ``limit`` a page from ``after`` (the previous page's last id); filter by ``company``, ``site``."""
    limit = _limit()
    query = select(Guard).where(current_scope().guard_clause()).order_by(Guard.guard_id)
    if company := request.args.get("company"):
        query = query.where(Guard.company_id == company)
    if site := request.args.get("site"):
        now = utcnow()
        posted = select(Assignment.guard_id).where(
            Assignment.site_id == site, Assignment.start <= now, Assignment.end.is_(None) | (Assignment.end > now)
        )
        query = query.where(Guard.guard_id.in_(posted))
    if after := request.args.get("after"):
        query = query.where(Guard.guard_id > after)
    session = get_session()
    page = session.scalars(query.limit(limit + 1)).all()
    more, page = len(page) > limit, page[:limit]
    statuses = certificate_statuses(session, [guard.guard_id for guard in page])
    return {
        "guards": [
            {
                "guard_id": guard.guard_id,
                "name": guard.name,
                "id_number_masked": guard.id_number_masked,
                "company_id": guard.company_id,
                "face_consent": guard.face_consent_at is not None,
                "certificate_status": statuses[guard.guard_id],
            }
            for guard in page
        ],
        "next_after": page[-1].guard_id if more else None,
    }


@bp.get("/guards/<guard_id>")
@require_user
def guard(guard_id: str) -> dict[str, Any]:
    if get_session().get(Guard, guard_id) is not None:
        require_guard(guard_id)
    try:
        return guard_summary(get_session(), guard_id)
    except RegistryError:
        abort(404, f"no guard {guard_id}")


def _limit() -> int:
    raw = request.args.get("limit", "")
    if not raw:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        abort(400, f"limit must be a whole number from 1 to {MAX_LIMIT}, got {raw!r}")
    return int(raw)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None
