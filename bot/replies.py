"""Building replies: knowledge-base answers, topic buttons, the fallback."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.callbacks import CallbackCodec
from bot.i18n import language_of, t
from bot.knowledge import KnowledgeBase, Topic
from bot.understanding import Understanding

MAX_MESSAGE_CHARS = 4096


@dataclass(frozen=True)
class Reply:
    """A text and its inline keyboard, ready to send."""

    text: str
    markup: InlineKeyboardMarkup | None = None
    answered: bool = True


def lang_of(update: Update) -> str:
    """The language of this update's user's Telegram client only.

    Handlers answer in `bot.context.language_for`, which follows the language the user writes in.
    """
    user = update.effective_user
    return language_of(user.language_code if user else None)


def topic_keyboard(topics: Sequence[Topic], lang: str, codec: CallbackCodec) -> InlineKeyboardMarkup | None:
    """One button per topic, one per row; None when there are none."""
    if not topics:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(topic.title_in(lang), callback_data=codec.encode("topic", topic.intent))]
            for topic in topics
        ]
    )


def topic_reply(
    topic: Topic, lang: str, kb: KnowledgeBase, codec: CallbackCodec, entities: dict[str, str]
) -> Reply:
    """The knowledge base's answer for a topic, with its follow-up buttons."""
    follow_ups = [kb.topics[name] for name in topic.follow_up if name in kb.topics]
    text = topic.answer_in(lang, entities)[:MAX_MESSAGE_CHARS]
    return Reply(text=text, markup=topic_keyboard(follow_ups, lang, codec))


def answer_for(understood: Understanding, lang: str, kb: KnowledgeBase, codec: CallbackCodec) -> Reply:
    """Answer from the knowledge base, or a graceful fallback with up to three suggested topics.

    A low-confidence guess is still a good suggestion, so the NLU's ranking (top intent
    included) comes first; the knowledge base's defaults fill the remaining places.
    """
    topic = kb.topic(understood.intent)
    if topic is not None and kb.can_answer(understood.intent, understood.confidence):
        return topic_reply(topic, lang, kb, codec, understood.entities)
    suggested = kb.suggestions(understood.ranking)
    intro = f"{topic.answer_in(lang)}\n\n" if topic is not None and topic.intent == "out_of_scope" else ""
    if not suggested:
        return Reply(text=intro + t("fallback_no_topics", lang), answered=False)
    return Reply(
        text=intro + t("fallback", lang), markup=topic_keyboard(suggested, lang, codec), answered=False
    )
