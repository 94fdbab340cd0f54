"""The managers' web dashboard (browser and Telegram Mini App) over the same database as the bot."""

from __future__ import annotations

from dashboard.app import create_app
from dashboard.config import DashboardConfig, config_from_settings
from dashboard.errors import (
    AccessDenied,
    CsrfRejected,
    DashboardError,
    InitDataError,
    LoginLinkRejected,
    NotAManager,
    NotLoggedIn,
)
from dashboard.initdata import WebAppUser, init_data_hash, verify_init_data

__all__ = [
    "AccessDenied",
    "CsrfRejected",
    "DashboardConfig",
    "DashboardError",
    "InitDataError",
    "LoginLinkRejected",
    "NotAManager",
    "NotLoggedIn",
    "WebAppUser",
    "config_from_settings",
    "create_app",
    "init_data_hash",
    "verify_init_data",
]
