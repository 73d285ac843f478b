"""Terminal configuration: a strict pydantic model loaded from a TOML file in device_configs/."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge_agent.display import DisplayConfig
from edge_agent.evidence import EvidenceConfig
from edge_agent.gpio import GpioConfig
from edge_agent.liveness import LivenessConfig
from edge_agent.presentation import PresentationConfig
from edge_agent.quality import QualityConfig
from protocol.mqtt_tls import TlsFiles
from protocol.topics import TopicError, check_id

SECRET_ENV = "GUARDPOST_DEVICE_SECRET"
GALLERY_KEY_ENV = "GUARDPOST_GALLERY_KEY"
MQTT_PASSWORD_ENV = "GUARDPOST_MQTT_PASSWORD"


class ConfigError(ValueError):
    """A configuration problem, phrased as one line that says what to fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttConfig(_Section):
    # mqtts:// is MQTT over TLS; credentials never go into the URL (they come from password_file or the env).
    url: str = Field(default="mqtt://127.0.0.1:1883", pattern=r"^mqtts?://[^/:@]+(:\d{1,5})?/?$")
    keepalive_s: int = Field(default=30, ge=5, le=600)
    # An event not acked this long after publishing is published again (the server dedupes).
    resend_after_s: float = Field(default=30.0, ge=1.0, le=3600.0)
    # The broker's ACL lets a terminal publish only under its own id, so the username is the device id.
    username: str | None = Field(default=None, min_length=1, max_length=64, description="default: device_id")
    password_file: Path | None = Field(default=None, description=f"broker password file; or set {MQTT_PASSWORD_ENV}")
    ca_file: Path | None = Field(default=None, description="CA of the broker's certificate (mqtts://); else system CAs")
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    @model_validator(mode="after")
    def _tls_needs_mqtts(self) -> MqttConfig:
        tls_files = [f for f in ("ca_file", "client_cert_file", "client_key_file") if getattr(self, f) is not None]
        if tls_files and not self.url.startswith("mqtts://"):
            raise ValueError(f"{tls_files[0]} is for TLS: use an mqtts:// url")
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("client_cert_file and client_key_file go together")
        return self

    def tls_files(self) -> TlsFiles | None:
        if not self.url.startswith("mqtts://"):
            return None
        return TlsFiles(self.ca_file, self.client_cert_file, self.client_key_file)


class ServerLink(_Section):
    url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://")
    gallery_refresh_s: float = Field(default=60.0, ge=1.0, le=86400.0)
    timeout_s: float = Field(default=10.0, ge=0.5, le=120.0)


class SourceConfig(_Section):
    spec: str = Field(default="camera:0", min_length=1, description="camera:N, rtsp://..., a video file or a folder")
    loop: bool = False
    max_fps: float = Field(default=5.0, gt=0.0, le=60.0)


class RecognitionConfig(_Section):
    # From benchmarks.verification's sweep (one enrolment photo: TAR 100 % from 0.54, no false accept up
    # to 0.60) and the shared set's 0.56 -> FAR 0.05 %; the margin and multi-frame consensus add safety.
    threshold: float = Field(default=0.54, gt=0.0, le=1.0)
    min_margin: float = Field(default=0.08, ge=0.0, le=1.0)
    borderline_threshold: float = Field(default=0.6, gt=0.0, le=1.0)
    detect_width: int = Field(default=400, ge=80, le=1920)  # see biometrics.faces.DEFAULT_DETECT_WIDTH
    # The same guard is not recorded twice within this window (they stand in front of the camera).
    cooldown_s: float = Field(default=30.0, ge=0.0, le=3600.0)

    @model_validator(mode="after")
    def _ordered(self) -> RecognitionConfig:
        if self.borderline_threshold < self.threshold:
            raise ValueError("borderline_threshold must be at least threshold")
        return self


class CardsConfig(_Section):
    reader: str = Field(default="none", description="none, fake, serial:PORT[@BAUD], wedge:DEVICE or lines:PATH")
    qr: bool = Field(default=False, description="read the QR code on guard certificates from the camera")
    window_s: float = Field(default=6.0, ge=1.0, le=60.0, description="face+card: time to show the face")


class OutboxConfig(_Section):
    max_events: int = Field(default=1_000_000, ge=10, le=100_000_000)
    min_free_mb: float = Field(default=100.0, ge=1.0, le=100_000.0)


class GalleryConfig(_Section):
    key_file: Path | None = Field(default=None, description=f"Fernet key file; or set {GALLERY_KEY_ENV}")


class ClockConfig(_Section):
    sync_check: Literal["kernel", "assume_synced", "assume_unsynced"] = "kernel"


class AgentConfig(_Section):
    device_id: Annotated[str, Field(min_length=1, max_length=64)]
    site_id: Annotated[str, Field(min_length=1, max_length=64)]
    secret_file: Path | None = Field(default=None, description=f"file holding the terminal secret; or set {SECRET_ENV}")
    state_dir: Path = Path("/var/lib/guardpost")
    event_type: Literal["check_in", "check_out", "patrol"] = "check_in"
    # Face must never be the only way in (face recognition rules): face_or_card is the default.
    mode: Literal["face", "card", "face_or_card", "face+card"] = "face_or_card"
    heartbeat_s: float = Field(default=30.0, ge=1.0, le=3600.0)
    mqtt: MqttConfig = MqttConfig()
    server: ServerLink = ServerLink()
    source: SourceConfig = SourceConfig()
    recognition: RecognitionConfig = RecognitionConfig()
    presentation: PresentationConfig = PresentationConfig()
    quality: QualityConfig = QualityConfig()
    liveness: LivenessConfig = LivenessConfig()
    cards: CardsConfig = CardsConfig()
    gallery: GalleryConfig = GalleryConfig()
    outbox: OutboxConfig = OutboxConfig()
    evidence: EvidenceConfig = EvidenceConfig()
    display: DisplayConfig = DisplayConfig()
    gpio: GpioConfig = GpioConfig()
    clock: ClockConfig = ClockConfig()

    @model_validator(mode="after")
    def _cards_for_card_modes(self) -> AgentConfig:
        if self.mode in ("card", "face+card") and self.cards.reader == "none" and not self.cards.qr:
            raise ValueError(f"mode {self.mode!r} needs a card reader: set cards.reader or cards.qr = true")
        return self

    @field_validator("device_id", "site_id")
    @classmethod
    def _topic_safe(cls, value: str, info) -> str:
        try:
            return check_id(value, info.field_name)
        except TopicError as exc:
            raise ValueError(str(exc)) from None

    def secret(self) -> str:
        return _read_secret(self.secret_file, SECRET_ENV, "terminal secret", "'guardpost devices add SITE DEVICE'")

    def gallery_key(self) -> bytes:
        return _read_secret(self.gallery.key_file, GALLERY_KEY_ENV, "gallery key", "'guardpost keygen FILE'").encode()

    def mqtt_password(self) -> str | None:
        """The broker password, or None for a broker without passwords (set neither the file nor the env)."""
        if self.mqtt.password_file is None and not os.environ.get(MQTT_PASSWORD_ENV, "").strip():
            return None
        how = "'guardpost devices provision DEVICE --site SITE --out DIR'"
        return _read_secret(self.mqtt.password_file, MQTT_PASSWORD_ENV, "MQTT password", how)


def _read_secret(path: Path | None, env: str, what: str, how: str) -> str:
    value = os.environ.get(env, "").strip()
    if not value and path is not None:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"no {what}: set {env} or point the config at a file (create it with {how})")
    return value


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate a TOML config; relative paths in it are taken from the file's folder."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        raise ConfigError(f"config {path}: {where}: {err['msg']}") from None
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: AgentConfig, base: Path) -> AgentConfig:
    def resolve(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (base / p).resolve()

    spec = config.source.spec
    if not spec.startswith("camera:") and "://" not in spec:
        folder = spec.removeprefix("folder:")
        spec = str(resolve(Path(folder)))
    reader = config.cards.reader
    if reader.startswith("lines:"):
        reader = f"lines:{resolve(Path(reader.removeprefix('lines:')))}"
    return config.model_copy(
        update={
            "cards": config.cards.model_copy(update={"reader": reader}),
            "source": config.source.model_copy(update={"spec": spec}),
            "secret_file": resolve(config.secret_file),
            "state_dir": resolve(config.state_dir),
            "gallery": config.gallery.model_copy(update={"key_file": resolve(config.gallery.key_file)}),
            "mqtt": config.mqtt.model_copy(
                update={
                    name: resolve(getattr(config.mqtt, name))
                    for name in ("password_file", "ca_file", "client_cert_file", "client_key_file")
                }
            ),
            "liveness": config.liveness.model_copy(
                update={"antispoof_model": resolve(config.liveness.antispoof_model)}
            ),
        }
    )
