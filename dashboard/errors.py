"""Errors of the dashboard; each refusal becomes a clear page with its HTTP status.

DashboardError(Exception)
└── AccessDenied                 a request the dashboard refuses (status 401 or 403)
    ├── NotLoggedIn (401)        no valid session cookie
    ├── NotAManager (403)        a Telegram id outside RAPPORT_ADMIN_IDS
    ├── CsrfRejected (403)       a state-changing request without the session's CSRF token
    ├── LoginLinkRejected (401)  a forged, expired or used login link
    └── InitDataError (401)      a Mini App initData that fails Telegram's check
"""

from __future__ import annotations


class DashboardError(Exception):
    """Base of the dashboard's errors."""


class AccessDenied(DashboardError):
    """A refused request; `status` is the HTTP status and `message_key` the page's explanation."""

    status = 403
    message_key = "denied"


class NotLoggedIn(AccessDenied):
    """No session (or an expired or tampered one)."""

    status = 401
    message_key = "not_logged_in"


class NotAManager(AccessDenied):
    """The Telegram id is not a manager."""

    status = 403
    message_key = "not_manager"


class CsrfRejected(AccessDenied):
    """A POST without the CSRF token of the session."""

    status = 403
    message_key = "csrf"


class LoginLinkRejected(AccessDenied):
    """A login link that is forged, expired or used."""

    status = 401
    message_key = "bad_link"


class InitDataError(AccessDenied):
    """Telegram Mini App `initData` that fails validation."""

    status = 401
    message_key = "bad_initdata"
