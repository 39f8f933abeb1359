"""Everything the dialog says to customers, in zh-CN and en."""

from __future__ import annotations

import re

TEXTS: dict[str, dict[str, str]] = {
    "suggest_intro": {
        "zh-CN": "这些文章也许能帮您解决问题：",
        "en": "These articles may solve your problem:",
    },
    "suggest_prompt": {
        "zh-CN": "回复 1-{n} 查看文章，回复 0 转人工客服。",
        "en": "Reply 1-{n} to read one, or 0 to talk to a person.",
    },
    "article": {"zh-CN": "《{title}》\n{summary}\n{url}", "en": "{title}\n{summary}\n{url}"},
    "ask_solved": {
        "zh-CN": "这篇文章解决您的问题了吗？回复“是”或“否”。",
        "en": "Did this solve your problem? Reply yes or no.",
    },
    "deflected": {
        "zh-CN": "太好了，很高兴帮到您！如有其他问题，随时给我们留言。",
        "en": "Great, glad that helped! Write to us any time.",
    },
    "pick_again": {
        "zh-CN": "请回复 1-{n} 之间的数字查看文章，或回复 0 转人工客服。",
        "en": "Please reply with a number from 1 to {n}, or 0 to talk to a person.",
    },
    "status_none": {
        "zh-CN": "您目前没有处理中的工单。直接描述问题即可提交新的问题。",
        "en": "You have no open tickets. Describe a problem to report a new one.",
    },
    "status_head": {"zh-CN": "您的工单：", "en": "Your tickets:"},
    "handoff_existing": {
        "zh-CN": "已为您通知客服，工单 {number} 会尽快得到回复。",
        "en": "We have told our agents; ticket {number} will be answered soon.",
    },
    "ask_field": {
        "zh-CN": "为了更快处理，请提供{label}：",
        "en": "To help us faster, please give your {label}:",
    },
    "ask_field_skip": {"zh-CN": "（不清楚可回复“跳过”）", "en": '(reply "skip" if you don\'t know)'},
    "field_invalid": {
        "zh-CN": "{label}格式不正确，请重新输入。",
        "en": "That {label} does not look right; please try again.",
    },
    "welcome": {
        "zh-CN": "您好，欢迎联系售后服务！请直接描述您遇到的问题，我们会先为您查找解决办法。"
        "回复“进度”查询工单，回复“人工”联系客服。",
        "en": "Hello and welcome to customer support! Describe your problem and we will look for a "
        'solution first. Reply "status" for your tickets, or "human" for a person.',
    },
    "categories": {"zh-CN": "常见问题分类：{names}", "en": "Popular topics: {names}"},
    "top_head": {"zh-CN": "{category}常见问题：", "en": "Top articles on {category}:"},
    "nothing_found": {"zh-CN": "暂时没有相关文章。", "en": "No articles on that yet."},
    "button_human": {"zh-CN": "转人工客服", "en": "Talk to a person"},
    "button_yes": {"zh-CN": "已解决", "en": "Solved"},
    "button_no": {"zh-CN": "没解决", "en": "Not solved"},
    "csat_thanks": {"zh-CN": "感谢您的评价！", "en": "Thank you for your rating!"},
}

STATUS_NAMES = {
    "zh-CN": {
        "new": "待处理",
        "open": "处理中",
        "pending": "等待您回复",
        "on_hold": "挂起",
        "solved": "已解决",
        "closed": "已关闭",
    },
    "en": {
        "new": "new",
        "open": "in progress",
        "pending": "waiting for you",
        "on_hold": "on hold",
        "solved": "solved",
        "closed": "closed",
    },
}

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def say(key: str, locale: str, **values: object) -> str:
    table = TEXTS[key]
    return (table.get(locale) or table["en"]).format(**values)


def detect_locale(text: str, fallback: str | None = None) -> str:
    """zh-CN when the text has Chinese characters, en when it is a sentence of Latin words; otherwise the
    channel's or customer's hint ("ok" from a WeChat user is still a Chinese speaker), else zh-CN."""
    if _CJK.search(text):
        return "zh-CN"
    if len(_LATIN_WORD.findall(text)) >= 3:
        return "en"
    if fallback:
        return "zh-CN" if fallback.lower().startswith("zh") else "en"
    return "zh-CN"


def _norm(text: str) -> str:
    return re.sub(r"[\s\W_]+", "", text.lower())


HUMAN_WORDS = {
    _norm(w)
    for w in (
        "人工",
        "转人工",
        "人工客服",
        "客服",
        "真人",
        "human",
        "agent",
        "person",
        "talk to a person",
        "talk to an agent",
        "operator",
        "人類",
        "轉人工",
    )
}
STATUS_WORDS = {
    _norm(w)
    for w in (
        "进度",
        "查询进度",
        "工单进度",
        "状态",
        "查进度",
        "status",
        "my tickets",
        "ticket status",
        "進度",
    )
}
YES_WORDS = {
    _norm(w)
    for w in (
        "是",
        "是的",
        "解决了",
        "已解决",
        "好了",
        "可以了",
        "有用",
        "yes",
        "y",
        "yep",
        "solved",
        "it worked",
        "thanks",
        "thank you",
        "谢谢",
        "对",
        "嗯",
    )
}
NO_WORDS = {
    _norm(w)
    for w in (
        "否",
        "不是",
        "没有",
        "没解决",
        "未解决",
        "不行",
        "没用",
        "no",
        "n",
        "nope",
        "not solved",
        "didn't help",
        "did not help",
        "不",
        "沒有",
    )
}
SKIP_WORDS = {_norm(w) for w in ("跳过", "不知道", "不清楚", "skip", "don't know", "n/a")}


def is_human(text: str) -> bool:
    return _norm(text) in HUMAN_WORDS


def is_status(text: str) -> bool:
    return _norm(text) in STATUS_WORDS


def yes_no(text: str) -> bool | None:
    norm = _norm(text)
    if norm in YES_WORDS:
        return True
    if norm in NO_WORDS:
        return False
    return None


def is_skip(text: str) -> bool:
    return _norm(text) in SKIP_WORDS


def number(text: str) -> int | None:
    stripped = text.strip().translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    return int(stripped) if stripped.isdigit() and len(stripped) <= 3 else None
