"""The composer creates broadcasts exactly as the CLI does; campaigns pause, resume, cancel; all audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from scheduler import create_broadcast, segment_recipients
from store.audit import list_actions
from store.campaigns import get_campaign
from store.models import Delivery
from tests.dashboard.conftest import ADMIN, Dash, csrf_of, seed_users


def _deliveries(engine: Engine, campaign_id: int) -> list[tuple[int, str, str]]:
    with engine.connect() as connection:
        return [
            (int(u), s, t)
            for u, s, t in connection.execute(
                select(Delivery.user_id, Delivery.status, Delivery.text)
                .where(Delivery.campaign_id == campaign_id)
                .order_by(Delivery.user_id)
            )
        ]


def _compose(dash: Dash, client: object, **fields: str) -> tuple[object, str]:
    page = client.get("/broadcast")  # type: ignore[attr-defined]
    csrf = csrf_of(page.text)
    form = {"csrf": csrf, "segment": "all", "text": "Hello everyone", "when": "now", "at": "", **fields}
    return client.post("/broadcast/review", data=form), csrf  # type: ignore[attr-defined]


def test_review_shows_exactly_who_and_when_and_creates_nothing(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    review, _ = _compose(dash, client)
    assert review.status_code == 200  # type: ignore[attr-defined]
    expected = len(segment_recipients(dash.engine, "all", now=dash.clock.now))
    assert expected == 10  # 12 users, one blocked, one opted out
    assert f'id="confirm-count">{expected}<' in review.text  # type: ignore[attr-defined]
    assert get_campaign(dash.engine, 1) is None


def test_confirm_creates_the_same_campaign_as_the_cli(dash: Dash, sqlite_engine: Engine) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    _, csrf = _compose(dash, client, segment="inactive", days="5")
    form = {
        "csrf": csrf,
        "segment": "inactive",
        "days": "5",
        "text": "  We miss you  ",
        "when": "now",
        "at": "",
    }
    response = client.post("/broadcast/confirm", data=form)
    assert response.status_code == 303
    campaign_id = int(response.headers["location"].rsplit("/", 1)[1])
    made = get_campaign(dash.engine, campaign_id)
    assert made is not None
    assert (made.kind, made.segment, made.text, made.status, made.created_by) == (
        "broadcast",
        "inactive:5",
        "We miss you",
        "scheduled",
        ADMIN,
    )
    # The CLI's path, on the same store, for comparison.
    cli_id = create_broadcast(
        dash.engine, segment="inactive:5", text="We miss you", at=dash.clock.now, now=dash.clock.now
    )
    cli = get_campaign(dash.engine, cli_id)
    assert cli is not None and (cli.kind, cli.segment, cli.name) == (made.kind, made.segment, made.name)
    ours = _deliveries(dash.engine, campaign_id)
    assert [u for u, _, _ in ours] == [u for u, _, _ in _deliveries(dash.engine, cli_id)]
    assert [u for u, _, _ in ours] == [6, 7, 8, 9, 10, 11, 12]  # last seen over 5 days ago, reachable
    assert {s for _, s, _ in ours} == {"pending"}
    entry = list_actions(dash.engine)[0]
    assert (entry.action, entry.actor_id, entry.target) == (
        "broadcast.created",
        ADMIN,
        f"campaign #{campaign_id}",
    )
    assert entry.details["segment"] == "inactive:5"
    page = client.get(f"/campaigns/{campaign_id}")
    assert page.status_code == 200 and "We miss you" in page.text


def test_a_scheduled_time_is_read_in_the_community_time_zone(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    _, csrf = _compose(dash, client)
    form = {"csrf": csrf, "segment": "all", "text": "Later", "when": "at", "at": "2026-11-21T09:30"}
    response = client.post("/broadcast/confirm", data=form)
    made = get_campaign(dash.engine, int(response.headers["location"].rsplit("/", 1)[1]))
    assert made is not None and made.scheduled_at == datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"text": "   "}, "empty"),
        ({"text": "x" * 4097}, "4096"),
        ({"segment": "nosuch"}, "nosuch"),
        ({"segment": "inactive", "days": "0"}, "inactive:N"),
        ({"when": "at", "at": "2020-01-01T10:00"}, "past"),
        ({"when": "at", "at": "tomorrow"}, "not a date"),
    ],
)
def test_bad_broadcasts_are_refused_with_the_reason(dash: Dash, fields: dict[str, str], message: str) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    review, csrf = _compose(dash, client, **fields)
    assert review.status_code == 400 and message in review.text  # type: ignore[attr-defined]
    confirm = client.post(
        "/broadcast/confirm", data={"csrf": csrf, "segment": "all", "text": "", "when": "now", **fields}
    )
    assert confirm.status_code == 400
    assert get_campaign(dash.engine, 1) is None


def test_the_live_count_matches_the_scheduler(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    assert client.get("/broadcast/recipients", params={"segment": "all"}).json() == {"count": 10}
    assert client.get("/broadcast/recipients", params={"segment": "inactive", "days": "9"}).json() == {
        "count": 3
    }
    assert client.get("/broadcast/recipients", params={"segment": "bogus"}).status_code == 400
    assert dash.client().get("/broadcast/recipients", params={"segment": "all"}).status_code == 401


def test_pause_resume_cancel_from_the_page_are_audited(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    later = dash.clock.now + timedelta(hours=2)
    campaign_id = create_broadcast(dash.engine, segment="all", text="Hi", at=later, now=dash.clock.now)
    client = dash.logged_in()
    listing = client.get("/campaigns")
    assert listing.status_code == 200 and f"/campaigns/{campaign_id}" in listing.text
    for action, status in (("pause", "paused"), ("resume", "scheduled"), ("cancel", "cancelled")):
        csrf = csrf_of(client.get(f"/campaigns/{campaign_id}").text)
        response = client.post(f"/campaigns/{campaign_id}/{action}", data={"csrf": csrf})
        assert response.status_code == 303
        made = get_campaign(dash.engine, campaign_id)
        assert made is not None and made.status == status
    assert {s for _, s, _ in _deliveries(dash.engine, campaign_id)} == {"skipped"}
    assert [e.action for e in list_actions(dash.engine)][:3] == [
        "campaign.cancelled",
        "campaign.resumed",
        "campaign.paused",
    ]
    audit = client.get("/audit").text
    assert "campaign.cancelled" in audit and f"campaign #{campaign_id}" in audit
    # A cancelled campaign cannot be paused: the page says why, nothing is logged.
    csrf = csrf_of(client.get(f"/campaigns/{campaign_id}").text)
    refused = client.post(f"/campaigns/{campaign_id}/pause", data={"csrf": csrf}, follow_redirects=True)
    assert "not possible, the campaign is cancelled" in refused.text
    assert len(list_actions(dash.engine)) == 4  # login + three controls
    assert client.post("/campaigns/999/pause", data={"csrf": csrf}).status_code == 404


def test_the_time_is_read_in_a_non_utc_community_zone(dash: Dash) -> None:
    from dataclasses import replace

    from dashboard import create_app

    seed_users(dash.engine, now=dash.clock.now)
    berlin = replace(dash, app=create_app(replace(dash.config, timezone="Europe/Berlin"), now=dash.clock))
    client = berlin.logged_in()
    csrf = csrf_of(client.get("/broadcast").text)
    assert "Europe/Berlin" in client.get("/broadcast").text
    form = {"csrf": csrf, "segment": "all", "text": "Later", "when": "at", "at": "2026-11-21T09:30"}
    response = client.post("/broadcast/confirm", data=form)
    made = get_campaign(dash.engine, int(response.headers["location"].rsplit("/", 1)[1]))
    assert made is not None and made.scheduled_at == datetime(2026, 11, 21, 8, 30, tzinfo=UTC)  # CET = UTC+1
