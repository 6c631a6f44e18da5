"""`hotline simulate`: a phone in the terminal, dialling hotline's USSD endpoint.

Screens are shown as the handset would show them, with how much of the screen budget
they use (GSM-7 septets of 182, or UTF-16 units of 80 once any Chinese is on it). Type
the keys and Enter; `h` shows this call's history, `q` hangs up. Without `--url` a
hotline runs inside this process on a free loopback port (embedded defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from hotline.base.config import Settings, UssdSettings
from hotline.dialogue.phone import PhoneError, Screen, UssdPhone
from hotline.dialogue.server import in_process

__all__ = ["register", "screen_budget"]

# GSM 03.38 basic set; the extension characters cost two septets.
_GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = "^{}\\[~]|€\f"


def screen_budget(text: str, ussd: UssdSettings) -> tuple[int, int, str]:
    """(used, limit, encoding) of one screen, as the USSD channel budgets it."""
    if all(ch in _GSM7 or ch in _GSM7_EXT for ch in text):
        used = sum(2 if ch in _GSM7_EXT else 1 for ch in text)
        return used, ussd.gsm7_limit, "GSM-7"
    return len(text.encode("utf-16-le")) // 2, ussd.ucs2_limit, "UCS-2"


def register(sub: Any) -> None:
    sim = sub.add_parser("simulate", help="a USSD phone in the terminal")
    sim.add_argument("--url", help="a running hotline (default: start one in this process)")
    sim.add_argument("--msisdn", default="+8613800138000", help="the caller's number")
    sim.add_argument("--code", default="*100#", help="the USSD code to dial")
    sim.add_argument("--config", type=Path, help="settings file (default: ./hotline.yaml)")
    sim.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hotline.cli import settings_from_args

    settings = settings_from_args(args)
    console = Console(highlight=False)
    try:
        return asyncio.run(_phone(console, settings, args))
    except KeyboardInterrupt:
        console.print("[dim]hung up[/]")
        return 130


@contextlib.asynccontextmanager
async def _server(settings: Settings, url: str | None) -> AsyncIterator[str]:
    if url is not None:
        yield url
        return
    # The embedded server's warnings (in-process sessions) are for operators, not here.
    logging.getLogger("hotline").setLevel(logging.ERROR)
    async with in_process(settings) as server:
        yield server.url


def _show(console: Console, screen: Screen, ussd: UssdSettings) -> None:
    used, limit, encoding = screen_budget(screen.text, ussd)
    colour = "red" if used > limit else "green"
    kind = "END" if screen.ends else "CON"
    console.print(
        Panel(
            escape(screen.text),
            title=f"[bold]{kind}[/]",
            subtitle=f"[{colour}]{used}/{limit} {encoding}[/]",
            width=36,  # about a feature phone's screen; long lines wrap as on a handset
        )
    )


async def _ask(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None


def _failed(console: Console, exc: PhoneError) -> None:
    """One clear line for an answer a gateway could not show; the session is over."""
    console.print(f"[red]hotline simulate: {escape(str(exc))}[/]")
    console.print(
        "[dim]a gateway ends the session here (the handset shows "
        '"Connection problem or invalid MMI code")[/]'
    )


async def _phone(console: Console, settings: Settings, args: argparse.Namespace) -> int:
    """The terminal phone; exit status 1 when the last answer was a failure."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and ↑ history for input())
    async with _server(settings, args.url) as base_url, aiohttp.ClientSession() as http:
        phone = UssdPhone(http, base_url, args.msisdn)
        console.print(
            f"[dim]{escape(base_url)} — dialling {escape(args.code)} as {escape(args.msisdn)}; "
            "keys + Enter, h history, q hang up[/]"
        )
        history: list[str] = []
        failed = False

        async def send(keys: str | None) -> None:
            nonlocal failed
            try:
                screen = await (phone.dial(args.code) if keys is None else phone.press(keys))
            except PhoneError as exc:
                failed = True
                _failed(console, exc)
                return
            failed = False
            _show(console, screen, settings.ussd)

        await send(None)
        while True:
            prompt = "dial again? (Enter, q) " if phone.ended else "> "
            line = await _ask(prompt)
            if line is None or line.strip().lower() == "q":
                console.print("[dim]hung up[/]")
                return 1 if failed else 0
            keys = line.strip()
            if keys.lower() == "h":
                console.print(f"[dim]history: {escape(' → '.join(history) or '(none)')}[/]")
                continue
            if phone.ended:
                history = []
                await send(None)
                continue
            if not keys:
                continue
            history.append(keys)
            await send(keys)
