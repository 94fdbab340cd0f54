"""What the dashboard needs to run, built once from the settings by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from scheduler.best_time import SendTimeConfig
from store import Settings
from store.logins import TERMINAL_OPERATOR, dashboard_secret


@dataclass(frozen=True)
class DashboardConfig:
    """The database, the keys and the knobs of one dashboard instance."""

    engine: Engine
    secret: bytes
    admin_ids: frozenset[int]
    base_url: str
    bot_token: str | None = None
    send_rate_per_s: float = 30.0
    timezone: str = "UTC"
    session_ttl: timedelta = timedelta(hours=12)
    cache_ttl_s: float = 300.0
    # Best-time sends from the composer: the quiet hours and window `rapport broadcast --best-time` uses.
    send_time: SendTimeConfig = field(default_factory=SendTimeConfig)
    # The NLU the Questions page trains: model directory, base data (empty: the bundled data) and
    # the folder of the managers' additions. No model directory: the page groups, but cannot train.
    nlu_model_dir: Path | None = None
    nlu_data: tuple[Path, ...] = ()
    nlu_additions_dir: Path | None = None

    @property
    def secure_cookies(self) -> bool:
        """Cookies are `Secure` when the dashboard is served over https."""
        return self.base_url.startswith("https://")

    @property
    def zone(self) -> ZoneInfo:
        """The community's time zone (the scheduler's)."""
        return ZoneInfo(self.timezone)

    def is_manager(self, user_id: int) -> bool:
        """Managers are RAPPORT_ADMIN_IDS, plus the terminal operator of `rapport dashboard`."""
        return user_id == TERMINAL_OPERATOR or user_id in self.admin_ids


def config_from_settings(settings: Settings, engine: Engine) -> DashboardConfig:
    """The dashboard's configuration for these settings and this engine."""
    return DashboardConfig(
        engine=engine,
        secret=dashboard_secret(settings),
        admin_ids=frozenset(settings.admin_ids),
        base_url=settings.resolved_dashboard_url,
        bot_token=settings.telegram_bot_token,
        # The same 1% margin under Telegram's limit as the CLI's estimates.
        send_rate_per_s=settings.send_rate_per_s * 0.99,
        timezone=settings.scheduler_timezone,
        session_ttl=timedelta(hours=settings.dashboard_session_hours),
        send_time=SendTimeConfig.from_settings(settings),
        nlu_model_dir=settings.resolved_nlu_model_dir,
        nlu_data=tuple(settings.nlu_data),
        nlu_additions_dir=settings.nlu_additions_dir,
    )
