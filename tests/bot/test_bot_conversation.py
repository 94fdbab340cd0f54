"""The conversation step of a text message, decided once, and the event row it is logged as."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from telegram import CallbackQuery, Chat, Message, Update, User

from bot import conversation
from bot.callbacks import CallbackData
from bot.conversation import BroadcastDraft, Step, Turn, UserData, decide
from bot.describe import Facts, describe, throttled_event
from bot.understanding import Understanding

NOW = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)


def _decide(user_data: UserData | None, text: str = "hello", *, is_admin: bool = False) -> Turn:
    return decide(user_data, text, private=True, addressed=True, is_admin=is_admin, now=NOW)


def test_group_text_is_a_question_only_when_addressed() -> None:
    data = UserData()
    data.await_comment(5)  # a comment due in private chat does not swallow group messages
    assert decide(data, "hi", private=False, addressed=True, is_admin=False, now=NOW) == Turn(Step.QUESTION)
    assert decide(data, "hi", private=False, addressed=False, is_admin=False, now=NOW) == Turn(Step.CHATTER)


def test_a_comment_due_comes_first_and_lapses(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(conversation.time, "monotonic", lambda: clock[0])
    data = UserData(broadcast=BroadcastDraft(segment="all"))
    data.await_comment(4)
    assert _decide(data, is_admin=True) == Turn(Step.FEEDBACK_COMMENT, rating=4)
    clock[0] += conversation.FEEDBACK_COMMENT_WINDOW_S + 1
    assert _decide(data, is_admin=True) == Turn(Step.BROADCAST_TEXT)
    assert data.comment_due is None


def test_clear_comment_says_whether_one_was_due() -> None:
    data = UserData()
    assert data.clear_comment() is False
    data.await_comment(2)
    assert data.clear_comment() is True
    assert data.pending_rating() is None


def test_a_draft_takes_the_text_once_a_segment_is_chosen_then_only_a_send_time() -> None:
    draft = BroadcastDraft(segments=("all", "Power users"))
    data = UserData(broadcast=draft)
    assert _decide(data, is_admin=True) == Turn(Step.QUESTION)  # no segment chosen yet
    draft.segment = "Power users"
    assert _decide(data, "Launch day!", is_admin=True) == Turn(Step.BROADCAST_TEXT)
    assert _decide(data, "Launch day!", is_admin=False) == Turn(Step.QUESTION)
    draft.text = "Launch day!"
    at = NOW + timedelta(days=1)
    assert _decide(data, f"{at:%Y-%m-%d %H:%M}", is_admin=True) == Turn(Step.BROADCAST_TIME, send_at=at)
    assert _decide(data, f"{NOW - timedelta(hours=1):%Y-%m-%d %H:%M}", is_admin=True) == Turn(Step.QUESTION)
    assert _decide(data, "how much is pro?", is_admin=True) == Turn(Step.QUESTION)


def test_no_user_data_is_a_question() -> None:
    assert _decide(None) == Turn(Step.QUESTION)


def _private_text(text: str) -> Update:
    user = User(id=42, first_name="Alice", is_bot=False)
    message = Message(message_id=7, date=NOW, chat=Chat(id=42, type="private"), from_user=user, text=text)
    return Update(update_id=1, message=message)


@pytest.mark.parametrize("store_text", [False, True])
def test_a_feedback_comment_is_logged_with_its_rating_and_its_text_only_if_text_is_stored(
    store_text: bool,
) -> None:
    facts = Facts(turn=Turn(Step.FEEDBACK_COMMENT, rating=3), store_text=store_text)
    record = describe(_private_text("too slow"), facts)
    assert record.kind == "feedback"
    assert record.attributes is not None and record.attributes["rating"] == 3
    assert ("comment" in record.attributes) is store_text
    assert record.attributes.get("commented", False) is not store_text


def test_a_question_is_logged_with_the_nlu_reading_and_a_draft_without_one() -> None:
    understood = Understanding("pricing", 0.9, entities={"plan": "pro"})
    question = describe(_private_text("pro?"), Facts(turn=Turn(Step.QUESTION), understood=understood))
    assert (question.kind, question.intent) == ("fallback", "pricing")  # not answerable
    assert question.attributes is not None and question.attributes["entities"] == {"plan": "pro"}
    answered = Facts(turn=Turn(Step.QUESTION), understood=understood, answerable=True)
    assert describe(_private_text("pro?"), answered).kind == "message"
    draft = describe(_private_text("Launch!"), Facts(turn=Turn(Step.BROADCAST_TEXT), understood=understood))
    assert draft.intent is None
    assert draft.attributes is not None and draft.attributes["broadcast_draft"] is True


def test_a_throttled_message_keeps_no_text() -> None:
    message = _private_text("spam").message
    assert message is not None
    record = throttled_event(message)
    assert record.kind == "message" and record.text is None
    assert record.attributes == {"chat_type": "private", "message_id": 7, "throttled": True}


def test_a_button_is_logged_by_its_verified_data_only() -> None:
    user = User(id=42, first_name="Alice", is_bot=False)
    press = Update(
        update_id=2, callback_query=CallbackQuery(id="q", from_user=user, chat_instance="c", data="x")
    )
    forged = describe(press, Facts())
    assert forged.kind == "callback"
    assert forged.attributes == {"valid": False}
    rated = describe(press, Facts(button=CallbackData(action="rate", arg="5", issued_at=0.0)))
    assert rated.kind == "feedback"
    assert rated.attributes is not None and rated.attributes["rating"] == 5
