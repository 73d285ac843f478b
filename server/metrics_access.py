"""Who may read /metrics: a configured scrape token (env or file, no default) or an admin's API token."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from server.config import ConfigError

TOKEN_ENV = "GUARDPOST_METRICS_TOKEN"
TOKEN_FILE_ENV = "GUARDPOST_METRICS_TOKEN_FILE"
MIN_TOKEN_CHARS = 24


class MetricsAccess(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # None: only admins' API tokens may scrape.
    scrape_token: SecretStr | None = Field(default=None, min_length=MIN_TOKEN_CHARS, max_length=512)

    def scrape_token_matches(self, presented: str) -> bool:
        if self.scrape_token is None or not presented:
            return False
        return hmac.compare_digest(self.scrape_token.get_secret_value().encode(), presented.encode("utf-8", "replace"))


def load_access(env: Mapping[str, str] | None = None) -> MetricsAccess:
    """Read the scrape token from GUARDPOST_METRICS_TOKEN or the file GUARDPOST_METRICS_TOKEN_FILE names."""
    env = os.environ if env is None else env
    token, path = env.get(TOKEN_ENV, ""), env.get(TOKEN_FILE_ENV, "")
    if token and path:
        raise ConfigError(f"set {TOKEN_ENV} or {TOKEN_FILE_ENV}, not both")
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the metrics token file {path} ({TOKEN_FILE_ENV}): {exc}") from None
        if not token:
            raise ConfigError(f"the metrics token file {path} is empty; put a token of {MIN_TOKEN_CHARS}+ characters")
    if not token:
        return MetricsAccess()
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ConfigError(
            f"the metrics scrape token must be at least {MIN_TOKEN_CHARS} characters without spaces "
            "(make one with 'openssl rand -hex 32')"
        )
    return MetricsAccess(scrape_token=SecretStr(token))
