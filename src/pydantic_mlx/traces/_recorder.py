"""`TraceRecorder`: wraps any pydantic-ai model and remembers what each request offered the model."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters, StreamedResponse
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition

from .._chat import request_instructions, request_tool_defs
from ._trace import Trace, TraceError

__all__ = ["TraceRecorder"]


@dataclass(frozen=True)
class _Request:
    messages: list[ModelMessage]
    tools: list[ToolDefinition]
    instructions: str | None


class TraceRecorder(WrapperModel):
    """A model that passes every request to `wrapped` and records the tools and instructions it offered.

        recorder = TraceRecorder(MLXModel(path))
        result = await Agent(recorder, tools=[...]).run("...")
        save_trace(recorder.trace(result.all_messages(), name="run-1", passed=True), Path("traces"))

    One recorder may serve many runs, concurrent ones too: `trace(messages)` takes the tools and
    instructions of the last recorded request whose messages began that history.
    """

    def __init__(self, wrapped: Model) -> None:
        super().__init__(wrapped)
        self._requests: list[_Request] = []
        self._lock = threading.Lock()

    def _record(self, messages: list[ModelMessage], settings: ModelSettings | None, params: Any) -> None:
        # The wrapped model prepares the parameters the same way when it serves the request.
        _, prepared = self.wrapped.prepare_request(settings, params)
        request = _Request(
            list(messages),
            request_tool_defs(prepared),
            request_instructions(self.wrapped, messages, prepared),
        )
        with self._lock:
            self._requests.append(request)

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        self._record(messages, model_settings, model_request_parameters)
        return await super().request(messages, model_settings, model_request_parameters)

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncGenerator[StreamedResponse]:
        self._record(messages, model_settings, model_request_parameters)
        async with super().request_stream(
            messages, model_settings, model_request_parameters, run_context
        ) as stream:
            yield stream

    def trace(
        self,
        messages: Sequence[ModelMessage],
        *,
        name: str,
        passed: bool | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Trace:
        """The trace of the run whose history is `messages` (`result.all_messages()`, or what
        `capture_run_messages` caught from a run that failed). `TraceError` if this recorder served
        none of its requests."""
        history = list(messages)
        with self._lock:
            requests = list(self._requests)
        for request in reversed(requests):
            if request.messages and history[: len(request.messages)] == request.messages:
                return Trace(
                    name=name,
                    messages=history,
                    tools=list(request.tools),
                    instructions=request.instructions,
                    passed=passed,
                    metadata=dict(metadata or {}),
                )
        raise TraceError(f"trace {name!r}: this recorder served no request of that run")

    def clear(self) -> None:
        """Forget the recorded requests (a long-lived recorder keeps one entry per request)."""
        with self._lock:
            self._requests.clear()
