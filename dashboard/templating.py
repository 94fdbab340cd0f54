"""Jinja2 templates with the helpers every page uses: words, numbers, dates, the CSRF token."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dashboard.config import DashboardConfig
from dashboard.i18n import translate
from dashboard.sessions import Session, csrf_token
from store.logins import TERMINAL_OPERATOR

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _when(value: datetime | None, config: DashboardConfig) -> str:
    if value is None:
        return "—"
    return value.astimezone(config.zone).strftime("%Y-%m-%d %H:%M")


def _who(user_id: int | None, lang: str) -> str:
    if user_id is None:
        return "—"
    return translate("terminal", lang) if user_id == TERMINAL_OPERATOR else str(user_id)


TEMPLATES.env.filters["number"] = _number
TEMPLATES.env.filters["percent"] = _percent


def render(
    request: Request,
    template: str,
    *,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page with `t`, `when`, `who`, `csrf` and the navigation filled in."""
    config: DashboardConfig = request.app.state.config
    lang = session.lang if session else request.app.state.default_lang(request)
    values: dict[str, Any] = {
        "session": session,
        "lang": lang,
        "t": lambda key, **kw: translate(key, lang, **kw),
        "when": lambda value: _when(value, config),
        "who": lambda user_id: _who(user_id, lang),
        "csrf": csrf_token(session, config.secret) if session else "",
        "tz": config.timezone,
        "path": request.url.path,
        **context,
    }
    return TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
