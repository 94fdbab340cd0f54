"""What simulated users write: English and Chinese templates per intent, with variation.

The real NLU parses these, so they vary as people do: synonyms, slot values, casing,
missing punctuation, the odd typo and emoji. Rendering is deterministic given the RNG.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHATTER", "TEMPLATES", "render"]

_SLOTS: dict[str, tuple[str, ...]] = {
    "plan": ("free", "pro", "team", "enterprise", "professional"),
    "plan_zh": ("免费版", "专业版", "团队版", "企业版"),
    "model": ("rapport-mini", "rapport-pro", "rapport-vision", "rapport-embed"),
    "date": ("2026-12-01", "2027-01-15", "tomorrow", "next monday"),
    "email": ("ana@example.com", "dev.lee@example.org", "ops@startup.io"),
}

TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "greet": {
        "en": ("hi", "hello there", "hey!", "good morning", "hi rapport", "hello, anyone here?"),
        "zh": ("你好", "嗨", "早上好", "大家好", "你好呀"),
    },
    "goodbye": {
        "en": ("bye", "see you later", "goodbye!", "thats all, bye", "catch you later"),
        "zh": ("再见", "拜拜", "回头见", "先这样，再见"),
    },
    "thanks": {
        "en": ("thanks!", "thank you so much", "thx, that helped", "great, thanks", "cheers"),
        "zh": ("谢谢", "非常感谢", "多谢，有帮助", "谢啦"),
    },
    "getting_started": {
        "en": (
            "how do I get started?",
            "I'm new here, where do I begin",
            "how do i make my first api call",
            "is there a quickstart guide?",
            "what are the first steps to use the api",
        ),
        "zh": ("我是新手，怎么开始？", "怎么调用第一个 API", "有快速入门教程吗", "第一步应该做什么"),
    },
    "pricing": {
        "en": (
            "how much does the {plan} plan cost?",
            "what's the price of {model}",
            "pricing for {plan}?",
            "is there a free tier",
            "how much per 1k tokens",
        ),
        "zh": ("{plan_zh}多少钱？", "{model} 怎么收费", "有免费额度吗", "价格是多少"),
    },
    "api_keys": {
        "en": (
            "how do I create an api key",
            "where can I find my API key?",
            "my api key was leaked, how do I rotate it",
            "can I have several keys for one account",
        ),
        "zh": ("怎么创建 API 密钥", "我的 API key 在哪里", "密钥泄露了怎么重置", "一个账号可以有多个密钥吗"),
    },
    "rate_limits": {
        "en": (
            "what are the rate limits on {plan}?",
            "I keep getting 429 errors",
            "how many requests per minute can I send",
            "can you raise my rate limit",
        ),
        "zh": ("{plan_zh}的限流是多少", "一直报 429 错误", "每分钟能发多少请求", "能提高我的速率限制吗"),
    },
    "models": {
        "en": (
            "which model should I use for chat",
            "what's the difference between {model} and rapport-pro",
            "does {model} support images?",
            "what is the context length of {model}",
        ),
        "zh": (
            "聊天应该用哪个模型",
            "{model} 和 rapport-pro 有什么区别",
            "{model} 支持图片吗",
            "{model} 上下文多长",
        ),
    },
    "billing": {
        "en": (
            "I was charged twice this month",
            "where can I download my invoice",
            "how do I change my payment method",
            "can I get a refund?",
        ),
        "zh": ("这个月被扣了两次钱", "发票在哪里下载", "怎么更换付款方式", "可以退款吗"),
    },
    "account": {
        "en": (
            "how do I change the email on my account to {email}",
            "I can't log in to my account",
            "how do I delete my account",
            "can I add teammates to my account",
        ),
        "zh": ("怎么修改账号邮箱", "登录不上账号", "怎么注销账号", "怎么给账号添加团队成员"),
    },
    "data_privacy": {
        "en": (
            "do you train on my data?",
            "is my data stored in the EU",
            "how long do you keep my prompts",
            "are you GDPR compliant",
        ),
        "zh": ("你们会用我的数据训练吗", "数据存在哪里", "提示词会保存多久", "符合数据隐私法规吗"),
    },
    "bug_report": {
        "en": (
            "the api returns a 500 error",
            "I found a bug in the python sdk",
            "responses are cut off in the middle",
            "streaming stopped working since {date}",
        ),
        "zh": ("API 返回 500 错误", "Python SDK 有个 bug", "回复被截断了", "流式输出不工作了"),
    },
    "feature_request": {
        "en": (
            "could you add a go sdk?",
            "feature request: batch api for embeddings",
            "it would be great to have webhooks",
            "please support json mode in {model}",
        ),
        "zh": ("能不能出一个 Go SDK", "建议增加批量接口", "希望支持 webhook", "{model} 能支持 JSON 模式吗"),
    },
    "community_events": {
        "en": (
            "when is the next meetup?",
            "are there any hackathons coming up",
            "is there a community call on {date}",
            "how do I join the next workshop",
        ),
        "zh": ("下次线下活动是什么时候", "最近有黑客松吗", "社区直播是哪天", "怎么报名下次工作坊"),
    },
    "docs": {
        "en": (
            "where are the docs",
            "link to the api reference please",
            "is there documentation for the node sdk",
            "do you have code examples?",
        ),
        "zh": ("文档在哪里", "API 参考文档链接", "有 Node SDK 的文档吗", "有示例代码吗"),
    },
    "fine_tuning": {
        "en": (
            "can I fine-tune {model}?",
            "how much data do I need for fine tuning",
            "how long does a fine-tuning job take",
            "what format should my training data be in",
        ),
        "zh": ("{model} 可以微调吗", "微调需要多少数据", "微调任务要多久", "训练数据是什么格式"),
    },
    "service_status": {
        "en": (
            "is the api down?",
            "are you having an outage right now",
            "everything is super slow today",
            "where is the status page",
        ),
        "zh": ("API 挂了吗", "现在服务中断了吗", "今天特别慢", "状态页面在哪"),
    },
    "human_handoff": {
        "en": (
            "can I talk to a human",
            "I want to speak to support staff",
            "please connect me to a real person",
            "this bot is not helping, get me an agent",
        ),
        "zh": ("我要找人工客服", "转人工", "能联系真人吗", "机器人帮不了我，找客服"),
    },
    "out_of_scope": {
        "en": (
            "what's the weather like",
            "tell me a joke",
            "who won the game last night",
            "can you order me a pizza",
            "what is the meaning of life",
        ),
        "zh": ("今天天气怎么样", "讲个笑话", "昨晚比赛谁赢了", "帮我点个外卖"),
    },
}

CHATTER: dict[str, tuple[str, ...]] = {
    "en": ("lol", "nice one", "agreed", "same here", "anyone tried the new release?", "good point"),
    "zh": ("哈哈", "同意", "我也是", "有人试过新版本吗", "说得好"),
}

_EMOJI = ("🙂", "🙏", "👍", "🤔", "😅", "🚀")
_PREFIX_EN = ("", "", "", "hey, ", "quick question: ", "sorry, ", "um ")
_PREFIX_ZH = ("", "", "", "请问", "你好，", "麻烦问下，")


def _typo(text: str, rng: np.random.Generator) -> str:
    """Swap two neighbouring letters, as a hurried typist does."""
    positions = [i for i in range(len(text) - 1) if text[i].isalpha() and text[i + 1].isalpha()]
    if not positions:
        return text
    i = positions[int(rng.integers(len(positions)))]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def render(intent: str, language: str, rng: np.random.Generator) -> str:
    """One message expressing `intent` in `language` (`en` or `zh`), with variation.

    Raises:
        KeyError: naming the intent or language when there is no template for it.
    """
    lang = "zh" if language.startswith("zh") else "en"
    if intent == "chatter":
        options = CHATTER[lang]
    else:
        try:
            options = TEMPLATES[intent][lang]
        except KeyError:
            raise KeyError(f"no {lang} template for intent {intent!r}") from None
    text = options[int(rng.integers(len(options)))]
    for slot, values in _SLOTS.items():
        token = "{" + slot + "}"
        if token in text:
            text = text.replace(token, values[int(rng.integers(len(values)))])
    if lang == "en":
        text = _PREFIX_EN[int(rng.integers(len(_PREFIX_EN)))] + text
        roll = rng.random()
        if roll < 0.15:
            text = text.capitalize()
        elif roll < 0.22:
            text = text.rstrip("?!.")
        if rng.random() < 0.06:
            text = _typo(text, rng)
    else:
        text = _PREFIX_ZH[int(rng.integers(len(_PREFIX_ZH)))] + text
    if rng.random() < 0.12:
        text = f"{text} {_EMOJI[int(rng.integers(len(_EMOJI)))]}"
    return text
