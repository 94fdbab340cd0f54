"""The live driver: pacing, and what it asks the local Bot API server to deliver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from demo.simulation import GROUP_CHAT_ID, iter_actions, make_population
from demo.simulation.activity import ActionBatch
from demo.simulation.behaviour import action_index
from demo.simulation.driver import CommunityDriver, pace
from fakeapi import LocalBotAPI, SentRecord

MANAGER = 42


def _batch(rows: list[int], ts: list[int]) -> ActionBatch:
    n = len(rows)
    return ActionBatch(
        row=np.array(rows, dtype=np.int64),
        ts=np.array(ts, dtype=np.int64),
        action=np.full(n, action_index("greet"), dtype=np.int8),
        in_group=np.zeros(n, dtype=bool),
        rating=np.zeros(n, dtype=np.int8),
    )


def test_pace_squeezes_the_window_and_spaces_one_users_actions() -> None:
    batch = _batch([0, 0, 0, 1], [1000, 1001, 1002, 1000 + 43_200])
    order, due = pace(batch, window_start_ts=1000, window_s=86_400, wall_s=10.0, min_gap_s=0.5)
    assert order.tolist() == [0, 1, 2, 3]
    assert due.tolist() == pytest.approx([0.0, 0.5, 1.0, 5.0])


@pytest.fixture
def api() -> Iterator[LocalBotAPI]:
    server = LocalBotAPI()
    with server.serve_in_thread():
        yield server


def test_setup_creates_users_group_and_members(api: LocalBotAPI) -> None:
    population = make_population(30, days=5, seed=1)
    members = [p.id for p in population.personas() if p.in_group]
    driver = CommunityDriver(api, population, manager_id=MANAGER, seed=1)
    driver.setup(joining=members[:1])
    assert set(population.true_types()) <= set(api.state.users)
    assert api.state.chats[GROUP_CHAT_ID].type == "supergroup"
    assert api.state.member(GROUP_CHAT_ID, members[0]).status == "left"
    assert all(api.state.member(GROUP_CHAT_ID, m).status == "member" for m in members[1:])


def test_actions_become_updates_in_the_right_chat(api: LocalBotAPI) -> None:
    population = make_population(30, days=5, seed=2)
    driver = CommunityDriver(api, population, manager_id=MANAGER, seed=2)
    driver.setup()
    member = next(p for p in population.personas() if p.in_group)
    loner = next(p for p in population.personas() if p.id != member.id)
    assert driver.perform(loner, "pricing", in_group=False)
    assert driver.perform(member, "models", in_group=True)
    assert driver.perform(member, "chatter", in_group=True)
    assert not driver.perform(member, "reaction", in_group=True)  # only its own messages to react to
    assert driver.perform(loner, "start", in_group=False)
    texts = [(u["message"]["chat"]["id"], u["message"]["text"]) for u in api.pending_updates]
    assert texts[0][0] == loner.id
    assert texts[1][0] == GROUP_CHAT_ID and texts[1][1].startswith("@rapport_bot")
    assert texts[2][0] == GROUP_CHAT_ID and "@rapport_bot" not in texts[2][1]
    assert texts[3] == (loner.id, "/start")
    assert driver.perform(loner, "reaction", in_group=True) is False  # not a member: Telegram refuses


def test_silent_block_is_only_known_to_the_server(api: LocalBotAPI) -> None:
    population = make_population(5, days=5, seed=3)
    driver = CommunityDriver(api, population, manager_id=MANAGER)
    driver.setup()
    first, second = (int(u) for u in population.ids[:2])
    driver.block([first], silently=True)
    driver.block([second], silently=False)
    assert {first, second} <= api.state.blocked_by
    kinds = [next(k for k in u if k != "update_id") for u in api.pending_updates]
    assert kinds == ["my_chat_member"]


def test_play_delivers_a_small_batch_in_order(api: LocalBotAPI) -> None:
    population = make_population(20, days=3, seed=4)
    start = datetime(2026, 9, 1, tzinfo=UTC)
    batch = next(iter_actions(population, start=start))
    keep = np.isin(batch.action, [action_index(a) for a in ("greet", "pricing", "docs", "thanks", "chatter")])
    small = batch.select(keep)
    small = small.select(np.arange(len(small)) < 25)
    driver = CommunityDriver(api, population, manager_id=MANAGER, seed=4)
    driver.setup()
    report = driver.play(
        small, window_start_ts=int(start.timestamp()), window_s=3 * 86_400, wall_s=0.2, min_gap_s=0.0
    )
    assert report.total == len(small) == len(api.pending_updates)
    assert report.skipped == {}


def test_come_back_answers_pushes_as_real_messages_and_blocked_users_stay_away(api: LocalBotAPI) -> None:
    population = make_population(60, days=10, seed=6)
    driver = CommunityDriver(api, population, manager_id=MANAGER, seed=6)
    driver.setup()
    ids = [int(u) for u in population.ids]
    blocked = ids[0]
    driver.block([blocked], silently=True)
    pushes = [
        SentRecord("sendMessage", chat_id=u, message_id=1, text="tip", reply_markup=None, time=0.0)
        for u in ids
    ]
    before = len(api.pending_updates)
    report = driver.come_back(
        pushes,
        targets_of=lambda _text: ("rate_limits", "community_events", "getting_started"),
        candidates=ids,
        horizon_days=3.0,
        wall_s=0.0,
    )
    senders = [u["message"]["from"]["id"] for u in api.pending_updates[before:]]
    assert report.messages == len(senders) == len(report.responded) + len(report.returned_naturally)
    assert set(senders) == report.responded | report.returned_naturally
    assert not report.responded & report.returned_naturally
    assert blocked not in senders
    assert 0 < len(report.responded) < len(ids)
