"""PydanticAI's `thinking` setting, carried to the switch a chat template offers for it.

Templates of reasoning models take their switch as a variable given to `apply_chat_template`:
`enable_thinking` (Qwen3, GLM-4.5+, SmolLM3, Gemma 4), `thinking` (DeepSeek V3.1+, Kimi K2.5) or
`reasoning_effort` (gpt-oss's harmony: `low`/`medium`/`high`; Mistral's: `none`/`high`). Which one a
template reads is found by parsing it (Jinja's `find_undeclared_variables`), not from the model's
name, so a fine-tune that keeps its family's template keeps its switch. A template without a switch
gets nothing: `thinking_switch` says so, and `MLXModel` reports it in `provider_details`.

Pure Python (Jinja only): the demo model's training data is rendered with the same switches.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import jinja2
from jinja2 import meta

__all__ = ["EFFORT_LEVELS", "ThinkingSwitch", "thinking_switch"]

EFFORT_LEVELS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
"""PydanticAI's effort levels (and `none`), least to most: a template's own levels are matched by rank."""

_DEFAULT_EFFORTS = ("low", "medium", "high")
"""gpt-oss's levels, assumed for a `reasoning_effort` template that names fewer than two levels."""

ThinkingLevel = bool | Literal["minimal", "low", "medium", "high", "xhigh", "max"]


@dataclass(frozen=True)
class ThinkingSwitch:
    """What one request's `thinking` setting becomes for one chat template."""

    template_kwargs: dict[str, Any] = field(default_factory=lambda: dict[str, Any]())
    """Variables for `apply_chat_template` (`{"enable_thinking": False}`, `{"reasoning_effort": "low"}`)."""
    honoured: bool = True
    """False when the template has no switch for what was asked (the setting changes nothing)."""
    note: str | None = None
    """Why the setting was not honoured, or how it was approximated (effort on an on/off switch)."""

    def details(self, thinking: ThinkingLevel | None) -> dict[str, Any]:
        """The `provider_details["thinking"]` of a response."""
        details: dict[str, Any] = {"requested": thinking, "template_kwargs": dict(self.template_kwargs)}
        details["honoured"] = self.honoured
        if self.note:
            details["note"] = self.note
        return details


def thinking_switch(template: str | None, thinking: ThinkingLevel | None) -> ThinkingSwitch:
    """The template variables that carry `thinking` to `template` (`None`: the template's default)."""
    if thinking is None:
        return ThinkingSwitch()
    variables = _template_variables(template) if template else frozenset[str]()
    kwargs: dict[str, Any] = {}
    notes: list[str] = []
    on = thinking is not False
    for name in ("enable_thinking", "thinking"):
        if name in variables:
            kwargs[name] = on
            if isinstance(thinking, str) and "reasoning_effort" not in variables:
                notes.append(f"the template's `{name}` is on or off: effort {thinking!r} means on")
            break
    if "reasoning_effort" in variables:
        levels = _effort_levels(template or "")
        if thinking is False:
            effort = levels[0]
            if effort != "none" and not kwargs:
                notes.append(f"the template cannot turn thinking off: its lowest effort {effort!r} is used")
            kwargs["reasoning_effort"] = effort
        elif isinstance(thinking, str):
            effort = _nearest_level(thinking, levels)
            if effort != thinking:
                notes.append(f"effort {thinking!r} is {effort!r}, the nearest level the template takes")
            kwargs["reasoning_effort"] = effort
        # `True`: the template's own default effort.
    if not variables & {"enable_thinking", "thinking", "reasoning_effort"}:
        return ThinkingSwitch(
            honoured=False,
            note="the chat template has no thinking switch (enable_thinking, thinking or reasoning_effort)",
        )
    return ThinkingSwitch(kwargs, note="; ".join(notes) or None)


@functools.lru_cache(maxsize=16)
def _template_variables(template: str) -> frozenset[str]:
    """The variables a template reads from its caller (`enable_thinking`, `tools`, ...)."""
    try:
        parsed = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(template)
    except jinja2.TemplateSyntaxError:
        # `{% generation %}` and other tags of transformers' own environment: look for the names.
        return frozenset(re.findall(r"\b(enable_thinking|thinking|reasoning_effort)\b", template))
    return frozenset(meta.find_undeclared_variables(parsed))


@functools.lru_cache(maxsize=16)
def _effort_levels(template: str) -> tuple[str, ...]:
    """The effort levels a `reasoning_effort` template names (as quoted strings), least first."""
    named = [level for level in EFFORT_LEVELS if re.search(rf"""["']{level}["']""", template)]
    return tuple(named) if len(named) >= 2 else _DEFAULT_EFFORTS


def _nearest_level(effort: str, levels: tuple[str, ...]) -> str:
    """The level in `levels` of the rank nearest `effort`'s (a tie goes to the lower one)."""
    rank = EFFORT_LEVELS.index(effort)
    return min(
        (level for level in levels if level != "none"),
        key=lambda level: abs(EFFORT_LEVELS.index(level) - rank),
    )
