"""`/admin/analytics`: the operator's page, and the JSON it draws (admin token).

- `GET /admin/analytics` — the page (HTML, its script and style under
  `/admin/analytics/static/`). It holds no figure: it asks for the admin token, keeps it
  in the tab's session storage, and fetches the data with it. Charts are SVG the page
  draws itself; nothing is loaded from elsewhere.
- `GET /admin/analytics/data?since=7d[&until=YYYY-MM-DD]` — the report as JSON
  (`Authorization: Bearer <admin token>`; 401 without it, 400 for a bad range).

Mounted only when `analytics.enabled`, Redis and `security.admin_token` are all set.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from hotline.analytics.cli import parse_since
from hotline.analytics.recorder import RECORDER
from hotline.analytics.recorder import setup as setup_recorder
from hotline.analytics.report import build_report
from hotline.web.keys import METRICS, SETTINGS
from hotline.web.security import bearer_ok

__all__ = ["STATIC", "setup"]

STATIC = Path(__file__).parent / "static"
MAX_DAYS = 400
_HEADERS = {
    "Cache-Control": "no-store",
    # The page and its files only: no other origin, no inline script.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


async def _page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "analytics.html", headers=_HEADERS)


async def _data(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    token = settings.security.admin_token
    assert token is not None  # mounted only with a token
    if not bearer_ok(request.headers.get("Authorization"), token.get_secret_value()):
        app[METRICS].rejected.labels("admin", "http", "bearer").inc()
        return web.Response(
            status=401, text="Unauthorized", headers={"WWW-Authenticate": 'Bearer realm="hotline"'}
        )
    today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
    try:
        first = parse_since(request.query.get("since", "7d"), today)
        until = request.query.get("until")
        last = dt.date.fromisoformat(until) if until else today
    except ValueError as exc:
        return web.Response(status=400, text=str(exc))
    if last < first or (last - first).days >= MAX_DAYS:
        return web.Response(status=400, text=f"since..until: at most {MAX_DAYS} days, in order")
    recorder = app[RECORDER]
    await recorder.flush()
    await recorder.settle()
    report = await build_report(recorder.store, first, last, settings.analytics.min_group)
    return web.json_response(report.to_dict(), headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    """The recorder, and the page when an admin token is configured."""
    setup_recorder(app)
    if RECORDER not in app or app[SETTINGS].security.admin_token is None:
        return
    app.router.add_get("/admin/analytics", _page, name="admin-analytics")
    app.router.add_get("/admin/analytics/data", _data, name="admin-analytics-data")
    app.router.add_static("/admin/analytics/static/", STATIC, name="admin-analytics-static")
