"""The agent runs tests/test_distributed.py makes on a distributed model (in the launched ranks) and on
the whole model (in the test's process), so that both are the same code."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field
from pydantic_ai.direct import model_request, model_request_stream
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    TextPart,
    TextPartDelta,
    ThinkingPart,
    ToolCallPart,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.output import OutputObjectDefinition

from pydantic_mlx import MLXModel
from pydantic_mlx.demo import scenario


def parts(messages: Sequence[ModelMessage]) -> list[Any]:
    """What the model answered: text, reasoning and tool calls, in order."""
    found: list[Any] = []
    for message in messages:
        if isinstance(message, ModelResponse):
            for part in message.parts:
                if isinstance(part, ToolCallPart):
                    found.append(["call", part.tool_name, part.args_as_dict()])
                elif isinstance(part, TextPart | ThinkingPart):
                    found.append([type(part).__name__, part.content])
    return found


async def exercise(model: MLXModel, constrained_model: MLXModel) -> dict[str, Any]:
    """A non-streamed run with a tool call in tags, a streamed one with a call in a JSON fence, a
    cancelled run and the run after it, and a constrained run: what each answered."""
    results: dict[str, Any] = {}
    run = scenario("tool_call_tags")
    result = await run.agent(model).run(run.prompt)
    results["run"] = parts(result.all_messages())

    streamed = scenario("tool_call_json_fence")
    async with streamed.agent(model).run_stream(streamed.prompt) as stream:
        deltas = [delta async for delta in stream.stream_text(delta=True)]
    results["stream"] = parts(stream.all_messages())
    results["stream_deltas"] = "".join(deltas)

    # A run that would go on for thousands of tokens (end-of-sequence forbidden), cancelled once it streams.
    await model.load()
    eos = model.loaded.tokenizer.eos_token_ids
    endless: Any = {"max_tokens": 2000, "logit_bias": {str(token): -100.0 for token in eos}}
    streaming = asyncio.Event()

    async def cancelled_run() -> None:
        async with (
            scenario("plain_answer").agent(model).run_stream("Say hello.", model_settings=endless) as stream
        ):
            async for _ in stream.stream_text(delta=True):
                streaming.set()

    task = asyncio.create_task(cancelled_run())
    started = asyncio.create_task(streaming.wait())
    await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
    started.cancel()
    task.cancel()
    try:
        await task
        results["cancelled"] = "ended before it was cancelled"
    except asyncio.CancelledError:
        results["cancelled"] = True
    except Exception as error:
        results["cancelled"] = f"failed: {error!r}"

    again = await run.agent(model).run(run.prompt)
    results["after_cancel"] = parts(again.all_messages())
    results["after_cancel_cache_read"] = again.usage.cache_read_tokens

    output = scenario("output_tool")
    constrained = await output.agent(constrained_model).run(output.prompt)
    results["constrained"] = parts(constrained.all_messages())
    return results


class Greeting(BaseModel):
    """A bounded answer, so the grammar ends a random model's output in a few tokens."""

    word: str = Field(max_length=8)
    count: int = Field(ge=0, le=9)


async def exercise_untrained(model: MLXModel, constrained_model: MLXModel) -> dict[str, Any]:
    """`exercise` for an untrained model, whose answers are noise (and so must be bounded): a
    request, the same streamed, a cancelled endless stream and the request after it, and a
    request constrained to native output. What each answered, to compare with the whole model."""
    prompt: list[ModelMessage] = [ModelRequest.user_text_prompt("Say hello.")]
    # Sampled with a seed (on rank 0 only, in a distributed run): greedy decoding of random
    # weights repeats one token; this writes 24 different ones.
    short: Any = {"max_tokens": 24, "temperature": 1.0, "seed": 1}
    results: dict[str, Any] = {}
    response = await model_request(model, prompt, model_settings=short)
    results["run"] = [*parts([response]), response.finish_reason]

    deltas: list[str] = []
    async with model_request_stream(model, prompt, model_settings=short) as stream:
        async for event in stream:
            if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                deltas.append(event.delta.content_delta)
    results["stream"] = [*parts([stream.get()]), stream.get().finish_reason]
    results["stream_deltas"] = "".join(deltas)

    await model.load()
    eos = model.loaded.tokenizer.eos_token_ids
    endless: Any = {**short, "max_tokens": 2000, "logit_bias": {str(token): -100.0 for token in eos}}
    async with model_request_stream(model, prompt, model_settings=endless) as stream:
        async for _ in stream:
            break  # leaving the block mid-generation cancels it
    results["cancelled"] = True

    again = await model_request(model, prompt, model_settings=short)
    results["after_cancel"] = [*parts([again]), again.finish_reason]
    results["after_cancel_cache_read"] = again.usage.cache_read_tokens

    native = ModelRequestParameters(
        output_mode="native",
        output_object=OutputObjectDefinition(json_schema=Greeting.model_json_schema(), name="Greeting"),
        allow_text_output=False,
    )
    constrained = await model_request(
        constrained_model, prompt, model_settings={"max_tokens": 200}, model_request_parameters=native
    )
    results["constrained"] = [*parts([constrained]), constrained.finish_reason]
    Greeting.model_validate_json(constrained.text or "")  # the grammar held on the split model too
    return results
