"""`POST /ussd/africastalking/events`: Africa's Talking end-of-session notifications.

Sent once per session (reference/ussd.md §1.4) with `status` Success / Incomplete /
Failed and `hopsCount`. The flow and the last state come from our own session record
(the notification does not name them), so outcomes are counted per flow, and an
`Incomplete` session counts as abandoned at the state its subscriber left. Nothing of
the notification is logged but the status and the hop count: `input` and
`lastAppResponse` can hold a balance, `phoneNumber` is personal data.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from hotline.base.errors import BadGatewayRequest, SessionStoreUnavailable
from hotline.base.logs import note
from hotline.store.sessions import SessionRecord, session_key, subscriber_key
from hotline.web.forms import gateway_form
from hotline.web.keys import METRICS, PSEUDONYM, SESSIONS, SETTINGS
from ussd.form import read_form

__all__ = ["CHANNEL", "DIALECT", "STATUSES", "handle", "setup"]

log = logging.getLogger(__name__)

CHANNEL = "ussd"
DIALECT = "africastalking"
STATUSES = frozenset({"Success", "Incomplete", "Failed"})
MAX_HOPS = 10_000
_SESSION_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_HOPS = re.compile(r"[0-9]{1,9}")  # ASCII only: `str.isdigit` admits ², which int() refuses
_PHONE = re.compile(r"\+?[0-9]{3,20}")  # as the callback's dialect: ASCII digits only


def _bad(reason: str) -> web.Response:
    return web.Response(status=400, text=reason)


async def _last_state(request: web.Request, session_id: str, phone: str) -> tuple[str, str]:
    """(flow, state) the session was in, from our store; `unknown` when it is gone."""
    app = request.app
    env = app[SETTINGS].env
    try:
        raw, _ = await app[SESSIONS].load(
            session_key(env, CHANNEL, session_id), subscriber_key(env, app[PSEUDONYM](phone))
        )
    except SessionStoreUnavailable:
        return "unknown", "unknown"
    if raw is None:
        return "unknown", "unknown"
    try:
        record = SessionRecord.loads(raw)
    except ValueError:
        return "unknown", "unknown"
    return record.flow or "unknown", record.state or "unknown"


async def handle(request: web.Request) -> web.Response:
    """Count the outcome; always 200 for a well-formed notification (AT ignores the body)."""
    try:
        form = (await gateway_form(request, read_form)).fields
    except BadGatewayRequest as exc:
        return _bad(exc.reason)
    session_id = form.get("sessionId", "")
    status = form.get("status")
    hops_text = form.get("hopsCount", "0").strip()
    phone = form.get("phoneNumber", "")
    if not _SESSION_ID.fullmatch(session_id):
        return _bad("sessionId must be 1-128 characters of A-Z a-z 0-9 _ . : -")
    if status not in STATUSES:
        return _bad("status must be one of Success, Incomplete, Failed")
    if not _HOPS.fullmatch(hops_text):
        return _bad("hopsCount must be a whole number (at most 9 digits)")
    if phone and not _PHONE.fullmatch(phone.strip()):
        return _bad("phoneNumber must be an E.164 number (+ and 3-20 digits 0-9)")
    hops = min(int(hops_text), MAX_HOPS)
    flow, state = await _last_state(request, session_id, phone)
    metrics = request.app[METRICS]
    metrics.gateway_sessions.labels(DIALECT, flow, status).inc()
    metrics.gateway_hops.labels(DIALECT, flow, status).observe(hops)
    if status == "Incomplete":
        metrics.sessions_abandoned.labels(CHANNEL, flow, state).inc()
    note(flow=flow, state=state, outcome="event", gateway_status=status, hops=hops)
    if status == "Failed":
        log.warning("gateway reported a failed USSD session", extra={"fields": {"hops": hops}})
    return web.Response(text="OK")


def setup(app: web.Application) -> None:
    app.router.add_post(f"/ussd/{DIALECT}/events", handle, name=f"ussd-{DIALECT}-events")
