"""Export settings: where files go, how long they are kept, how many run at once (strict, from the environment)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.config import ConfigError

ENV = {
    "data_dir": "GUARDPOST_DATA_DIR",
    "keep_days": "GUARDPOST_EXPORT_KEEP_DAYS",
    "threads": "GUARDPOST_EXPORT_THREADS",
    "max_open_per_user": "GUARDPOST_EXPORT_MAX_OPEN",
}


class ExportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Path("var/data")
    # Export files hold personal data (names, masked IDs, hours): kept only this long after they are made.
    keep_days: int = Field(default=7, ge=1, le=365)
    threads: int = Field(default=2, ge=1, le=8)
    # Unfinished (queued or running) exports one user may have: a bound on what one login can make us do.
    max_open_per_user: int = Field(default=5, ge=1, le=100)
    poll_s: float = Field(default=2.0, gt=0.0, le=60.0)
    # A running job whose worker has not reported for this long is taken to have died with its server.
    stale_after_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    max_attempts: int = Field(default=3, ge=1, le=10)

    @property
    def export_dir(self) -> Path:
        return self.data_dir / "exports"

    @classmethod
    def from_env(cls, **overrides: object) -> ExportSettings:
        values: dict[str, object] = {key: os.environ[name] for key, name in ENV.items() if os.environ.get(name)}
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = str(first["loc"][0]) if first["loc"] else ""
            where = ENV.get(key, key)
            raise ConfigError(f"{where}: {first['msg']} (got {first.get('input')!r})") from None
