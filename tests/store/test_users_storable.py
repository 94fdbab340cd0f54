"""A user's profile from a hostile or broken client never makes their updates fail."""

from __future__ import annotations

from sqlalchemy import Engine, select

from store import UserInfo, get_user, upsert_user
from store.db import unit_of_work
from store.models import User


def _first_name(engine: Engine, user_id: int) -> str | None:
    with unit_of_work(engine) as session:
        return session.scalar(select(User.first_name).where(User.id == user_id))


def test_an_over_long_username_is_cut_to_the_column(engine: Engine) -> None:
    # varchar(64) on PostgreSQL: every update of this user used to fail with a DataError.
    state = upsert_user(engine, UserInfo(id=1, username="u" * 200, first_name="f" * 300, language="x" * 40))
    assert state.username == "u" * 64
    assert state.language == "x" * 16
    assert _first_name(engine, 1) == "f" * 128
    assert upsert_user(engine, UserInfo(id=1, username="again" * 50)).username == ("again" * 50)[:64]


def test_nul_and_lone_surrogates_in_a_profile_are_cleaned(engine: Engine) -> None:
    upsert_user(engine, UserInfo(id=2, username="bad\x00name", first_name="Ann\ud800e", time_zone="UTC\x00"))
    state = get_user(engine, 2)
    assert state is not None
    assert state.username == "badname"
    assert state.time_zone == "UTC"
    assert _first_name(engine, 2) == "Ann\ufffde"
