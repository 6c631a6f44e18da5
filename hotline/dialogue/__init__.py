"""Scripted dialogues for flow authors: dial, press, expect — over the public endpoints."""

from hotline.dialogue.runner import DialogueResult, StepResult, run_dialogue
from hotline.dialogue.script import Dialogue, Step, dialogue_files, load_dialogue

__all__ = [
    "Dialogue",
    "DialogueResult",
    "Step",
    "StepResult",
    "dialogue_files",
    "load_dialogue",
    "run_dialogue",
]
