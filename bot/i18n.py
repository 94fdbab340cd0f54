"""The bot's own sentences in English and Chinese; other languages fall back to English."""

from __future__ import annotations

import html
import logging

logger = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"
SUPPORTED_LANGUAGES = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    "welcome": {
        "en": (
            "Hi {name}! I'm the Rapport assistant of this AI API platform.\n\n"
            "Ask me anything in plain words: pricing, API keys, rate limits, models, billing, "
            "your account, data privacy, fine-tuning, service status or community events. "
            "/feedback tells us how we're doing, /help lists everything I can do.\n\n"
            "What I keep: your Telegram id, name, language and what you ask me (the topic, "
            "not your words unless the operator switched that on), so that we can answer better "
            "and send you the occasional useful tip. /stop ends the tips, /forget deletes "
            "everything I stored about you."
        ),
        "zh": (
            "你好，{name}！我是本 AI API 平台的 Rapport 助手。\n\n"
            "直接用自然语言问我：价格、API 密钥、速率限制、模型、账单、账户、数据隐私、微调、"
            "服务状态或社区活动。/feedback 告诉我们你的评价，/help 查看全部功能。\n\n"
            "我保存的数据：你的 Telegram id、名字、语言以及你问过的话题（除非运营方开启，"
            "否则不保存原文），用于改进回答并偶尔发送实用提示。/stop 停止提示，"
            "/forget 删除我保存的关于你的一切。"
        ),
    },
    "welcome_back": {
        "en": "Welcome back, {name}! Tips and announcements are on again; /stop turns them off.",
        "zh": "欢迎回来，{name}！提示和公告已重新开启；发送 /stop 可关闭。",
    },
    "help": {
        "en": (
            'Just write your question, e.g. "How much does the Pro plan cost?"\n\n'
            "/start – welcome and what I can do\n"
            "/help – this list\n"
            "/privacy – what data I keep and how to delete it\n"
            "/feedback – rate me from 1 to 5\n"
            "/stop – no more tips or announcements\n"
            "/forget – delete everything stored about you\n\n"
            "In groups, mention me or reply to my message to ask something."
        ),
        "zh": (
            "直接写下你的问题，例如「专业版多少钱？」\n\n"
            "/start – 欢迎与功能介绍\n"
            "/help – 本列表\n"
            "/privacy – 我保存哪些数据、如何删除\n"
            "/feedback – 给我打 1 到 5 分\n"
            "/stop – 不再接收提示和公告\n"
            "/forget – 删除关于你的全部数据\n\n"
            "在群组中，提及我或回复我的消息即可提问。"
        ),
    },
    "admin_help": {
        "en": (
            "\n\nManager commands: /stats, /segments, /insights, /broadcast, /campaigns, /poll (in a group)."
        ),
        "zh": "\n\n管理员命令：/stats、/segments、/insights、/broadcast、/campaigns、/poll（群组内）。",
    },
    "privacy": {
        "en": (
            "What I store: your Telegram id, username, first name and language; one record per "
            "interaction (time, kind, detected topic and its confidence); your feedback ratings. "
            "Message text, feedback comments included, is stored only if the operator enabled it "
            "({text_policy}).\n\n"
            "Why: to answer better, to see which questions go unanswered, and to send you a few "
            "relevant tips. Nothing is sold or shared.\n\n"
            "Your controls: /stop – no more tips or announcements; /forget – delete everything "
            "stored about you, at once and for good."
        ),
        "zh": (
            "我保存：你的 Telegram id、用户名、名字和语言；每次互动的一条记录（时间、类型、识别出的"
            "话题及置信度）；你的评分。只有运营方开启时才保存消息原文（包括反馈意见；{text_policy}）。\n\n"
            "目的：改进回答、发现无法回答的问题，并偶尔发送相关提示。数据不会出售或共享。\n\n"
            "你可以：/stop 停止提示和公告；/forget 立即永久删除关于你的全部数据。"
        ),
    },
    "text_on": {"en": "currently on", "zh": "当前已开启"},
    "text_off": {"en": "currently off", "zh": "当前未开启"},
    "stopped": {
        "en": "Done: no more tips or announcements from me. Send /start any time to turn them back on.",
        "zh": "好的：我不会再发送提示或公告。随时发送 /start 重新开启。",
    },
    "forget_confirm": {
        "en": (
            "This deletes everything I stored about you: your profile, your interaction history "
            "and your feedback. It cannot be undone. Continue?"
        ),
        "zh": "这将删除我保存的关于你的一切：资料、互动记录和反馈，且无法恢复。确定继续吗？",
    },
    "forget_yes": {"en": "Yes, delete everything", "zh": "是的，全部删除"},
    "forget_no": {"en": "No, keep it", "zh": "不，保留"},
    "forgotten": {
        "en": "Deleted: I no longer hold any data about you. If you write again, I start afresh.",
        "zh": "已删除：我不再保存任何关于你的数据。如果你再次发消息，我们将重新开始。",
    },
    "forget_later": {
        "en": "I could not delete your data just now (my storage is busy), so nothing was deleted. "
        "Please send /forget again in a few minutes.",
        "zh": "我现在无法删除你的数据（存储繁忙），因此尚未删除任何内容。请过几分钟再发送 /forget。",
    },
    "forget_cancelled": {"en": "Nothing was deleted.", "zh": "未删除任何数据。"},
    "feedback_ask": {
        "en": "How happy are you with my answers? 1 = not at all, 5 = very.",
        "zh": "你对我的回答满意吗？1 = 很不满意，5 = 非常满意。",
    },
    "feedback_thanks_rating": {
        "en": "Thanks for rating {rating}/5! Anything you'd like to add? Just write it, or /skip.",
        "zh": "感谢你的 {rating}/5 评分！还有什么想补充的吗？直接写下来，或发送 /skip。",
    },
    "feedback_thanks": {"en": "Thank you, the team will read it.", "zh": "谢谢，团队会认真阅读。"},
    "feedback_skipped": {"en": "No problem, thanks again!", "zh": "没问题，再次感谢！"},
    "fallback": {
        "en": (
            "Sorry, I'm not sure I understood that. I've passed the question on so that we can "
            "learn to answer it. Maybe one of these topics helps?"
        ),
        "zh": "抱歉，我不太确定你的意思。我已记录这个问题，以便今后学会回答。也许这些话题能帮到你？",
    },
    "fallback_no_topics": {
        "en": "Sorry, I'm not sure I understood that. I've passed the question on; /help shows what I know.",
        "zh": "抱歉，我不太确定你的意思。我已记录这个问题；发送 /help 查看我能回答的内容。",
    },
    "non_text": {
        "en": "Nice! I can only read text, though: write your question in words and I'll do my best.",
        "zh": "收到！不过我只能读懂文字：请用文字写下你的问题，我会尽力回答。",
    },
    "unknown_command": {
        "en": "I don't know that command. /help lists the ones I know.",
        "zh": "我不认识这个命令。发送 /help 查看可用命令。",
    },
    "flood": {
        "en": "You're writing faster than I can read. Please wait a few seconds.",
        "zh": "你发得太快了，请稍等几秒。",
    },
    "button_expired": {
        "en": "This button has expired.",
        "zh": "此按钮已失效。",
    },
    "push_thanks": {
        "en": "Thanks!",
        "zh": "谢谢！",
    },
    "error": {
        "en": "Sorry, something went wrong on my side. Please try again in a moment.",
        "zh": "抱歉，我这边出了点问题，请稍后再试。",
    },
    "group_welcome": {  # sent as HTML: fill it in with t_html
        "en": "Welcome to {chat}, {name}! Mention me or reply to my message if you have a question.",
        "zh": "欢迎加入 {chat}，{name}！有问题可以提及我或回复我的消息。",
    },
    "not_admin": {
        "en": "Sorry, this command is for the community managers.",
        "zh": "抱歉，此命令仅供社区管理员使用。",
    },
    "private_only": {
        "en": "Please use this command in a private chat with me.",
        "zh": "请在与我的私聊中使用此命令。",
    },
    "poll_usage": {
        "en": "Usage: /poll Question? | Option 1 | Option 2 (2 to 10 options).",
        "zh": "用法：/poll 问题？| 选项 1 | 选项 2（2 到 10 个选项）。",
    },
    "group_only": {
        "en": "Please use this command in a group.",
        "zh": "请在群组中使用此命令。",
    },
    # --- account linking (issue 16): replies to /start <payload> -------------------------
    "link_done": {
        "en": (
            "Done: this Telegram account is now linked to your account on our platform, so my "
            "tips can take your plan and usage into account. /forget removes the link and the "
            "product data I hold about you."
        ),
        "zh": "完成：此 Telegram 账号已与你在我们平台上的账户关联，我的提示会参考你的套餐和用量。"
        "发送 /forget 可解除关联并删除我保存的关于你的产品数据。",
    },
    "link_already": {
        "en": "This Telegram account is already linked to that account; nothing changed.",
        "zh": "此 Telegram 账号已与该账户关联，无需重复操作。",
    },
    "link_refused": {
        "en": (
            "Sorry, I can't use this link: it may have expired or been used already. "
            "Please get a fresh one from your account page."
        ),
        "zh": "抱歉，此链接无法使用：可能已过期或已被使用。请在你的账户页面获取新链接。",
    },
    "link_taken": {
        "en": (
            "Sorry, I can't link this: that account, or this Telegram account, is already linked "
            "to another one. /forget removes the existing link."
        ),
        "zh": "抱歉，无法关联：该账户或此 Telegram 账号已与其他账号关联。发送 /forget 可删除现有关联。",
    },
    "link_unavailable": {
        "en": "Sorry, account linking isn't set up here yet.",
        "zh": "抱歉，这里尚未开启账户关联。",
    },
}


def language_of(code: str | None) -> str:
    """Map a Telegram `language_code` (`zh-hans`, `en-GB`, `de`) onto a supported language."""
    if not code:
        return DEFAULT_LANGUAGE
    base = code.lower().replace("_", "-").split("-", 1)[0]
    return base if base in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def t(key: str, lang: str, **values: object) -> str:
    """The sentence `key` in `lang` (English when missing), with `{placeholders}` filled in.

    Raises:
        KeyError: `key` is not a known message; a typo must fail loudly in tests.
    """
    variants = MESSAGES[key]
    template = variants.get(lang) or variants[DEFAULT_LANGUAGE]
    return template.format(**values) if values else template


class Html(str):
    """Text that is already Telegram HTML (e.g. `User.mention_html()`): `t_html` inserts it as it is."""

    __slots__ = ()


def t_html(key: str, lang: str, **values: object) -> str:
    """`t` for a message sent with `parse_mode="HTML"`: every value is escaped unless it is `Html`.

    Group titles, names and usernames are chosen by users; `R&D <Dev> Team` sent unescaped is
    markup Telegram refuses (or worse, markup it obeys). The templates themselves are plain text.
    """
    escaped = {
        name: value if isinstance(value, Html) else html.escape(str(value)) for name, value in values.items()
    }
    return t(key, lang, **escaped)
