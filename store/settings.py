"""The one settings object, read from the environment and `.env`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


def _pairs(value: object, *, at_last: bool) -> object:
    """`a=1,b=2` from the environment as a dict (a JSON object also works); other values as given."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("{"):
        return json.loads(text)
    pairs = [part.rpartition("=") if at_last else part.partition("=") for part in text.split(",")]
    return {key.strip(): item.strip() for key, _, item in pairs if key.strip() or item.strip()}


class Settings(BaseSettings):
    """Every knob Rapport has; each field is documented in README.md (a test checks it).

    Built once in the composition root (`bot.app` or the CLI) and passed down; nothing
    else reads `os.environ`.
    """

    model_config = SettingsConfigDict(
        env_prefix="RAPPORT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- Telegram -------------------------------------------------------------------
    telegram_bot_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TELEGRAM_BOT_TOKEN", "RAPPORT_TELEGRAM_BOT_TOKEN"),
        description="Bot token from @BotFather. Required by `rapport run`.",
    )
    telegram_api_base_url: str = Field(
        default="https://api.telegram.org/bot",
        validation_alias=AliasChoices("TELEGRAM_API_BASE_URL", "RAPPORT_TELEGRAM_API_BASE_URL"),
        description="Bot API base URL as python-telegram-bot's `base_url` takes it (token appended).",
    )
    telegram_api_file_url: str = Field(
        default="https://api.telegram.org/file/bot",
        validation_alias=AliasChoices("TELEGRAM_API_FILE_URL", "RAPPORT_TELEGRAM_API_FILE_URL"),
        description="Bot API file URL as python-telegram-bot's `base_file_url` takes it.",
    )
    admin_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Telegram user ids of community managers (comma-separated).",
    )
    webhook_secret: str | None = Field(
        default=None,
        description="Secret for X-Telegram-Bot-Api-Secret-Token when serving webhooks; "
        "derived from the bot token when unset (the same in every replica).",
    )
    webhook_dedup: bool = Field(
        default=True,
        description="With `rapport run --webhook`: claim each update_id in the database before handling it, "
        "so a delivery Telegram retries (to this or another replica) is logged and answered once "
        "(off: every delivery is handled). Long polling never claims.",
    )
    webhook_claim_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A claimed update not finished within this many seconds is taken over by the replica "
        "Telegram retries it to (its claimer is taken to be dead); until then retries get HTTP 503.",
    )
    webhook_reply: bool = Field(
        default=True,
        description="With claimed webhook updates (`RAPPORT_WEBHOOK_DEDUP`): answer each update with its "
        "last call whose result the bot does not use (a sendMessage answer, answerCallbackQuery, ...) in the "
        "webhook response, which Telegram executes only when it gets that 2xx, stored with the claim "
        "for a retry; so a replica killed mid-update never has its answer sent twice (off: every call "
        "goes over HTTP).",
    )
    flood_max_messages: int = Field(
        default=20,
        description="Messages a user may send within `flood_window_s` before throttling.",
    )
    flood_window_s: float = Field(default=10.0, description="Window of the per-user flood limit.")

    # --- Store ----------------------------------------------------------------------
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="Directory for the SQLite database, models and other artefacts.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to sqlite:///<data_dir>/rapport.db. "
        "PostgreSQL: postgresql+psycopg://user@host/db.",
    )
    store_text: bool = Field(
        default=False,
        description="Store message text in the event log (off: only intents and metadata).",
    )
    log_level: str = Field(default="INFO", description="Logging level of the CLI and the bot.")

    # --- NLU ------------------------------------------------------------------------
    nlu_url: str | None = Field(
        default=None,
        description="Remote Rasa server base URL; when set the bot calls its /model/parse "
        "and falls back to the local engine on errors.",
    )
    nlu_timeout_s: float = Field(default=2.0, description="Timeout for the remote Rasa server.")
    nlu_auth_token: str | None = Field(
        default=None,
        description="Token of the Rasa server (its --auth-token): the bot's remote client sends it as "
        "?token=, and `rapport nlu serve` then requires it of every client.",
    )
    nlu_model_dir: Path | None = Field(
        default=None,
        description="Directory of the local NLU model; defaults to <data_dir>/models/nlu. "
        "Trained from the default data when missing.",
    )
    nlu_data: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Rasa NLU training files or folders (comma-separated); default: bundled data.",
    )
    knowledge_base: Path | None = Field(
        default=None,
        description="Knowledge base YAML (intent -> answers); default: the bundled one.",
    )

    # --- Follow-ups and scheduling ---------------------------------------------------
    followup_catalogue: Path | None = Field(
        default=None, description="Follow-up catalogue YAML; default: the bundled one."
    )
    followup_model_dir: Path | None = Field(
        default=None,
        description="Where follow-up models are saved; defaults to <data_dir>/models/followup.",
    )
    followup_exploration: float = Field(
        default=0.1, description="Share of follow-up choices made by exploration (Thompson)."
    )
    holdout_share: float = Field(
        default=0.1,
        description="Stable share of users (by hash of id) never sent automated pushes.",
    )
    reengage_inactive_days: int = Field(
        default=7, description="Days without activity after which a user is due re-engagement."
    )
    reengage_time: str = Field(
        default="10:00", description="Local time (HH:MM, scheduler_timezone) of the daily job."
    )
    reengage_segment_days: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict,
        description="Per-segment inactivity thresholds overriding `reengage_inactive_days`, "
        "as `segment=days` pairs, comma-separated (e.g. `power users=3,newcomers=14`).",
    )
    push_cap_days: int = Field(
        default=7, description="At most one automated push per user within this many days."
    )
    best_time_sends: bool = Field(
        default=True,
        description="Whether the re-engagement job sends each push at the user's best hour within "
        "24 h (estimated from their activity by hour of the week) instead of at once.",
    )
    quiet_hours_start: int = Field(
        default=22, description="Hour (user's local time) from which no pushes are sent."
    )
    quiet_hours_end: int = Field(
        default=8, description="Hour (user's local time) until which no pushes are sent."
    )
    default_timezone: str = Field(
        default="UTC", description="Time zone assumed for users whose zone is unknown."
    )
    scheduler_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="How long the scheduler lease lasts unrenewed (renewed every third of it): a standby "
        "`rapport run` takes over the scheduler at most this plus a third of it after its holder dies.",
    )
    scheduler_timezone: str = Field(
        default="UTC", description="Time zone of the daily schedules (re-engagement, retraining)."
    )
    retrain_time: str = Field(
        default="03:00", description="Local time (HH:MM, scheduler_timezone) of nightly retraining."
    )
    send_rate_per_s: float = Field(
        default=30.0,
        description="Overall messages/s (Telegram allows ~30; raise with paid broadcasts).",
    )
    per_chat_rate_per_s: float = Field(default=1.0, description="Messages/s to one private chat.")
    group_rate_per_min: float = Field(default=20.0, description="Messages/min to one group.")
    send_lanes: int = Field(
        default=16,
        description="Messages the delivery engine keeps in flight at once; a crash leaves at most "
        "this many deliveries ambiguous. Reaching send_rate_per_s takes about rate x round trip "
        "(30/s at 300 ms: 9); 16 carries 30/s up to ~0.5 s round trips.",
    )
    send_max_retries: int = Field(default=5, description="Retries of a send after 5xx or network errors.")

    # --- Analytics engine -------------------------------------------------------------
    analytics_engine: Literal["local", "spark"] = Field(
        default="local",
        description="Where `rapport analytics run` runs: `local` (scikit-learn, mlxtend) or `spark` "
        "(Spark SQL, MLlib KMeans and FPGrowth; needs the `spark` extra and Java 17+).",
    )
    spark_master: str = Field(
        default="local[2]", description="Spark master URL: `local[N]` or `spark://host:7077`."
    )
    spark_conf: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Extra Spark configuration as `key=value` pairs, comma-separated "
        "(e.g. `spark.executor.memory=4g`).",
    )

    # --- Dashboard ------------------------------------------------------------------
    dashboard_host: str = Field(
        default="127.0.0.1", description="Interface `rapport dashboard` binds (localhost only by default)."
    )
    dashboard_port: int = Field(default=8780, description="Port `rapport dashboard` listens on.")
    dashboard_url: str | None = Field(
        default=None,
        description="Public base URL of the dashboard, used in login links; default "
        "http://<dashboard_host>:<dashboard_port>. With https, /dashboard also offers a Mini App button.",
    )
    dashboard_secret: str | None = Field(
        default=None,
        description="Key signing login links and session cookies; default: derived from the bot token, "
        "else generated once and kept in <data_dir>/dashboard_secret. Set it when the bot and the "
        "dashboard run on different hosts without the same token.",
    )
    dashboard_in_run: bool = Field(
        default=False,
        description="Whether `rapport run` also serves the dashboard, in the same process, on "
        "dashboard_host/dashboard_port (off: run `rapport dashboard` beside it).",
    )
    dashboard_session_hours: float = Field(
        default=12.0, description="How long a dashboard session lasts after login."
    )

    # --- Product data ---------------------------------------------------------------
    link_secret: str | None = Field(
        default=None,
        description="HMAC key that signs `/start` deep-link payloads for product accounts; "
        "linking is off when unset.",
    )
    bot_username: str | None = Field(
        default=None,
        description="The bot's Telegram username, for `rapport accounts link-url` links.",
    )
    link_ttl_days: int = Field(default=7, description="Days a deep link stays valid.")
    write_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Write keys of the Segment-spec HTTP API (comma-separated); none: the API "
        "refuses every call.",
    )
    ingest_rate_per_s: float = Field(
        default=100.0,
        description="Calls per second one write key may make to the HTTP API (bursts up to one "
        "second's worth); more get HTTP 429.",
    )

    @field_validator("admin_ids", "nlu_data", "write_keys", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        """Accept `1,2,3` from the environment as well as JSON lists."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("reengage_segment_days", mode="before")
    @classmethod
    def _segment_days(cls, value: object) -> object:
        """Accept `segment=days,...` (a segment name may hold `=`: split at the last) or JSON."""
        return _pairs(value, at_last=True)

    @field_validator("spark_conf", mode="before")
    @classmethod
    def _spark_conf(cls, value: object) -> object:
        """Accept `key=value,...` (a value may hold `=`: split at the first) or a JSON object."""
        return _pairs(value, at_last=False)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file under `data_dir`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'rapport.db'}"

    @property
    def resolved_dashboard_url(self) -> str:
        """The dashboard's public base URL, without a trailing slash."""
        return (self.dashboard_url or f"http://{self.dashboard_host}:{self.dashboard_port}").rstrip("/")

    @property
    def resolved_nlu_model_dir(self) -> Path:
        """Directory of the local NLU model."""
        return self.nlu_model_dir or self.data_dir / "models" / "nlu"

    @property
    def nlu_additions_dir(self) -> Path:
        """Training examples and topics managers added in the dashboard (never the package's data)."""
        return self.data_dir / "nlu"

    @property
    def resolved_followup_model_dir(self) -> Path:
        """Directory of saved follow-up models."""
        return self.followup_model_dir or self.data_dir / "models" / "followup"


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, `.env` and explicit overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
