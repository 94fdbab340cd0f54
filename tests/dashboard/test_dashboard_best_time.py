"""The composer's best-time sends and goals: stored and planned as `rapport broadcast` does, and audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from scheduler import create_broadcast
from scheduler.best_time import BEST_TIME, FIXED
from store import EventRecord, append_events
from store.audit import list_actions
from store.campaigns import get_campaign
from store.models import Delivery
from tests.dashboard.conftest import ADMIN, Dash, csrf_of, seed_users

LATER = "2026-11-21T09:00"
LATER_UTC = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def _rows(engine: Engine, campaign_id: int) -> dict[int, tuple[datetime, str | None]]:
    with engine.connect() as connection:
        return {
            int(u): (due.replace(tzinfo=UTC) if due.tzinfo is None else due, variant)
            for u, due, variant in connection.execute(
                select(Delivery.user_id, Delivery.due_at, Delivery.variant).where(
                    Delivery.campaign_id == campaign_id
                )
            )
        }


def _form(client: object, **fields: str) -> dict[str, str]:
    csrf = csrf_of(client.get("/broadcast").text)  # type: ignore[attr-defined]
    return {"csrf": csrf, "segment": "all", "text": "Hello", "when": "at", "at": LATER, **fields}


def _confirm(client: object, form: dict[str, str]) -> int:
    response = client.post("/broadcast/confirm", data=form)  # type: ignore[attr-defined]
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def test_the_composer_offers_the_timing_and_goal_choices(dash: Dash) -> None:
    page = dash.logged_in().get("/broadcast").text
    assert 'name="send_at" value="best_time"' in page
    assert 'name="send_at" value="best_time_vs_fixed"' in page
    assert "Each user at their best hour (within 24 h)" in page
    assert 'name="goal"' in page and 'name="goal_hours"' in page


def test_review_explains_a_best_time_send_and_its_planned_window(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    review = client.post("/broadcast/review", data=_form(client, send_at="best_time"))
    assert review.status_code == 200
    assert "Nobody gets it at once" in review.text
    assert "never between 22:00 and 8:00 their local time" in review.text
    assert 'id="confirm-window">Planned now: from 2026-11-21' in review.text
    assert 'name="send_at" value="best_time"' in review.text  # carried to the confirmation
    assert get_campaign(dash.engine, 1) is None


def test_best_time_is_stored_and_planned_exactly_as_the_cli_plans_it(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    campaign_id = _confirm(client, _form(client, send_at="best_time"))
    made = get_campaign(dash.engine, campaign_id)
    assert made is not None and made.attributes["send_at"] == "best_time"
    cli_id = create_broadcast(
        dash.engine,
        segment="all",
        text="Hello",
        at=LATER_UTC,
        now=dash.clock.now,
        send_at="best_time",
        send_time=dash.config.send_time,
    )
    ours, theirs = _rows(dash.engine, campaign_id), _rows(dash.engine, cli_id)
    assert ours == theirs
    assert len(ours) == 10
    assert all(LATER_UTC <= due <= LATER_UTC + timedelta(hours=25) for due, _ in ours.values())
    assert any(due != LATER_UTC for due, _ in ours.values())  # not everyone at the planned time
    entry = list_actions(dash.engine)[0]
    assert (entry.action, entry.actor_id) == ("broadcast.created", ADMIN)
    assert entry.details["send_at"] == "best_time"


def test_the_split_sends_half_at_the_time_and_half_at_their_best_hour(dash: Dash) -> None:
    seed_users(dash.engine, n=40, now=dash.clock.now)
    client = dash.logged_in()
    campaign_id = _confirm(client, _form(client, send_at="best_time_vs_fixed"))
    made = get_campaign(dash.engine, campaign_id)
    assert made is not None and made.attributes["send_at"] == "best_time_vs_fixed"
    rows = _rows(dash.engine, campaign_id).values()
    assert {variant for _, variant in rows} == {BEST_TIME, FIXED}
    assert all(due == LATER_UTC for due, variant in rows if variant == FIXED)
    assert list_actions(dash.engine)[0].details["send_at"] == "best_time_vs_fixed"
    page = client.get(f"/campaigns/{campaign_id}").text
    assert 'id="send-time"' in page


def test_a_fixed_time_broadcast_stays_as_it_was(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    campaign_id = _confirm(client, _form(client))
    made = get_campaign(dash.engine, campaign_id)
    assert made is not None and "send_at" not in made.attributes and "goal" not in made.attributes
    assert {due for due, _ in _rows(dash.engine, campaign_id).values()} == {LATER_UTC}
    assert list_actions(dash.engine)[0].details["send_at"] == "fixed"


def test_a_goal_is_stored_as_the_cli_stores_it(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    review = client.post("/broadcast/review", data=_form(client, goal="upgrade", goal_hours="24"))
    assert 'id="confirm-goal">product:upgrade within 24 h of each send' in review.text
    campaign_id = _confirm(client, _form(client, goal="upgrade", goal_hours="24"))
    made = get_campaign(dash.engine, campaign_id)
    assert made is not None
    assert (made.attributes["goal"], made.attributes["goal_window_hours"]) == ("product:upgrade", 24.0)
    details = list_actions(dash.engine)[0].details
    assert (details["goal"], details["goal_window_hours"]) == ("product:upgrade", 24.0)
    default = _confirm(client, _form(client, goal="return"))
    made = get_campaign(dash.engine, default)
    assert made is not None and made.attributes["goal_window_hours"] == 48.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"send_at": "whenever"}, "timing"),
        ({"goal": "click:x"}, "only `return` and product events"),
        ({"goal": "upgrade", "goal_hours": "0"}, "positive number of hours"),
        ({"goal": "upgrade", "goal_hours": "soon"}, "not a number of hours"),
    ],
)
def test_bad_timing_or_goal_is_refused_with_the_reason(
    dash: Dash, fields: dict[str, str], message: str
) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    for step in ("review", "confirm"):
        response = client.post(f"/broadcast/{step}", data=_form(client, **fields))
        assert response.status_code == 400
        assert message in response.text
    assert get_campaign(dash.engine, 1) is None


def test_the_goal_lists_logged_product_events_and_warns_of_an_unseen_one(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    review = client.post("/broadcast/review", data=_form(client, goal="upgrade"))
    assert review.status_code == 200 and 'id="goal-unseen"' in review.text  # a warning, not a refusal
    event = {"source": "product", "event": "upgrade"}
    append_events(dash.engine, [EventRecord(user_id=1, ts=dash.clock.now, kind="product", attributes=event)])
    assert '<option value="upgrade">' in client.get("/broadcast").text
    review = client.post("/broadcast/review", data=_form(client, goal="upgrade"))
    assert 'id="goal-unseen"' not in review.text
