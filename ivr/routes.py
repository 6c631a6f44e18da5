"""aiohttp routes of the voice channel.

- `POST /ivr/twilio/voice` (`ivr-twilio-voice`) and `POST /ivr/africastalking`
  (`ivr-africastalking`): parse → step → lay out (`hotline.web.turns.take_turn`), make
  sure every clip of the reply exists, answer XML. A malformed request is a 400 with the reason; anything
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
from typing import cast

from aiohttp import web
from multidict import MultiDictProxy
from yarl import URL

from hotline.base.errors import BadGatewayRequest
from hotline.flow.events import ChannelEvent
from hotline.flow.model import Flow
from hotline.web.forms import GatewayForm, body_errors, gateway_form
from hotline.web.keys import ENGINE, FLOWS_RELOADED, METRICS, SETTINGS, SPEECH_TEXT
from hotline.web.security import authority_ok
from hotline.web.turns import take_turn
from ivr.clips import ClipSpec, InvalidClipKey
from ivr.dialects import africastalking, twilio
from ivr.dialects.base import VoiceDialect
from ivr.render import Clip, Speaker, VoiceLayout, VoicePlan
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
        specs = static_specs(app[SPEAKER], app[ENGINE].registry.flows())
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
    specs = static_specs(_speaker(app), flows)
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


def _speaker(app: web.Application) -> Speaker:
    """The speaker, on the engine's catalogs (they change with a prompt reload)."""
    speaker = app[SPEAKER]
    voice = app[ENGINE].catalogs.for_channel("voice")
    if speaker.catalogs is not voice:
        speaker.catalogs = voice
        app[_LAYOUTS].clear()  # they keep the clips of fixed sentences: built again
    return speaker


def _layout(request: web.Request, dialect: VoiceDialect, route: str) -> VoiceLayout:
    """The layout for this dialect and the public base URL the platform called."""
    app = request.app
    _speaker(app)
    layouts = app[_LAYOUTS]
    key = (route, request.scheme, request.host)
    layout = layouts.get(key)
    if layout is None:
        if len(layouts) >= 16:
            layouts.clear()  # bounded: the Host header is the caller's to choose
        layout = layouts[key] = _new_layout(app, dialect, route, _base_url(request))
    return layout


def _new_layout(app: web.Application, dialect: VoiceDialect, route: str, base: URL) -> VoiceLayout:
    action = base.join(app.router[route].url_for())
    audio = str(base.join(app.router["ivr-audio"].url_for(key="k" * 16)))
    return VoiceLayout(
        speaker=app[SPEAKER],
        write=dialect.write,
        action_url=action,
        audio_prefix=audio[: -len("k" * 16 + ".wav")],
        gather_timeout=app[SETTINGS].ivr.gather_timeout,
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


async def _handle(request: web.Request, dialect: VoiceDialect, route: str) -> web.Response:
    app = request.app
    try:
        form = (await gateway_form(request, read_form)).fields
        event: ChannelEvent = dialect.parse(form, request.query)
        layout = _layout(request, dialect, route)
    except BadGatewayRequest as exc:
        return web.Response(status=exc.status_hint, text=exc.reason)
    screen, reply = await take_turn(app, event, layout.lay_out)
    if event.kind == "hangup":
        return _xml(layout.write(VoicePlan(())))
    if not await _ensure(app, reply.plan.clips) and not reply.plan.dial:
        # A transfer still happens if speech failed; anything else apologizes.
        reply = layout.lay_out(app[ENGINE].apology(screen.language))
    return _xml(reply.document)


def _xml(body: str) -> web.Response:
    return web.Response(body=body.encode("utf-8"), content_type=XML_CONTENT_TYPE, charset="utf-8")


async def _twilio(request: web.Request) -> web.Response:
    return await _handle(request, twilio.DIALECT, "ivr-twilio-voice")


async def _africastalking(request: web.Request) -> web.Response:
    return await _handle(request, africastalking.DIALECT, "ivr-africastalking")


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
