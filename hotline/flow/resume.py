"""Resume: a dropped session continued from a new dial (the engine's side of it).

On a channel with a resume window (`Engine(resume_windows=…)`, USSD: `ussd.resume_window`)
and a flow with `resume: true`, every step that waits at a menu or an input the subscriber
navigated to (the back stack is not empty) leaves a copy of the session under the
subscriber's resume key, for the window; a step anywhere else (a result, the main menu)
deletes it (`copy_write`). A plain dial that finds a copy of the same owner (channel,
dialect, entry, subscriber), on a flow version still loaded, offers
"1. 继续上次操作 2. 重新开始" (`resumable`, `offer_screen`): `1` lands where the subscriber
was (state, variables, back stack), `2` starts as a plain dial would (the engine's
`_answer_offer`). The copy is read in the dial's `MGET` and written in the step's
pipeline: a step still costs two round trips.

`SessionRecord.resume` says what the resume key holds for the session: `""` nothing
known, `SAVED` a copy of a resumable step (or one found at the dial), `OFFERED` the dial
is offering to continue it.
"""

from __future__ import annotations

from hotline.flow.model import InputState, MenuState
from hotline.flow.registry import FlowRegistry
from hotline.flow.screen import Option, PromptPart, Screen
from hotline.store.sessions import ResumeWrite, SessionRecord

__all__ = [
    "CONTINUE",
    "KEY_CONTINUE",
    "KEY_RESTART",
    "KEY_TITLE",
    "OFFERED",
    "PROMPTS",
    "RESTART",
    "SAVED",
    "STATE",
    "copy_write",
    "offer_screen",
    "resumable",
    "write",
]

KEY_TITLE = "resume.title"
KEY_CONTINUE = "resume.continue"
KEY_RESTART = "resume.restart"
#: The catalog keys of the offer (part of the engine's own prompts).
PROMPTS = (KEY_TITLE, KEY_CONTINUE, KEY_RESTART)
STATE = "_resume"  # the offer's screen state (a label: the record keeps its own)
CONTINUE, RESTART = "1", "2"
# What `SessionRecord.resume` says the resume key holds.
SAVED, OFFERED = "saved", "offered"


def resumable(registry: FlowRegistry, saved: bytes | None, owner: str) -> SessionRecord | None:
    """The saved session as an offer to continue it, if it may be continued."""
    if saved is None:
        return None
    try:
        record = SessionRecord.loads(saved)
    except ValueError:
        return None
    flow = registry.get(record.flow, record.version)
    if (
        record.owner != owner
        or flow is None
        or not flow.resume
        or record.final
        or record.ended
        or not isinstance(flow.states.get(record.state), MenuState | InputState)
    ):
        return None
    record.resume = OFFERED
    record.request_id = None
    record.notice, record.invalid, record.no_input, record.page = "", 0, 0, 0
    return record


def offer_screen(record: SessionRecord) -> Screen:
    """The dial's question: continue the dropped session, or start over."""
    return Screen(
        state=STATE,
        language=record.language,
        parts=(PromptPart(KEY_TITLE),),
        options=(
            Option(CONTINUE, PromptPart(KEY_CONTINUE)),
            Option(RESTART, PromptPart(KEY_RESTART)),
        ),
        notice=PromptPart(record.notice) if record.notice else None,
        expects_input=True,
    )


def copy_write(
    target: tuple[str, int] | None, record: SessionRecord, screen: Screen
) -> bool | None:
    """What a commit does to the resume copy of `record` (the record's `resume` updated):
    True to save the record there, False to delete the copy, None to leave it alone.

    `target` is the (resume key, window) of a resumable flow on a channel with a window,
    else None; `screen` is the screen the step showed.
    """
    if target is None or record.resume == OFFERED:
        return None
    # Waiting somewhere a plain dial would not land: keep a copy to resume from.
    keep = not screen.ends and bool(record.back) and not record.final
    # Finished, or back where a dial lands: the copy goes (if there is one).
    clear = not keep and record.resume == SAVED
    record.resume = SAVED if keep else ""
    if keep:
        return True
    return False if clear else None


def write(target: tuple[str, int], keep: bool, data: bytes) -> ResumeWrite:
    """The store's write of a `copy_write` decision: `data` saved for the window, or deleted."""
    key, window = target
    return ResumeWrite(key, data if keep else None, window)
