"""The public rating page `/csat/{token}`: the signed link in the solved notice (web form and email
customers, or anyone without buttons). GET shows five choices and a comment box; POST records it."""

from __future__ import annotations

import html

from aiohttp import web

from gateway.appkeys import OPERATIONS, TICKETS
from ticket_core.csat import validate
from ticket_core.errors import InvalidInput
from ticket_core.model import Actor, Ticket

routes = web.RouteTableDef()
STYLE = " ".join(
    (
        "body{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.5}",
        "fieldset{border:0;padding:0;display:flex;gap:.5rem}",
        "label{flex:1;text-align:center;border:1px solid #999;border-radius:.4rem;padding:.6rem}",
        "textarea{width:100%;min-height:5rem} button{margin-top:1rem;padding:.5rem 1.5rem}",
    )
)
TEXTS = {
    "en": {
        "title": "How did we do?",
        "ask": "Please rate ticket {number} from 1 (poor) to 5 (excellent).",
        "comment": "Anything to add? (optional)",
        "send": "Send",
        "thanks": "Thank you! You rated ticket {number} {score}/5.",
        "not_solved": "Ticket {number} is not solved yet; you can rate it once it is.",
    },
    "zh-CN": {
        "title": "请为本次服务评分",
        "ask": "请为工单 {number} 评分：1（很差）到 5（非常满意）。",
        "comment": "还有什么想告诉我们？（选填）",
        "send": "提交",
        "thanks": "感谢您的评价！工单 {number}：{score}/5。",
        "not_solved": "工单 {number} 尚未解决，解决后即可评分。",
    },
}


def _texts(ticket: Ticket, request: web.Request) -> dict[str, str]:
    lang = request.query.get("lang") or ticket.locale or request.headers.get("Accept-Language") or "en"
    return TEXTS["zh-CN" if lang.lower().startswith("zh") else "en"]


def _page(title: str, body: str) -> web.Response:
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=doc, content_type="text/html", charset="utf-8")


async def _ticket(request: web.Request) -> Ticket:
    ops = request.app[OPERATIONS]
    assert ops.tokens is not None, "tokens load before serving"
    ticket_id = ops.tokens.verify(request.match_info["token"])
    return await request.app[TICKETS].get(ticket_id)


@routes.get("/csat/{token}")
async def show(request: web.Request) -> web.Response:
    ticket = await _ticket(request)
    t = _texts(ticket, request)
    if ticket.status not in ("solved", "closed"):
        return _page(t["title"], f"<p>{html.escape(t['not_solved'].format(number=ticket.number))}</p>")
    current = int((ticket.csat or {}).get("score") or 0)
    choices = "".join(
        f"<label><input type='radio' name='score' value='{n}' required"
        f"{' checked' if n == current else ''}> {n}</label>"
        for n in range(1, 6)
    )
    body = (
        f"<p>{html.escape(t['ask'].format(number=ticket.number))}</p>"
        f"<form method='post'><fieldset>{choices}</fieldset>"
        f"<p><label style='border:0;padding:0'>{html.escape(t['comment'])}<br>"
        "<textarea name='comment' maxlength='2000'></textarea></label></p>"
        f"<button type='submit'>{html.escape(t['send'])}</button></form>"
    )
    return _page(t["title"], body)


@routes.post("/csat/{token}")
async def submit(request: web.Request) -> web.Response:
    ticket = await _ticket(request)
    if request.content_type == "application/json":
        data = await request.json()
        if not isinstance(data, dict):
            raise InvalidInput("the JSON body must be an object", code="invalid_json")
    else:
        data = dict(await request.post())
    score, comment = validate(data.get("score"), data.get("comment"))
    ops = request.app[OPERATIONS]
    # One rating per submission: the event id is the time, so changing one's mind records again.
    stamp = ops.clock().isoformat()
    actor = Actor("customer", ticket.requester, "")
    await ops.csat.rate(ticket, score, comment, actor, event_id=f"csat:page:{ticket.id}:{stamp}")
    t = _texts(ticket, request)
    if request.content_type == "application/json":
        return web.json_response({"ticket_number": ticket.number, "score": score, "comment": comment})
    return _page(t["title"], f"<p>{html.escape(t['thanks'].format(number=ticket.number, score=score))}</p>")
