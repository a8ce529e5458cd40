"""`MLXStreamedResponse`: the one mapping from parser events to PydanticAI response parts, used by
`MLXModel.request` (consumed to the end) and `MLXModel.request_stream` alike."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic_ai import _utils
from pydantic_ai.messages import FinishReason, ModelResponseStreamEvent
from pydantic_ai.models import StreamedResponse
from pydantic_ai.usage import RequestUsage

from ._chat import UNREAD_CALL_PROBLEM
from ._generation import GenerationStats, GenerationStream
from ._request_plan import RequestPlan
from ._token_markers import MarkerText
from .parsers import (
    Event,
    MalformedCall,
    ParseProblem,
    StreamParser,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    TruncatedCall,
    UnknownTool,
    UnreadCall,
)

__all__ = ["MLXStreamedResponse"]


@dataclass
class MLXStreamedResponse(StreamedResponse):
    """The streamed response of `MLXModel`: parser events mapped to parts as tokens arrive."""

    _model_name: str
    _plan: RequestPlan
    _generation: GenerationStream
    _timestamp: datetime = field(default_factory=_utils.now_utc)

    async def _get_event_iterator(self) -> AsyncIterator[ModelResponseStreamEvent]:
        plan = self._plan
        parser = StreamParser(
            plan.tool_format,
            plan.tools,
            in_reasoning=plan.in_reasoning,
            drop=plan.control_tokens,
            special_tokens=plan.marker_tokens,
        )
        mapper = _PartsMapper(self, text_is_answer=plan.text_is_answer)
        async for text in self._generation:
            # A marker token's text comes alone, as a `MarkerText`: only there is it markup.
            for event in mapper.map_events(parser.feed(text, special=type(text) is MarkerText)):
                yield event
            if mapper.done:
                self._generation.stop()
                break
        stats = self._generation.stats
        if mapper.done:
            await self._generation.aclose()
        # Cut by the token limit or by a stop sequence, a call missing its end marker is unfinished
        # (at the end of the model's own turn, a complete body without it is still a call).
        truncated = stats.finish_reason in ("length", "stop_sequence")
        for event in mapper.map_events(parser.close(truncated=truncated)):
            yield event
        problems = [] if mapper.done else parser.result().errors
        for event in mapper.map_problems(problems):
            yield event
        self._finish(stats, mapper, problems)

    def _finish(self, stats: GenerationStats, mapper: _PartsMapper, problems: Sequence[ParseProblem]) -> None:
        self._usage = RequestUsage(
            input_tokens=stats.prompt_tokens,
            output_tokens=stats.output_tokens,
            cache_read_tokens=stats.cached_tokens,
        )
        finish_reason: FinishReason | None
        if stats.finish_reason == "length":  # what was cut off (text after the calls) matters
            finish_reason = "length"
        elif mapper.calls:
            finish_reason = "tool_call"
        elif stats.finish_reason == "cancelled":
            finish_reason = None
        else:
            finish_reason = "stop"
        self.finish_reason = finish_reason
        self.provider_details = {
            "finish_reason": stats.finish_reason,
            "tool_format": self._plan.tool_format,
            "prefilled_tokens": stats.prefilled_tokens,
            "prefill_seconds": stats.prefill_seconds,
            "decode_seconds": stats.decode_seconds,
            "parse_problems": [
                {"kind": p.kind, "message": p.message, "name": p.name, "text": p.text} for p in problems
            ],
        }
        if self._plan.thinking is not None:
            self.provider_details["thinking"] = self._plan.thinking
        if self._plan.budget is not None:
            self.provider_details["thinking_budget"] = self._plan.budget.details()
        if self._plan.constraint is not None and (processor := self._plan.constraint.processor) is not None:
            self.provider_details["constrained_regions"] = processor.regions
            self.provider_details["constraint_problems"] = list(processor.problems)

    async def close_stream(self) -> None:
        await self._generation.aclose()

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def provider_name(self) -> str:
        return "mlx"

    @property
    def provider_url(self) -> None:
        return None

    @property
    def timestamp(self) -> datetime:
        return self._timestamp


class _PartsMapper:
    """The one mapping from parser output to response parts, used by `request` and the stream alike.

    Whitespace that would open a new text part is held back until more text follows, so a call
    with blank lines around it is answered by its `ToolCallPart` alone (as a parse result's
    `content` is `None` then); inside a text part every character is kept.
    """

    def __init__(self, response: MLXStreamedResponse, *, text_is_answer: bool) -> None:
        plan = response._plan  # pyright: ignore[reportPrivateUsage]
        self._parts = response._parts_manager  # pyright: ignore[reportPrivateUsage]
        self._text_is_answer = text_is_answer
        self._one_call_only = plan.one_call_only
        self._excluded_tools = plan.excluded_tools
        self._offered_tools = [t.name for t in plan.tools]
        self._withheld_calls: set[int] = set()
        self._call_ids: set[str] = set()
        self._held_text = ""
        self._in_text = False
        self._after_reasoning = False
        self.calls = 0
        self.done = False
        """Set once `parallel_tool_calls=False` has its one call: nothing after it is mapped."""

    def map_events(self, events: list[Event]) -> Iterator[ModelResponseStreamEvent]:
        for event in events:
            if self.done:
                return
            match event:
                case TextDelta(content=content):
                    yield from self._text(content)
                case UnreadCall(problem=problem):  # a call that could not be read
                    yield from self._unread_call(problem.text, problem)
                case ThinkingDelta(content=content):
                    self._in_text = False
                    self._after_reasoning = True
                    yield from self._parts.handle_thinking_delta(vendor_part_id=None, content=content)
                case ToolCallDelta():
                    yield from self._call(event)

    def map_problems(self, problems: Sequence[ParseProblem]) -> Iterator[ModelResponseStreamEvent]:
        """Unknown tools are already calls (the agent answers those with a retry), except for the
        agent's own tools that `tool_choice` excluded: the agent would run those, so their calls
        are kept as the text the model wrote (as servers do with `tool_choice="none"`)."""
        for problem in problems:
            if isinstance(problem, UnknownTool) and problem.name in self._excluded_tools:
                yield from self._text(problem.text)

    def _unread_call(
        self, text: str, problem: MalformedCall | TruncatedCall
    ) -> Iterator[ModelResponseStreamEvent]:
        """A call the parser could not read (malformed, or unfinished) is never the answer and
        never runs: it becomes a call whose arguments are its raw text, which never validate (the
        text starts with the call's markup, or is unfinished JSON). The agent then sends the model
        a retry prompt, or, when `max_tokens` cut the call off (`finish_reason="length"`), raises
        `IncompleteToolCall`, as it does for other models. Its name is the tool the parser read,
        else the one offered tool the text names, else the only tool offered, else `""` (the retry
        then lists the tools). What the parser could not read is kept in its `provider_details`,
        and the retry answering it tells the model (`_chat`).
        """
        self._held_text = ""
        self._in_text = False
        self.calls += 1
        yield self._parts.handle_tool_call_part(
            vendor_part_id=("unread", self.calls),
            tool_name=problem.name or _named_tool(text, self._offered_tools),
            args=text,
            tool_call_id=_utils.generate_tool_call_id(),
            provider_details={UNREAD_CALL_PROBLEM: problem.message},
        )
        if self._one_call_only:
            self.done = True

    def _text(self, content: str) -> Iterator[ModelResponseStreamEvent]:
        if self._after_reasoning:
            # The blank lines after a reasoning block separate it from the answer (templates
            # write them back themselves, `content.lstrip('\n')`): they are not the answer's.
            content = content.lstrip()
            if not content:
                return
            self._after_reasoning = False
        if not self._in_text and not (self._held_text + content).strip():
            self._held_text += content
            return
        content, self._held_text = self._held_text + content, ""
        self._in_text = True
        if self._text_is_answer:
            yield from self._parts.handle_text_delta(vendor_part_id=None, content=content)
        else:
            yield from self._parts.handle_thinking_delta(vendor_part_id=None, content=content)

    def _call(self, delta: ToolCallDelta) -> Iterator[ModelResponseStreamEvent]:
        if delta.name in self._excluded_tools:
            self._withheld_calls.add(delta.index)  # its text comes with the parse problems
        if delta.index in self._withheld_calls:
            return
        self._held_text = ""
        self._in_text = False
        first = delta.name is not None
        call_id = None
        if first:
            self.calls += 1
            # pydantic-ai refuses a response whose calls share an id; a model may repeat one.
            call_id = (
                delta.id if delta.id and delta.id not in self._call_ids else _utils.generate_tool_call_id()
            )
            self._call_ids.add(call_id)
        # `handle_tool_call_delta` rather than its newer `_events` wrapper: pydantic-ai-slim 2.62
        # (pinned by pydantic-evals) has only this one.
        event = self._parts.handle_tool_call_delta(
            vendor_part_id=("call", delta.index),
            tool_name=delta.name,
            args=delta.args_delta,
            tool_call_id=call_id,
        )
        if event is not None:
            yield event
        if self._one_call_only and self.calls:
            self.done = True


def _named_tool(text: str, tools: Sequence[str]) -> str:
    """The one tool in `tools` that `text` names as a whole word, else the only tool offered,
    else `""`."""
    named = [name for name in tools if re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", text)]
    if len(named) == 1:
        return named[0]
    return tools[0] if len(tools) == 1 else ""
