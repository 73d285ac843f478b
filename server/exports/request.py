"""What an export asks for (month, format, one optional company/site/guard), checked strictly on the way in."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from server.exports.rows import month_days

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s/\\]+$")]


class ExportRequestError(ValueError):
    """A request that cannot be exported; the message is one line saying what to fix."""


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    month: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")
    format: Literal["xlsx", "csv"]
    company: Id | None = None
    site: Id | None = None
    guard: Id | None = None
    locale: Literal["zh", "en"] = "zh"

    @model_validator(mode="after")
    def _check(self) -> ExportRequest:
        month_days(self.month)  # a real month
        if not 2000 <= int(self.month[:4]) <= 2100:
            raise ValueError(f"month {self.month} is not between 2000-01 and 2100-12")
        chosen = [name for name in ("company", "site", "guard") if getattr(self, name)]
        if len(chosen) > 1:
            raise ValueError(f"give at most one of company, site and guard, not {' and '.join(chosen)}")
        return self

    @property
    def subject(self) -> str:
        """What the export covers, for file names and lists: ``site-north``, ``all``."""
        for name in ("company", "site", "guard"):
            if getattr(self, name):
                return f"{name}-{getattr(self, name)}"
        return "all"

    def file_name(self) -> str:
        return f"attendance-{self.month}-{self.subject}.{self.format}"


def parse_request(data: object) -> ExportRequest:
    """An ExportRequest from JSON-like data, or ExportRequestError with one readable line."""
    if not isinstance(data, dict):
        raise ExportRequestError("send a JSON object with month (YYYY-MM) and format (xlsx or csv)")
    try:
        return ExportRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "request"
        message = first["msg"].removeprefix("Value error, ")
        raise ExportRequestError(f"{where}: {message}" if first["loc"] else message) from None
