"""Who is asking: sessions from the cookie, the three ways in, and the CSRF check.

Ways in: a one-time link (from the bot's /dashboard or the terminal) redeemed by a POST from
its landing page, so that link previews fetching the GET cannot use it up; Telegram Mini App
`initData`, validated as Telegram documents; and out again by POST /logout.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard.config import DashboardConfig
from dashboard.errors import CsrfRejected, InitDataError, LoginLinkRejected, NotAManager, NotLoggedIn
from dashboard.initdata import verify_init_data
from dashboard.sessions import COOKIE_NAME, Session, csrf_valid, decode_session, encode_session, new_session
from dashboard.templating import render
from store.audit import AuditAction, record_action
from store.logins import LoginRefused, redeem_login_token

logger = logging.getLogger(__name__)

router = APIRouter()


def config_of(request: Request) -> DashboardConfig:
    """The dashboard's configuration."""
    config: DashboardConfig = request.app.state.config
    return config


def optional_session(request: Request) -> Session | None:
    """The manager's session, or None (no cookie, expired, tampered, or no longer a manager)."""
    config = config_of(request)
    session = decode_session(request.cookies.get(COOKIE_NAME), config.secret, now=request.app.state.now())
    if session is None or not config.is_manager(session.user_id):
        return None
    return session


def manager(request: Request) -> Session:
    """The logged-in manager (dependency of every page).

    Raises:
        NotLoggedIn: no valid session.
        NotAManager: the session's user was removed from RAPPORT_ADMIN_IDS.
    """
    config = config_of(request)
    session = decode_session(request.cookies.get(COOKIE_NAME), config.secret, now=request.app.state.now())
    if session is None:
        raise NotLoggedIn()
    if not config.is_manager(session.user_id):
        raise NotAManager()
    return session


async def manager_with_csrf(request: Request) -> Session:
    """The logged-in manager of a state-changing request that carries the session's CSRF token.

    Raises:
        CsrfRejected: the form field `csrf` (or header X-CSRF-Token) is missing or wrong.
    """
    session = manager(request)
    token = request.headers.get("x-csrf-token")
    if token is None:
        form = await request.form()
        value = form.get("csrf")
        token = value if isinstance(value, str) else None
    if not csrf_valid(session, config_of(request).secret, token):
        logger.warning(
            "refused %s %s from %d: bad CSRF token", request.method, request.url.path, session.user_id
        )
        raise CsrfRejected()
    return session


def start_session(request: Request, session: Session, *, to: str = "/") -> Response:
    """Redirect to the dashboard with the session cookie set (HttpOnly, SameSite=Lax, Secure on https)."""
    config = config_of(request)
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        encode_session(session, config.secret),
        max_age=int(config.session_ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=config.secure_cookies,
        path="/",
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, token: str = "") -> Response:
    """The landing page of a login link: a button that POSTs the token (pressed by script at once)."""
    return render(request, "login.html", session=None, token=token)


@router.post("/login")
def login(request: Request, token: str = Form("")) -> Response:
    """Redeem a one-time link and start a session."""
    config = config_of(request)
    now = request.app.state.now()
    try:
        user_id = redeem_login_token(config.engine, config.secret, token, now=now)
    except LoginRefused as exc:
        logger.warning("refused a login link: %s", exc.reason.value)
        raise LoginLinkRejected(str(exc.reason.value)) from exc
    if not config.is_manager(user_id):
        logger.warning("refused a login link of user %d: not a manager", user_id)
        raise NotAManager()
    record_action(config.engine, actor_id=user_id, action=AuditAction.LOGIN, target="link", now=now)
    return start_session(request, new_session(user_id, now=now, ttl=config.session_ttl))


@router.get("/webapp", response_class=HTMLResponse)
def webapp_page(request: Request) -> Response:
    """The Mini App's entry: its script posts Telegram's initData from the URL fragment."""
    return render(request, "webapp.html", session=None)


@router.post("/auth/webapp")
def webapp_login(request: Request, init_data: str = Form("", alias="initData")) -> Response:
    """Start a session from Mini App initData (validated with the bot token)."""
    config = config_of(request)
    now = request.app.state.now()
    if not config.bot_token:
        raise InitDataError("the dashboard has no bot token to check Mini App data with")
    user = verify_init_data(init_data, config.bot_token, now=now)
    if user.id not in config.admin_ids:
        logger.warning("refused Mini App login of user %d: not a manager", user.id)
        raise NotAManager()
    record_action(config.engine, actor_id=user.id, action=AuditAction.LOGIN, target="mini app", now=now)
    session = new_session(user.id, now=now, ttl=config.session_ttl, lang=user.language_code, via="webapp")
    return start_session(request, session)


@router.post("/logout")
def logout(session: Session = Depends(manager_with_csrf)) -> Response:
    """End the session."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@router.post("/lang")
def switch_language(
    request: Request,
    lang: str = Form("en"),
    back: str = Form("/"),
    session: Session = Depends(manager_with_csrf),
) -> Response:
    """Switch the interface language (kept in the session cookie)."""
    # Only a path of this site: "//host" and "/\\host" would send the manager elsewhere.
    target = back if back.startswith("/") and not back.startswith("//") and "\\" not in back else "/"
    return start_session(request, session.with_lang(lang), to=target)
