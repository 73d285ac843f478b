"""Reporting config: a strict pydantic model read from TOML (GUARDPOST_REPORTING_CONFIG or --config), and its secret."""

from __future__ import annotations

import os
import tomllib
import unicodedata
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from server.config import ConfigError
from server.provinces import normalise_province
from server.reporting.fields import FIELDS

CONFIG_ENV = "GUARDPOST_REPORTING_CONFIG"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Text = Annotated[str, StringConstraints(max_length=200)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryConfig(_Section):
    """Exponential backoff with jitter: attempt n waits min(max_delay, base * factor^(n-1)), less up to jitter."""

    max_attempts: int = Field(default=8, ge=1, le=100)
    base_delay_s: float = Field(default=30.0, ge=0.05, le=3600.0)
    factor: float = Field(default=2.0, ge=1.0, le=10.0)
    max_delay_s: float = Field(default=3600.0, ge=0.05, le=86400.0)
    jitter: float = Field(default=0.2, ge=0.0, le=1.0, description="fraction of each delay taken off at random")

    @model_validator(mode="after")
    def _ordered(self) -> RetryConfig:
        if self.max_delay_s < self.base_delay_s:
            raise ValueError("max_delay_s must be at least base_delay_s")
        return self


class TimeoutConfig(_Section):
    connect_s: float = Field(default=5.0, ge=0.1, le=60.0)
    read_s: float = Field(default=30.0, ge=0.1, le=600.0)


class ItemSpec(_Section):
    """One province data item: from one of our fields (or a constant), with small transforms."""

    field: str | None = Field(default=None, max_length=64)
    constant: Text | None = None
    format: str | None = Field(default=None, min_length=1, max_length=64, description="strftime, dates and times")
    timezone: str | None = Field(default=None, max_length=64, description="IANA zone for times; default: config's")
    number: Literal["masked", "full"] | None = Field(default=None, description="ID/certificate numbers only")
    map: dict[str, Text] | None = Field(default=None, max_length=500, description="value map (enums, booleans)")
    default: Text | None = Field(default=None, description="for values missing from the map")

    @model_validator(mode="after")
    def _one_source(self) -> ItemSpec:
        if (self.field is None) == (self.constant is None):
            raise ValueError("give exactly one of field or constant")
        if self.constant is not None and any(v is not None for v in (self.format, self.number, self.map)):
            raise ValueError("a constant takes no format, number or map")
        if self.default is not None and self.map is None:
            raise ValueError("default only applies together with map")
        if self.timezone is not None:
            _check_zone(self.timezone)
        return self


class KindMapping(_Section):
    """Our fields -> the province's items for one record kind; ``dataset`` is the province's name for the kind."""

    dataset: Name | None = None
    items: dict[str, str | ItemSpec] = Field(min_length=1, max_length=300)

    @field_validator("items")
    @classmethod
    def _item_names(cls, items: dict[str, str | ItemSpec]) -> dict[str, str | ItemSpec]:
        for name in items:
            clean = unicodedata.normalize("NFC", name)
            if not 1 <= len(clean) <= 64 or any(unicodedata.category(ch).startswith("C") for ch in clean):
                raise ValueError(f"item name {name!r} must be 1-64 printable characters")
        return items

    def specs(self) -> dict[str, ItemSpec]:
        return {item: ItemSpec(field=spec) if isinstance(spec, str) else spec for item, spec in self.items.items()}


class ReportingConfig(_Section):
    endpoint: str = Field(max_length=500, description="the province's upload URL (https; http only for localhost)")
    province: Name = Field(description="the province's code (44 or 440000) or name; records in it are reported")
    sender_id: Name
    senders: dict[str, Name] = Field(default_factory=dict, max_length=10_000, description="company_id -> sender id")
    batch_size: int = Field(default=200, ge=1, le=5000)
    interval_s: float = Field(default=60.0, ge=1.0, le=86400.0, description="how often changed records are batched")
    timezone: str = Field(default="UTC", max_length=64, description="IANA zone of dates and times sent")
    duty_lookback_days: int = Field(default=35, ge=1, le=400, description="duty days re-checked for corrections")
    report_in_progress: bool = Field(default=False, description="also report duty records of shifts still running")
    finding_kinds: list[Name] | None = Field(default=None, max_length=100, description="only these; default all")
    secret_env: Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]{0,63}$")] | None = None
    secret_file: Path | None = None
    ca_file: Path | None = Field(default=None, description="CA bundle for a province's private certificate authority")
    insecure_http: bool = Field(default=False, description="allow http:// to a host other than localhost")
    timeouts: TimeoutConfig = TimeoutConfig()
    retry: RetryConfig = RetryConfig()
    mapping: dict[Literal["guards", "assignments", "duty_logs", "findings"], KindMapping] = Field(min_length=1)

    @field_validator("province")
    @classmethod
    def _province(cls, value: str) -> str:
        return normalise_province(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value)

    @model_validator(mode="after")
    def _consistent(self) -> ReportingConfig:
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL with a host, got {self.endpoint!r}")
        if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS and not self.insecure_http:
            raise ValueError("endpoint must use https (records carry personal data); set insecure_http for a lab")
        if (self.secret_env is None) == (self.secret_file is None):
            raise ValueError("give exactly one of secret_env or secret_file for the signing secret")
        for kind, kind_mapping in self.mapping.items():
            for item, spec in kind_mapping.specs().items():
                _check_spec(kind, item, spec)
        return self

    def dataset(self, kind: str) -> str:
        return self.mapping[kind].dataset or kind

    def sender_for(self, company_id: str | None) -> str:
        return self.senders.get(company_id or "", self.sender_id)

    def needs_full_numbers(self) -> bool:
        return any(spec.number == "full" for m in self.mapping.values() for spec in m.specs().values())


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
    return name


def _check_spec(kind: str, item: str, spec: ItemSpec) -> None:
    if spec.field is None:
        return
    where = f"mapping.{kind}.items.{item}"
    kind_fields = FIELDS[kind]
    if spec.field not in kind_fields:
        raise ValueError(f"{where}: {kind} has no field {spec.field!r}; known: {', '.join(kind_fields)}")
    field_type = kind_fields[spec.field]
    if spec.format is not None and field_type not in ("date", "datetime"):
        raise ValueError(f"{where}: format applies to dates and times, and {spec.field} is {field_type}")
    if spec.timezone is not None and field_type != "datetime":
        raise ValueError(f"{where}: timezone applies to times, and {spec.field} is {field_type}")
    if spec.number is not None and field_type != "number":
        raise ValueError(f"{where}: number (masked/full) applies to id_number and certificate_number only")
    if spec.map is not None and field_type not in ("text", "bool", "int"):
        raise ValueError(f"{where}: map applies to text, whole-number and true/false fields")


def load_config(path: str | Path) -> ReportingConfig:
    """Read and validate the TOML file; relative paths in it are taken from the file's folder."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read reporting config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"reporting config {path} is not valid TOML: {exc}") from None
    try:
        config = ReportingConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after")) or "config"
        raise ConfigError(f"reporting config {path}: {where}: {err['msg']}") from None

    def resolve(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (path.parent / p).resolve()

    return config.model_copy(update={"secret_file": resolve(config.secret_file), "ca_file": resolve(config.ca_file)})


def config_path(given: str | None) -> Path | None:
    """--config, else GUARDPOST_REPORTING_CONFIG, else None (reporting off)."""
    raw = given or os.environ.get(CONFIG_ENV, "")
    return Path(raw) if raw else None


class Secret:
    """The signing secret; its repr never shows it, so a stray log line cannot leak it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


MIN_SECRET_LENGTH = 16


def load_secret(config: ReportingConfig) -> Secret:
    """From the environment variable or file the config names; never a default."""
    if config.secret_env is not None:
        value = os.environ.get(config.secret_env, "").strip()
        if not value:
            raise ConfigError(f"the reporting signing secret is missing: set {config.secret_env}")
        where = config.secret_env
    else:
        assert config.secret_file is not None
        try:
            value = config.secret_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ConfigError(f"cannot read the reporting secret file {config.secret_file}: {why}") from None
        where = str(config.secret_file)
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(f"the reporting signing secret in {where} is shorter than {MIN_SECRET_LENGTH} characters")
    return Secret(value)
