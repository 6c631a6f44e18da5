"""The readable pass/fail report of dialogue runs (rich markup; plain when piped)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from hotline.dialogue.runner import DialogueResult

__all__ = ["print_result", "print_summary"]


def _one_line(text: str) -> str:
    return " ⏎ ".join(line for line in text.splitlines() if line.strip())


def print_result(console: Console, result: DialogueResult, *, verbose: bool = False) -> None:
    """One header line per dialogue; every step when it failed (or with `verbose`)."""
    dialogue = result.dialogue
    where = escape(dialogue.path)
    if result.skipped:
        console.print(
            f"[yellow]SKIP[/] {where} — {escape(dialogue.name)}: {escape(result.skipped)}"
        )
        return
    mark = "[green]PASS[/]" if result.ok else "[bold red]FAIL[/]"
    millis = sum(s.seconds for s in result.steps) * 1000
    console.print(
        f"{mark} {where} — {escape(dialogue.name)} "
        f"[dim]({len(result.steps)}/{len(dialogue.steps)} steps, {millis:.0f} ms)[/]"
    )
    if result.failure:
        console.print(f"  [red]{escape(result.failure)}[/]")
    if result.ok and not verbose:
        return
    for step in result.steps:
        tick = "[green]✓[/]" if step.ok else "[red]✗[/]"
        shown = escape(_one_line(str(step.screen))) if step.screen else "(no answer)"
        console.print(f"  {tick} {where}:{step.line}: {escape(step.step.describe())} → {shown}")
        for problem in step.problems:
            console.print(f"      [red]{escape(problem)}[/]")


def print_summary(console: Console, results: list[DialogueResult]) -> None:
    passed = sum(r.ok for r in results)
    skipped = sum(bool(r.skipped) for r in results)
    failed = len(results) - passed - skipped
    colour = "green" if failed == 0 else "red"
    console.print(
        f"[{colour}]{passed} passed, {failed} failed, {skipped} skipped[/] "
        f"({len(results)} dialogue(s))"
    )
