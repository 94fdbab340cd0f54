"""Who gets in: login links, Mini App initData, sessions, CSRF, and the refusal pages."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from fastapi.routing import APIRoute

from dashboard.initdata import init_data_hash
from dashboard.sessions import COOKIE_NAME
from store.audit import list_actions
from store.logins import TERMINAL_OPERATOR
from tests.dashboard.conftest import ADMIN, BOT_TOKEN, OTHER_ADMIN, STRANGER, Dash, TestClient, csrf_of

PAGES = ["/", "/campaigns", "/broadcast", "/audit"]


def _webapp_data(
    dash: Dash, user_id: int, *, age: timedelta = timedelta(minutes=1), token: str = BOT_TOKEN
) -> str:
    fields = {
        "auth_date": str(int((dash.clock.now - age).timestamp())),
        "query_id": "AAH",
        "user": f'{{"id":{user_id},"first_name":"M","language_code":"zh"}}',
    }
    return urlencode({**fields, "hash": init_data_hash(fields, token)})


@pytest.mark.parametrize("page", PAGES)
def test_pages_refuse_without_a_session(dash: Dash, page: str) -> None:
    response = dash.client().get(page)
    assert response.status_code == 401
    assert "/dashboard" in response.text and "Traceback" not in response.text


def test_a_link_logs_in_with_a_safe_cookie(dash: Dash) -> None:
    client = dash.client()
    token = dash.link_token()
    landing = client.get("/login", params={"token": token})
    assert landing.status_code == 200 and token in landing.text  # GET alone uses nothing up
    response = client.post("/login", data={"token": token})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert COOKIE_NAME in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http here; https base URLs get Secure
    assert client.get("/").status_code == 200
    assert [e.action for e in list_actions(dash.engine)] == ["login"]


def test_reused_expired_and_forged_links_get_a_clear_401(dash: Dash) -> None:
    token = dash.link_token()
    assert dash.client().post("/login", data={"token": token}).status_code == 303
    reused = dash.client().post("/login", data={"token": token})
    assert reused.status_code == 401 and "already used" in reused.text
    old = dash.link_token(at=dash.clock.now - timedelta(minutes=11))
    expired = dash.client().post("/login", data={"token": old})
    assert expired.status_code == 401 and "expired" in expired.text
    _user, exp, nonce, sig = dash.link_token().split(".")
    forged = dash.client().post("/login", data={"token": f"{STRANGER}.{exp}.{nonce}.{sig}"})
    assert forged.status_code == 401 and "not issued by this dashboard" in forged.text
    garbage = dash.client().post("/login", data={"token": "<script>"})
    assert garbage.status_code == 401 and "<script>" not in garbage.text


def test_a_link_for_someone_who_is_no_longer_a_manager_is_refused(dash: Dash) -> None:
    response = dash.client().post("/login", data={"token": dash.link_token(STRANGER)})
    assert response.status_code == 403
    assert "not a manager" in response.text


def test_the_terminal_operator_may_log_in(dash: Dash) -> None:
    client = dash.logged_in(TERMINAL_OPERATOR)
    assert "terminal" in client.get("/").text


def test_a_session_ends_when_it_expires_or_the_manager_is_removed(dash: Dash) -> None:
    client = dash.logged_in()
    dash.clock.now += dash.config.session_ttl + timedelta(seconds=1)
    assert client.get("/").status_code == 401


def test_a_tampered_cookie_is_no_session(dash: Dash) -> None:
    client = dash.logged_in()
    value = client.cookies[COOKIE_NAME]
    client.cookies.set(COOKIE_NAME, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/").status_code == 401


def test_mini_app_init_data_logs_a_manager_in_in_their_language(dash: Dash) -> None:
    client = dash.client()
    response = client.post("/auth/webapp", data={"initData": _webapp_data(dash, ADMIN)})
    assert response.status_code == 303
    page = client.get("/")
    assert page.status_code == 200 and "概览" in page.text


@pytest.mark.parametrize(
    ("user_id", "age", "token", "status"),
    [
        (STRANGER, timedelta(minutes=1), BOT_TOKEN, 403),
        (ADMIN, timedelta(hours=3), BOT_TOKEN, 401),
        (ADMIN, timedelta(minutes=1), "999:other-bot", 401),
    ],
    ids=["non-admin", "stale", "bad-hash"],
)
def test_bad_mini_app_logins_are_refused(
    dash: Dash, user_id: int, age: timedelta, token: str, status: int
) -> None:
    response = dash.client().post(
        "/auth/webapp", data={"initData": _webapp_data(dash, user_id, age=age, token=token)}
    )
    assert response.status_code == status
    assert COOKIE_NAME not in response.headers.get("set-cookie", "")
    assert "Traceback" not in response.text


def _state_changing_routes(dash: Dash) -> list[str]:
    paths = []
    routes = []
    for route in dash.app.routes:  # type: ignore[attr-defined]
        # FastAPI keeps included routers whole (no prefixes here, so their paths are the app's).
        routes.extend(route.original_router.routes if hasattr(route, "original_router") else [route])
    for route in routes:
        if (
            isinstance(route, APIRoute)
            and "POST" in route.methods
            and route.path not in {"/login", "/auth/webapp"}
        ):
            paths.append(
                route.path.replace("{campaign_id}", "1")
                .replace("{action}", "pause")
                .replace("{segment_id}", "1")
                .replace("{user_id}", "1")
            )
    return paths


def test_every_state_changing_request_needs_the_csrf_token(dash: Dash) -> None:
    client = dash.logged_in()
    paths = _state_changing_routes(dash)
    assert {"/logout", "/lang", "/broadcast/review", "/broadcast/confirm", "/campaigns/1/pause"} <= set(paths)
    for path in paths:
        missing = client.post(path, data={"segment": "all", "text": "hi"})
        assert missing.status_code == 403, path
        assert "security token" in missing.text
        wrong = client.post(path, data={"csrf": "x" * 43, "segment": "all", "text": "hi"})
        assert wrong.status_code == 403, path
    other = dash.logged_in()
    stolen = csrf_of(other.get("/").text)
    assert client.post("/logout", data={"csrf": stolen}).status_code == 403


def test_logout_ends_the_session(dash: Dash) -> None:
    client = dash.logged_in()
    assert client.post("/logout", data={"csrf": csrf_of(client.get("/").text)}).status_code == 303
    assert client.get("/").status_code == 401


def test_language_switch_keeps_the_page(dash: Dash) -> None:
    client = dash.logged_in()
    response = client.post(
        "/lang", data={"csrf": csrf_of(client.get("/audit").text), "lang": "zh", "back": "/audit"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/audit"
    assert "操作日志" in client.get("/audit").text
    evil = client.post(
        "/lang", data={"csrf": csrf_of(client.get("/").text), "lang": "en", "back": "//evil.example"}
    )
    assert evil.headers["location"] == "/"


def test_unknown_pages_and_bad_parameters_get_pages_not_tracebacks(dash: Dash) -> None:
    client = dash.logged_in()
    assert client.get("/nope").status_code == 404
    bad = client.get("/?days=abc")
    assert bad.status_code == 400 and "Traceback" not in bad.text


def test_pages_carry_security_headers(dash: Dash) -> None:
    response = dash.client().get("/login")
    assert "frame-ancestors" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_over_https_the_cookie_is_secure(dash: Dash) -> None:
    from dataclasses import replace

    from dashboard import create_app

    app = create_app(replace(dash.config, base_url="https://dash.example"), now=dash.clock)
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    response = client.post("/login", data={"token": dash.link_token()})
    assert response.status_code == 303 and "secure" in response.headers["set-cookie"].lower()


def test_a_manager_removed_from_the_admin_ids_loses_the_session(dash: Dash) -> None:
    from dataclasses import replace

    from dashboard import create_app

    client = dash.logged_in()
    cookie = client.cookies[COOKIE_NAME]
    demoted = TestClient(
        create_app(replace(dash.config, admin_ids=frozenset({OTHER_ADMIN})), now=dash.clock),
        follow_redirects=False,
    )
    demoted.cookies.set(COOKIE_NAME, cookie)
    response = demoted.get("/")
    assert response.status_code == 403 and "not a manager" in response.text


def test_a_server_error_is_a_plain_500_page(dash: Dash, monkeypatch: pytest.MonkeyPatch) -> None:
    import dashboard.views.audit as audit_view

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(audit_view, "list_actions", broken)
    client = dash.logged_in()
    quiet = TestClient(dash.app, raise_server_exceptions=False, follow_redirects=False)  # type: ignore[arg-type]
    quiet.cookies = client.cookies
    response = quiet.get("/audit")
    assert response.status_code == 500
    assert "it has been logged" in response.text
    assert "database on fire" not in response.text and "Traceback" not in response.text
