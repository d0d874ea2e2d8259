"""Process settings: environment variables (``XIAOWU_*``, ``DATABASE_URL``, ``REDIS_URL``)
and command-line overrides, validated once at start.

Secrets that a single-node default needs (the entry-token key) are generated on first
start and kept under the data directory, so a demo runs with no configuration while a
production deployment sets them explicitly.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = REPO_ROOT / "kiosk_config"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XIAOWU_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    data_dir: Path = Path("var")
    config_dir: Path = DEFAULT_CONFIG_DIR
    demo: bool = False
    database_url: str | None = Field(
        None, validation_alias=AliasChoices("DATABASE_URL", "XIAOWU_DATABASE_URL")
    )
    database_schema: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """PostgreSQL only: the schema holding Xiaowu's tables (default: the search path)."""
    redis_url: str | None = Field(
        None, validation_alias=AliasChoices("REDIS_URL", "XIAOWU_REDIS_URL")
    )
    redis_prefix: str = Field("xiaowu:", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    """Every key (and the socket.io channel) of one deployment; nodes sharing a queue share
    it, so one Redis can serve a staging and a production deployment apart."""
    public_url: str | None = None
    node_id: str = Field(default_factory=lambda: f"node-{secrets.token_hex(4)}",
                         pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """This process among several (Redis): sessions are pinned to the node holding their
    media by this id. Set it for stable logs; the default is random per start, which is
    also right, since a restarted node holds none of the media it held before."""
    node_heartbeat_s: float = Field(1.0, gt=0)
    node_ttl_s: float = Field(5.0, gt=0)
    """A node whose heartbeat is older than this is dead: its sessions end (node_lost)."""
    allowed_origins: list[str] = Field(default_factory=list)
    secure_cookies: bool = False
    auto_migrate: bool = True

    citizen_token_secret: str | None = Field(None, min_length=32)
    citizen_token_audience: str = "xiaowu-citizen"  # noqa: S105
    citizen_token_max_age_s: int = Field(24 * 3600, gt=0)

    session_ttl_s: int = Field(12 * 3600, gt=0)
    lockout_threshold: int = Field(5, ge=1)
    lockout_s: int = Field(15 * 60, gt=0)
    provision_code_ttl_s: int = Field(24 * 3600, gt=0)
    otp_ttl_s: int = Field(5 * 60, gt=0)
    otp_max_attempts: int = Field(5, ge=1)
    blob_sweep_grace_s: int = Field(3600, ge=0)

    offer_timeout_s: float = Field(20.0, gt=0)
    wrap_up_s: float = Field(30.0, ge=0)
    grace_s: float = Field(30.0, ge=0)
    miss_limit: int = Field(2, ge=1)

    document_workers: int = Field(2, ge=1, le=32)
    upload_max_bytes: int = Field(15 * 1024 * 1024, gt=0)
    upload_max_pixels: int = Field(40_000_000, gt=0)
    capture_timeout_s: float = Field(60.0, gt=0)
    capture_warm_start: bool = True
    """Start the document workers with the server, not at the first capture (which would
    wait for the forkserver to import OpenCV: seconds on a busy machine)."""
    case_number_prefix: str = Field("DY", pattern=r"^[A-Z]{1,8}$")
    case_citizen_window_s: int = Field(1800, ge=0)

    media_mode: Literal["server", "p2p"] = "server"
    stun_urls: list[str] = Field(default_factory=list)
    turn_urls: list[str] = Field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_s: int = Field(6 * 3600, gt=0)
    media_max_sessions: int = Field(20, ge=1)
    """Per media process: the server's own with one worker, each worker's otherwise."""
    media_workers: Annotated[int, Field(ge=0)] | Literal["auto"] = 1
    """Processes carrying sessions' media (media/workers.py): ``auto`` is one per core this
    process may run on; 0 or 1 keeps the media in the server's own process and loop."""
    recording_dir: Path | None = None
    recording_segment_s: float = Field(10.0, ge=4.0)

    log_json: bool = False

    @field_validator("redis_url")
    @classmethod
    def _no_empty_redis(cls, value: str | None) -> str | None:
        """``REDIS_URL=`` (set but empty) means one node, as when it is unset."""
        return value or None

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        """Accept the URLs people paste (``postgres://``) and select the async drivers."""
        if value is None or value == "":
            return None
        for plain, driver in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if value.startswith(plain):
                return driver + value[len(plain):]
        return value

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def origins(self) -> list[str]:
        """The explicit Origin allow-list; never empty (engine.io reads [] as "allow all")."""
        if self.allowed_origins:
            return list(self.allowed_origins)
        found = [self.base_url, f"http://localhost:{self.port}", f"http://127.0.0.1:{self.port}"]
        return list(dict.fromkeys(found))

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def recordings_dir(self) -> Path:
        """Where session recordings go (remuxed segment files, one directory per session)."""
        return self.recording_dir or self.data_dir / "recordings"

    @property
    def media_worker_count(self) -> int:
        if self.media_workers == "auto":
            return len(os.sched_getaffinity(0))
        return self.media_workers

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'xiaowu.sqlite3').resolve()}"

    def token_secret(self) -> str:
        """The HMAC key for citizen entry tokens: configured, or generated once per data dir."""
        if self.citizen_token_secret:
            return self.citizen_token_secret
        path = self.data_dir / "citizen-token.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key + "\n")
        return key
