"""aiohttp routes of the voice channel.

- `POST /ivr/twilio/voice` (`ivr-twilio-voice`) and `POST /ivr/africastalking`
  (`ivr-africastalking`): verify, parse, `engine.step`, make sure every clip of the
  reply exists, answer XML. A malformed request is a 400 with the reason; anything
  failing on our side (Redis, speech) still answers a valid document that apologizes.
- `GET/HEAD /ivr/audio/{key}.wav` (`ivr-audio`): a clip by its sealed key, rendered
  on demand if this worker never saw it.

Request authentication (Twilio signature, Africa's Talking allow-list and path token)
happens before these handlers, in the gateway guards the app factory installs
(`hotline.web.guards`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import cast

from aiohttp import web
from multidict import MultiDictProxy
from yarl import URL

from hotline.base.errors import BadGatewayRequest, SessionStoreUnavailable
from hotline.flow.events import ChannelEvent
from hotline.flow.model import Flow
from hotline.flow.screen import Screen
from hotline.web.forms import GatewayForm, body_errors, gateway_form
from hotline.web.keys import ENGINE, FLOWS_RELOADED, METRICS, PSEUDONYM, SETTINGS, SPEECH_TEXT
from hotline.web.security import authority_ok
from ivr.clips import ClipSpec, InvalidClipKey
from ivr.dialects import africastalking, twilio
from ivr.render import AGENT_KEY, AGENT_PARAM, Clip, Speaker, VoiceLayout, VoicePlan
from ivr.tts import SpeechService, TtsError
from ivr.voicexml import XML_CONTENT_TYPE
from ivr.warmup import (
    WarmReport,
    speaker_from_settings,
    speech_from_settings,
    static_specs,
    warm,
)

__all__ = ["SPEAKER", "SPEECH", "WARMUP", "read_form", "setup"]

log = logging.getLogger(__name__)

SPEAKER = web.AppKey("ivr.SPEAKER", Speaker)
SPEECH = web.AppKey("ivr.SPEECH", SpeechService)
WARMUP = web.AppKey("ivr.WARMUP", asyncio.Task)
_LAYOUTS: web.AppKey[dict[tuple[str, str, str], VoiceLayout]] = web.AppKey("ivr.LAYOUTS")
WARM_DELAY = 1.0
_URLENCODED = "application/x-www-form-urlencoded"
_FORM_TYPES = (_URLENCODED, "multipart/form-data")
_AUDIO_HEADERS = {
    "Content-Type": "audio/wav",
    "Cache-Control": "public, max-age=31536000, immutable",
    "Accept-Ranges": "bytes",
}


def setup(app: web.Application) -> None:
    """Mount the voice routes and the speech worker's cleanup context."""
    app[_LAYOUTS] = {}
    app.cleanup_ctx.append(_speech_ctx)
    app[FLOWS_RELOADED].append(_warm_reloaded)
    app.router.add_post("/ivr/twilio/voice", _twilio, name="ivr-twilio-voice")
    app.router.add_post("/ivr/africastalking", _africastalking, name="ivr-africastalking")
    app.router.add_get(r"/ivr/audio/{key:[A-Za-z0-9_-]{16,2048}}.wav", _audio, name="ivr-audio")


async def _speech_ctx(app: web.Application) -> AsyncIterator[None]:
    # Runs after the engine's context (setup is called after the core's are appended).
    settings = app[SETTINGS]
    ivr = settings.ivr
    app[SPEAKER] = speaker_from_settings(settings, app[ENGINE].catalogs)
    app[SPEECH_TEXT] = _speech_text(app[SPEAKER])
    service = speech_from_settings(settings, app.get(METRICS))
    app[SPEECH] = service
    task = None
    if ivr.warm_prompts:
        specs = static_specs(app[SPEAKER], app[ENGINE].registry.flows(), bool(ivr.agent_number))
        task = asyncio.create_task(_warm(service, specs))
        app[WARMUP] = task
    yield
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await service.close()


async def _warm(service: SpeechService, specs: list[ClipSpec]) -> WarmReport:
    # Let startup finish first; short-lived apps (tests, health probes) never pay for it.
    await asyncio.sleep(WARM_DELAY)
    report = await warm(service, specs)
    log.info(
        "voice prompts ready: %d rendered, %d cached, %d failed",
        report.rendered,
        report.cached,
        report.failed,
    )
    return report


async def _warm_reloaded(app: web.Application, flows: list[Flow]) -> None:
    """After a flow reload: render the new flows' static clips, as at startup (the core
    runs this in the background; an error here is logged there, the reload stands)."""
    ivr = app[SETTINGS].ivr
    if not ivr.warm_prompts:
        return
    specs = static_specs(app[SPEAKER], flows, bool(ivr.agent_number))
    report = await warm(app[SPEECH], specs)
    log.info(
        "voice prompts ready after reload: %d rendered, %d cached, %d failed",
        report.rendered,
        report.cached,
        report.failed,
    )


def _speech_text(speaker: Speaker) -> Callable[[str], str | None]:
    """Clip URL → the sentence it speaks, for in-process tools (dialogue runs)."""

    def speech_text(url: str) -> str | None:
        name = URL(url).name
        if not name.endswith(".wav"):
            return None
        try:
            return speaker.sealer.open(name[: -len(".wav")]).text
        except InvalidClipKey:
            return None

    return speech_text


def _base_url(request: web.Request) -> URL:
    configured = request.app[SETTINGS].ivr.public_base_url
    if configured:
        return URL(configured.rstrip("/"))
    if not authority_ok(request.host):
        raise BadGatewayRequest("malformed Host header")
    try:
        return URL.build(scheme=request.scheme, authority=request.host)
    except ValueError:
        raise BadGatewayRequest("malformed Host header") from None


def _layout(request: web.Request, dialect: ModuleType, route: str) -> VoiceLayout:
    """The layout for this dialect and public base URL (kept: its memos are per layout).

    Rebuilt when a flow reload moved the default flow's start state, which decides where
    the agent option is offered.
    """
    app = request.app
    layouts = app[_LAYOUTS]
    key = (route, request.scheme, request.host)
    flow = app[ENGINE].registry.current(app[SETTINGS].default_flow)
    root_state = flow.start if flow else None
    layout = layouts.get(key)
    if layout is None or layout.root_state != root_state:
        if len(layouts) >= 16:
            layouts.clear()  # bounded: the Host header is the caller's to choose
        base = _base_url(request)
        layout = layouts[key] = _new_layout(app, dialect, route, base, root_state)
    return layout


def _new_layout(
    app: web.Application, dialect: ModuleType, route: str, base: URL, root_state: str | None
) -> VoiceLayout:
    settings = app[SETTINGS]
    action = base.join(app.router[route].url_for())
    audio = str(base.join(app.router["ivr-audio"].url_for(key="k" * 16)))
    return VoiceLayout(
        speaker=app[SPEAKER],
        write=dialect.write,
        action_url=action,
        audio_prefix=audio[: -len("k" * 16 + ".wav")],
        session_ttl=settings.ivr.session_ttl,
        gather_timeout=settings.ivr.gather_timeout,
        root_state=root_state,
        agent_number=settings.ivr.agent_number,
    )


async def read_form(request: web.Request) -> GatewayForm:
    """The voice gateways' form reader (`hotline.web.forms`): aiohttp's lenient reading.

    The guard calls it and the handler gets the result back from the request. For a
    UTF-8 form whose end is not whitespace (which aiohttp strips), aiohttp's fields are
    exactly the guard's own reading, so it checks sizes and the signature on them.
    """
    if request.content_type not in _FORM_TYPES:
        raise BadGatewayRequest("Content-Type must be application/x-www-form-urlencoded")
    try:
        with body_errors(request):  # a corrupt or aborted body named, not a bug
            form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise BadGatewayRequest("body is too large") from None
    except (ValueError, LookupError) as exc:  # LookupError: an unknown charset parameter
        raise BadGatewayRequest(f"unreadable form: {exc}") from None
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if request.content_type != _URLENCODED or (request.charset or "utf-8").lower() != "utf-8":
        return GatewayForm(fields)
    body = await request.read()  # cached by post()
    if body[-1:].isspace():
        return GatewayForm(fields)
    return GatewayForm(fields, cast("MultiDictProxy[str]", form))


async def _ensure(app: web.Application, clips: tuple[Clip, ...]) -> bool:
    """Make sure the platform can fetch every clip; False if speech failed or timed out."""
    service = app[SPEECH]
    missing = service.missing([clip.spec for clip in clips])
    if not missing:
        return True
    try:
        async with asyncio.timeout(app[SETTINGS].ivr.tts_timeout):
            for spec in missing:
                await service.ensure(spec)
    except (TtsError, TimeoutError) as exc:
        # The class only: a message could quote the sentence, and a spoken balance is words.
        log.warning("ivr: speech failed (%s); answering with the apology", type(exc).__name__)
        return False
    return True


def _who(app: web.Application, event: ChannelEvent) -> str:
    return app[PSEUDONYM](event.subscriber)  # never the number itself


async def _handle(request: web.Request, dialect: ModuleType, route: str) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    try:
        form = (await gateway_form(request, read_form)).fields
        event: ChannelEvent = dialect.parse(form, request.query)
        layout = _layout(request, dialect, route)
    except BadGatewayRequest as exc:
        return web.Response(status=exc.status_hint, text=exc.reason)
    engine = app[ENGINE]
    agent_language = request.query.get(AGENT_PARAM, "")
    if (
        settings.ivr.agent_number
        and event.kind == "input"
        and event.text == AGENT_KEY
        and agent_language in settings.languages
    ):
        plan = layout.transfer(agent_language, settings.ivr.agent_number)
        await _ensure(app, plan.clips)  # the transfer happens even if speech fails
        return _xml(layout.write(plan))
    screen: Screen
    try:
        # The session stores the reply in compact form (`VoiceLayout.reply`).
        turn = await engine.step(event, layout.stored)
        screen, reply = turn.screen, layout.document(turn.reply)
    except SessionStoreUnavailable as exc:
        log.warning("ivr: session store unavailable (%s); apologizing", exc)
        screen = engine.apology()
        reply = layout.render(screen)
    except Exception:
        log.exception("ivr: step failed for subscriber %s", _who(app, event))
        screen = engine.apology()
        reply = layout.render(screen)
    if event.kind == "hangup":
        return _xml(layout.write(VoicePlan(())))
    if not await _ensure(app, layout.plan(screen).clips):
        reply = layout.render(engine.apology(screen.language))
    return _xml(reply)


def _xml(body: str) -> web.Response:
    return web.Response(body=body.encode("utf-8"), content_type=XML_CONTENT_TYPE, charset="utf-8")


async def _twilio(request: web.Request) -> web.Response:
    return await _handle(request, twilio, "ivr-twilio-voice")


async def _africastalking(request: web.Request) -> web.Response:
    return await _handle(request, africastalking, "ivr-africastalking")


async def _audio(request: web.Request) -> web.StreamResponse:
    """Serve a clip with a content-address ETag, long caching, HEAD and Range.

    Hand-written rather than `FileResponse` because its ETag is mtime-based and so
    differs between workers that rendered the same clip; ours is the clip digest. It is
    a weak ETag: two workers rendering one clip get the same speech but eSpeak's output
    length can differ by a few samples, so the bytes are not guaranteed identical. The
    tag hashes the sealed URL key, not `spec.digest`: that is an unkeyed hash of the
    spoken text, and a few thousand guesses would recover a balance from it.
    """
    app = request.app
    key = request.match_info["key"]
    try:
        spec = app[SPEAKER].sealer.open(key)
    except InvalidClipKey:
        raise web.HTTPNotFound(text="no such clip") from None
    service = app[SPEECH]
    try:
        path = await service.ensure(spec)
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        service.forget(spec)  # removed from disk behind our back: render again
        try:
            data = await asyncio.to_thread((await service.ensure(spec)).read_bytes)
        except (TtsError, OSError):
            return web.Response(status=503, headers={"Retry-After": "1"}, text="speech busy")
    except TtsError:
        return web.Response(status=503, headers={"Retry-After": "1"}, text="speech busy")
    headers = dict(_AUDIO_HEADERS)
    tag = f'"{hashlib.sha256(key.encode("ascii")).hexdigest()[:32]}"'
    headers["ETag"] = f"W/{tag}"
    wanted = {
        given.strip().removeprefix("W/")
        for given in request.headers.get("If-None-Match", "").split(",")
    }
    if tag in wanted or "*" in wanted:
        return web.Response(status=304, headers=headers)
    try:
        window = request.http_range
    except ValueError:
        return _unsatisfiable(len(data), headers)
    if window.start is None and window.stop is None:
        return web.Response(body=data, headers=headers)
    start, stop, _ = window.indices(len(data))
    if start >= stop:
        return _unsatisfiable(len(data), headers)
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
    return web.Response(status=206, body=data[start:stop], headers=headers)


def _unsatisfiable(size: int, headers: dict[str, str]) -> web.Response:
    headers = {k: v for k, v in headers.items() if k != "Content-Type"}
    headers["Content-Range"] = f"bytes */{size}"
    return web.Response(status=416, headers=headers)
