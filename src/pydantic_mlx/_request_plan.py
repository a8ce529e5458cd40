"""What `MLXModel` decides about a request before generation starts: the tools shown, the grammar
and thinking-budget processors, and the checked generation options, gathered in a `RequestPlan`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic_ai.exceptions import UserError
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models._tool_choice import resolve_tool_choice  # pyright: ignore[reportPrivateUsage]
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition

from ._chat import request_tool_defs
from ._generation import GenerationOptions
from ._request_settings import integer_setting
from ._thinking import ThinkingSwitch
from ._thinking_budget import ReasoningMarkers, ThinkingBudgetProcessor
from .parsers.formats import reasoning_pairs


@dataclass
class Constraint:
    """Makes the request's grammar processor on the generation thread, and keeps it for its report."""

    make: Callable[[], Any]
    processor: Any = None
    applies: bool = True

    def __call__(self) -> Any:
        # Every grammar is compiled before the prompt is prefilled: a schema that cannot be
        # constrained fails the request, rather than leaving its calls silently unconstrained.
        try:
            processor = self.make()
            processor.check()
        except RecursionError:
            raise UserError(
                "constrained decoding cannot follow a schema of this request: it is nested too deeply"
            ) from None
        except ValueError as error:
            raise UserError(f"constrained decoding cannot follow a schema of this request: {error}") from None
        self.processor = processor
        return processor


@dataclass
class Budget:
    """Makes the request's thinking-budget processor on the generation thread, and keeps it for its report."""

    budget: int
    markers: ReasoningMarkers | None
    """The family's reasoning block; `None` when the template shows none (the budget has nothing to close)."""
    in_reasoning: bool
    processor: ThinkingBudgetProcessor | None = None

    @property
    def applies(self) -> bool:
        return self.markers is not None

    def __call__(self) -> ThinkingBudgetProcessor:
        assert self.markers is not None
        self.processor = ThinkingBudgetProcessor(self.markers, self.budget, in_reasoning=self.in_reasoning)
        return self.processor

    def details(self) -> dict[str, Any]:
        """`provider_details["thinking_budget"]`: the budget, and what the response spent of it."""
        if self.markers is None:
            return {
                "budget": self.budget,
                "applied": False,
                "note": "the chat template shows no reasoning block",
            }
        processor = self.processor
        return {
            "budget": self.budget,
            "applied": True,
            "closer": self.markers.closer,
            "spent": processor.spent if processor is not None else 0,
            "closed_by_budget": bool(processor is not None and processor.closed_by_budget),
        }


def prompt_opens_reasoning(prompt_tail: str, tool_format: str) -> bool:
    """Whether the prompt (its last tokens' text, trailing spaces removed) ends inside a reasoning
    block the parser of `tool_format` reads: `<think>`, or an opener of the format's own
    (Apriel's `Here are my reasoning steps:`). Then the output starts inside reasoning."""
    openers = {"<think>", *(opener.rstrip() for opener, _ in reasoning_pairs(tool_format))}
    return prompt_tail.endswith(tuple(openers))


def opens_reasoning(prompt_tail: str, markers: ReasoningMarkers | None) -> bool:
    """Whether the prompt ends by opening the family's reasoning block (the model reasons first)."""
    return markers is not None and prompt_tail.endswith(markers.opener.strip())


def thinking_budget(
    settings: ModelSettings, params: ModelRequestParameters, switch: ThinkingSwitch
) -> int | None:
    """`mlx_thinking_budget`, checked; or 0 for `thinking=False` on a template that cannot turn
    thinking off (PydanticAI's rule: think as little as the model allows)."""
    budget = integer_setting(settings, "mlx_thinking_budget", None)
    if budget is not None and budget < 0:
        raise UserError(f"mlx_thinking_budget must not be negative, not {budget}")
    if params.thinking is False and not switch.honoured:
        return 0
    return budget


@dataclass(frozen=True)
class RequestPlan:
    """Everything decided before generation starts."""

    prompt: list[int]
    options: GenerationOptions
    tool_format: str
    tools: list[ToolDefinition]
    excluded_tools: frozenset[str]
    """The agent's tools that `tool_choice` or pydantic-ai (a withheld `defer_loading` tool) keep
    from the model: a call to one is not a call."""
    in_reasoning: bool
    text_is_answer: bool
    """False when `tool_choice` demands a call: text is then kept as thinking, not offered as output."""
    one_call_only: bool
    constraint: Constraint | None = None
    """The grammar logits processor, when constrained decoding applies to this request."""
    control_tokens: frozenset[str] = frozenset()
    marker_tokens: frozenset[str] = frozenset()
    """Special-token texts to keep out of text and thinking (the format's own markers excepted)."""
    thinking: dict[str, Any] | None = None
    """What the `thinking` setting became (`provider_details["thinking"]`), when it was set."""
    budget: Budget | None = None
    """The thinking budget, when one applies (`mlx_thinking_budget`, or `thinking=False` without a switch)."""


def offered_tools(
    settings: ModelSettings, params: ModelRequestParameters
) -> tuple[list[ToolDefinition], bool]:
    """The tools to render for this request, and whether text counts as an answer (per `tool_choice`)."""
    all_tools = request_tool_defs(params)
    if not all_tools:
        return [], True
    choice = resolve_tool_choice(settings, params)
    explicit = settings.get("tool_choice") not in (None, "auto")
    if choice == "none":
        return [], True
    if choice == "auto":
        return all_tools, True
    if choice == "required":
        return all_tools, not explicit
    mode, names = choice
    return [t for t in all_tools if t.name in names], mode == "auto" or not explicit


def demands_calls(settings: ModelSettings, params: ModelRequestParameters) -> bool:
    """Whether the answer must be tool calls: `tool_choice` demands one, or the request allows no
    text (output tools only, `ToolOutput`), which pydantic-ai resolves to an implicit `'required'`.

    A native-output answer is text (the output object's JSON), so there only an explicit choice counts.
    """
    choice = resolve_tool_choice(settings, params)
    if choice in ("none", "auto") or (isinstance(choice, tuple) and choice[0] == "auto"):
        return False
    return params.output_mode != "native" or settings.get("tool_choice") not in (None, "auto")
