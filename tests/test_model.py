"""MLXModel on the tiny demo model: real MLX generation, greedy, on the exact prompts it was trained on.

Every agent here is a `pydantic_mlx.demo.SCENARIOS` configuration, so the model's output is the
scripted turn; what these tests check is what MLXModel makes of it (parts, calls, retries, usage,
settings, the prompt cache, concurrency and cancellation).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic_ai import Agent, NativeOutput, capture_run_messages
from pydantic_ai.direct import model_request, model_request_stream
from pydantic_ai.exceptions import IncompleteToolCall, UnexpectedModelBehavior, UsageLimitExceeded, UserError
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.settings import ModelSettings, ToolOrOutput
from pydantic_ai.tools import Tool
from pydantic_ai.usage import UsageLimits

from pydantic_mlx import MLXModel
from pydantic_mlx._chat import render_request
from pydantic_mlx.demo import CityInfo, scenario

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def model_path(demo_model_path: Path) -> Path:
    return demo_model_path


@pytest.fixture(scope="module")
def model(model_path: Path) -> MLXModel:
    # Unconstrained: these tests follow what the model writes as it was trained to, mistakes
    # included (a call to an undeclared tool and its retry, text where a call was required),
    # which constrained decoding (the default, tested in test_model_constrained.py) rules out.
    return MLXModel(model_path, constrained=False)


def responses(messages: list[ModelMessage]) -> list[ModelResponse]:
    return [m for m in messages if isinstance(m, ModelResponse)]


def turn_text(name: str, turn: int = 0) -> str:
    return scenario(name).turns[turn].text


async def first_response(model: MLXModel, name: str, settings: ModelSettings) -> ModelResponse:
    """The model's first response in scenario `name` under `settings` (the run is stopped after it)."""
    sc = scenario(name)
    with capture_run_messages() as messages, contextlib.suppress(UsageLimitExceeded, UnexpectedModelBehavior):
        await sc.agent(model).run(
            sc.prompt, model_settings=settings, usage_limits=UsageLimits(request_limit=1)
        )
    return responses(messages)[0]


# --- agent runs ---------------------------------------------------------------------------------


async def test_plain_answer(model: MLXModel) -> None:
    sc = scenario("plain_answer")
    result = await sc.agent(model).run(sc.prompt)
    assert result.output == turn_text("plain_answer")
    response = result.all_messages()[-1]
    assert isinstance(response, ModelResponse)
    assert response.parts == [TextPart(turn_text("plain_answer"))]
    assert response.finish_reason == "stop"
    assert response.provider_name == "mlx"
    assert response.model_name == model.model_name == Path(model.loaded.source).name  # type: ignore[arg-type]
    assert response.timestamp.tzinfo is not None


async def test_tool_call_in_tags_runs_the_tool(model: MLXModel) -> None:
    sc = scenario("tool_call_tags")
    result = await sc.agent(model).run(sc.prompt)
    assert result.output == "README.md says: Demo, a tiny project."
    call_response, answer = responses(result.all_messages())
    [call] = call_response.parts
    assert isinstance(call, ToolCallPart)
    assert (call.tool_name, call.args_as_dict()) == ("read_file", {"path": "README.md"})
    assert call.tool_call_id  # generated: the hermes format carries no ids
    assert call_response.finish_reason == "tool_call"
    tool_return = result.all_messages()[2]
    assert isinstance(tool_return, ModelRequest)
    [returned] = tool_return.parts
    assert isinstance(returned, ToolReturnPart)
    assert returned.content == "# Demo\nA tiny project."
    assert returned.tool_call_id == call.tool_call_id
    assert answer.finish_reason == "stop"


async def test_tool_call_streamed(model: MLXModel) -> None:
    sc = scenario("tool_call_tags")
    async with sc.agent(model).run_stream(sc.prompt) as result:
        chunks = [chunk async for chunk in result.stream_text(delta=True)]
    assert "".join(chunks) == "README.md says: Demo, a tiny project."
    [call_response, _] = responses(result.all_messages())
    assert [type(p) for p in call_response.parts] == [ToolCallPart]


async def test_request_stream_events_match_request(model: MLXModel) -> None:
    """The stream and `request()` go through the same mapping: same parts either way."""
    sc = scenario("tool_call_json_fence")
    agent = sc.agent(model)
    events: list[Any] = []
    async with agent.iter(sc.prompt) as run:
        async for node in run:
            if Agent.is_model_request_node(node):
                async with node.stream(run.ctx) as stream:
                    events.extend([event async for event in stream])
    streamed = responses(run.result.all_messages()) if run.result else []
    requested = responses((await agent.run(sc.prompt)).all_messages())
    assert [r.parts[0].__class__ for r in streamed] == [r.parts[0].__class__ for r in requested]
    assert streamed[0].parts[0].args_as_dict() == requested[0].parts[0].args_as_dict()  # type: ignore[union-attr]
    assert any(isinstance(e, PartStartEvent) and isinstance(e.part, ToolCallPart) for e in events)
    text_deltas = [e.delta.content_delta for e in events if isinstance(e, PartDeltaEvent)]
    text_deltas = [d for d in text_deltas if isinstance(d, str)]
    starts = [
        e.part.content for e in events if isinstance(e, PartStartEvent) and isinstance(e.part, TextPart)
    ]
    assert "".join(starts + text_deltas) == requested[-1].parts[0].content  # type: ignore[union-attr]


async def test_fenced_json_call(model: MLXModel) -> None:
    sc = scenario("tool_call_json_fence")
    result = await sc.agent(model).run(sc.prompt)
    assert result.output == "The project is named demo, version 0.1.0."
    [call] = responses(result.all_messages())[0].parts
    assert isinstance(call, ToolCallPart)
    assert call.args_as_dict() == {"path": "pyproject.toml"}


async def test_qwen3_coder_xml_call(model_path: Path) -> None:
    sc = scenario("tool_call_qwen3_xml")
    result = await sc.agent(MLXModel(model_path, tool_format="qwen3_coder")).run(sc.prompt)
    assert result.output == "The project has README.md, pyproject.toml and setup.cfg."
    [call] = responses(result.all_messages())[0].parts
    assert isinstance(call, ToolCallPart)
    assert (call.tool_name, call.args_as_dict()) == ("list_files", {"directory": "."})


async def test_parallel_calls(model: MLXModel) -> None:
    sc = scenario("parallel_calls")
    result = await sc.agent(model).run(sc.prompt)
    assert result.output == "Both files describe the demo project."
    first = responses(result.all_messages())[0]
    assert [(p.tool_name, p.args_as_dict()) for p in first.parts if isinstance(p, ToolCallPart)] == [
        ("read_file", {"path": "README.md"}),
        ("read_file", {"path": "setup.cfg"}),
    ]
    assert len(first.parts) == 2
    assert len({p.tool_call_id for p in first.parts if isinstance(p, ToolCallPart)}) == 2


async def test_parallel_tool_calls_false_stops_after_the_first_call(model: MLXModel) -> None:
    both = await first_response(model, "parallel_calls", {})
    one = await first_response(model, "parallel_calls", {"parallel_tool_calls": False})
    [call] = one.parts
    assert isinstance(call, ToolCallPart) and call.args_as_dict() == {"path": "README.md"}
    assert one.finish_reason == "tool_call"
    # Generation stopped at the first call instead of writing the second one.
    assert one.usage.output_tokens < both.usage.output_tokens - 10


async def test_unknown_tool_is_retried(model: MLXModel) -> None:
    sc = scenario("unknown_tool_retry")
    result = await sc.agent(model).run(sc.prompt)
    assert result.output == "setup.cfg names the project demo."
    first, second, _ = responses(result.all_messages())
    assert isinstance(first.parts[0], ToolCallPart) and first.parts[0].tool_name == "open_file"
    retry = result.all_messages()[2]
    assert isinstance(retry, ModelRequest)
    assert isinstance(retry.parts[0], ToolReturnPart) and retry.parts[0].outcome == "retried"
    assert isinstance(second.parts[0], ToolCallPart) and second.parts[0].tool_name == "read_file"


async def test_structured_output_via_tool(model: MLXModel) -> None:
    sc = scenario("output_tool")
    result = await sc.agent(model).run(sc.prompt)
    assert result.output == CityInfo(city="Paris", country="France")


async def test_structured_output_via_prompt(model: MLXModel) -> None:
    sc = scenario("prompted_output")
    result = await sc.agent(model).run(sc.prompt)
    assert result.output == CityInfo(city="Rome", country="Italy")


async def test_native_output_is_refused_clearly_without_constraints(demo_model_path: Path) -> None:
    agent = Agent(MLXModel(demo_model_path, constrained=False), output_type=NativeOutput(CityInfo))
    with pytest.raises(UserError, match="NativeOutput"):
        await agent.run("Which city is the capital of Spain?")


async def test_message_history_round_trip(model: MLXModel) -> None:
    sc = scenario("tool_call_tags")
    first = await sc.agent(model).run(sc.prompt)
    restored = ModelMessagesTypeAdapter.validate_json(
        ModelMessagesTypeAdapter.dump_json(first.all_messages())
    )
    assert restored == first.all_messages()
    # Continue from the stored history up to the tool result: the same answer comes back.
    again = await sc.agent(model).run(message_history=restored[:3])
    assert again.output == first.output


# --- usage and the prompt cache ----------------------------------------------------------------


async def test_usage_counts_real_tokens(model: MLXModel) -> None:
    sc = scenario("tool_call_tags")
    result = await sc.agent(model).run(sc.prompt)
    tokenizer = model.loaded.tokenizer
    for turn, response in zip(sc.turns, responses(result.all_messages()), strict=True):
        # The scripted text's tokens plus the end-of-turn token.
        assert response.usage.output_tokens == len(tokenizer.encode(turn.text, add_special_tokens=False)) + 1
        assert response.usage.input_tokens > 300


async def test_input_tokens_are_the_rendered_prompt(model: MLXModel) -> None:
    sc = scenario("plain_answer")
    with capture_run_messages() as messages:
        await sc.agent(model).run(sc.prompt)
    [response] = responses(messages)
    # Render the same request independently (function tools as the agent declares them).
    tool_defs = [Tool(f).tool_def for f in sc.tools]
    params = ModelRequestParameters(function_tools=tool_defs, allow_text_output=True)
    prompt = render_request(model, model.loaded.tokenizer, messages[:-1], params)  # type: ignore[arg-type]
    assert response.usage.input_tokens == len(prompt)


async def test_count_tokens_matches_the_request(model: MLXModel) -> None:
    sc = scenario("plain_answer")
    with capture_run_messages() as messages:
        await sc.agent(model).run(sc.prompt)
    params = ModelRequestParameters(
        function_tools=[Tool(f).tool_def for f in sc.tools], allow_text_output=True
    )
    counted = await model.count_tokens(messages[:-1], None, params)
    response = messages[-1]
    assert isinstance(response, ModelResponse)
    assert counted.input_tokens == response.usage.input_tokens


async def test_prompt_cache_turn_two_prefills_only_new_tokens(model_path: Path) -> None:
    model = MLXModel(model_path)
    await model.load()
    model.loaded.prompt_cache.clear()
    sc = scenario("tool_call_tags")
    result = await sc.agent(model).run(sc.prompt)
    turn1, turn2 = responses(result.all_messages())
    assert turn1.usage.cache_read_tokens == 0
    assert turn1.provider_details and turn1.provider_details["prefilled_tokens"] == turn1.usage.input_tokens
    # Turn 2 re-uses all of turn 1's prompt; only the call as re-rendered and the tool result are new.
    assert turn2.usage.cache_read_tokens >= turn1.usage.input_tokens
    assert turn2.provider_details is not None
    prefilled = turn2.provider_details["prefilled_tokens"]
    assert prefilled == turn2.usage.input_tokens - turn2.usage.cache_read_tokens
    assert prefilled < turn2.usage.input_tokens - turn1.usage.input_tokens + turn1.usage.output_tokens

    # A new conversation with the same system prompt and tools skips that shared prefix.
    other = scenario("tool_call_json_fence")
    result = await other.agent(model).run(other.prompt)
    first = responses(result.all_messages())[0]
    assert first.usage.cache_read_tokens > 0.9 * first.usage.input_tokens


async def test_prompt_cache_off_by_size(model_path: Path) -> None:
    model = MLXModel(model_path, model_name="no-cache")
    await model.load()
    model.loaded.prompt_cache.max_entries = 0
    model.loaded.prompt_cache.clear()
    sc = scenario("tool_call_tags")
    result = await sc.agent(model).run(sc.prompt)
    assert [r.usage.cache_read_tokens for r in responses(result.all_messages())] == [0, 0]
    model.loaded.prompt_cache.max_entries = 4


# --- settings ------------------------------------------------------------------------------------


async def test_max_tokens_truncates_with_length(model: MLXModel) -> None:
    response = await first_response(model, "plain_answer", {"max_tokens": 4})
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 4
    [text] = response.parts
    assert isinstance(text, TextPart)
    assert turn_text("plain_answer").startswith(text.content)


async def test_a_call_cut_off_by_max_tokens_is_an_incomplete_tool_call(model: MLXModel) -> None:
    # Never a call, and never the answer: the run ends with pydantic-ai's own error for it (the
    # markup `<tool_call>\n{"name": "read_file", "arguments":` used to be the agent's output).
    # No retries: what the tiny model writes after the retry (which now says the call was cut
    # off) is not what this test is about.
    sc = scenario("tool_call_tags")
    agent = Agent(model, system_prompt=sc.system_prompt, tools=list(sc.tools), retries=0)
    with pytest.raises(IncompleteToolCall, match=r"token limit \(12\)"):
        await agent.run(sc.prompt, model_settings={"max_tokens": 12})
    with pytest.raises(IncompleteToolCall):
        async with agent.run_stream(sc.prompt, model_settings={"max_tokens": 12}) as run:
            await run.get_output()


async def test_a_call_cut_off_by_a_stop_sequence_is_sent_back_for_a_retry(model: MLXModel) -> None:
    # Unfinished, not by the token limit: the model is asked to write the call again, and its
    # markup is not answer text.
    response = await first_response(model, "tool_call_tags", {"stop_sequences": ['"arguments"']})
    assert response.provider_details is not None
    assert [p["kind"] for p in response.provider_details["parse_problems"]] == ["truncated_call"]
    [call] = response.parts
    assert isinstance(call, ToolCallPart)
    assert call.tool_name == "read_file"
    assert call.args == '<tool_call>\n{"name": "read_file", '
    with pytest.raises(ValueError):
        call.args_as_dict(raise_if_invalid=True)  # so it never runs: the agent asks again
    sc = scenario("tool_call_tags")
    with capture_run_messages() as messages, contextlib.suppress(UsageLimitExceeded):
        await sc.agent(model).run(
            sc.prompt,
            model_settings={"stop_sequences": ['"arguments"']},
            usage_limits=UsageLimits(request_limit=2),
        )
    retry = messages[2]  # pydantic-ai's answer to arguments that do not validate
    assert isinstance(retry, ModelRequest)
    [feedback] = retry.parts
    assert getattr(feedback, "tool_name", None) == "read_file"
    assert "Invalid JSON" in str(getattr(feedback, "content", ""))


async def test_control_tokens_the_model_writes_are_not_text(model: MLXModel) -> None:
    # The bias makes the tiny model write `<|im_start|>` (a turn marker, not a call marker) and then
    # its answer; text is decoded with special tokens kept for the parsers, and this one used to
    # reach the answer ('<|im_start|><|im_start|>...'), where servers skip special tokens.
    await model.load()
    im_start = model.loaded.tokenizer.convert_tokens_to_ids("<|im_start|>")
    response = await first_response(
        model, "plain_answer", {"logit_bias": {str(im_start): 100}, "max_tokens": 3}
    )
    assert response.usage.output_tokens == 3
    assert response.parts == []  # three control tokens: no text at all


async def test_stop_sequences(model: MLXModel) -> None:
    response = await first_response(model, "plain_answer", {"stop_sequences": ["anything"]})
    assert response.parts == [TextPart("Hello! Ask me ")]
    assert response.finish_reason == "stop"
    assert response.provider_details and response.provider_details["finish_reason"] == "stop_sequence"


async def test_temperature_and_seed(model: MLXModel) -> None:
    hot: ModelSettings = {"temperature": 20.0, "seed": 1, "max_tokens": 12}
    a = await first_response(model, "plain_answer", hot)
    b = await first_response(model, "plain_answer", hot)
    c = await first_response(model, "plain_answer", {**hot, "seed": 2})
    assert a.parts == b.parts  # same seed, same sample
    assert a.parts != c.parts  # another seed, another sample
    assert a.parts != [TextPart(turn_text("plain_answer"))]


async def test_top_k_one_is_greedy(model: MLXModel) -> None:
    response = await first_response(model, "plain_answer", {"temperature": 20.0, "top_k": 1, "seed": 3})
    assert response.parts == [TextPart(turn_text("plain_answer"))]


async def test_tiny_top_p_is_greedy(model: MLXModel) -> None:
    response = await first_response(model, "plain_answer", {"temperature": 20.0, "top_p": 1e-6, "seed": 3})
    assert response.parts == [TextPart(turn_text("plain_answer"))]


async def test_top_p_zero_is_greedy(model: MLXModel) -> None:
    response = await first_response(model, "plain_answer", {"temperature": 20.0, "top_p": 0.0, "seed": 3})
    assert response.parts == [TextPart(turn_text("plain_answer"))]


@pytest.mark.parametrize("top_k", [0, -5, "vocabulary", 10**6])
async def test_top_k_that_keeps_everything_is_no_filter(model: MLXModel, top_k: int | str) -> None:
    # The model's whole vocabulary: mlx-lm's top-k raised on it (inside a batched step, failing
    # every request in the batch).
    if top_k == "vocabulary":
        top_k = vocabulary_size(model)
    hot: ModelSettings = {"temperature": 20.0, "seed": 5, "max_tokens": 12}
    unfiltered = await first_response(model, "plain_answer", hot)
    assert (await first_response(model, "plain_answer", {**hot, "top_k": top_k})).parts == unfiltered.parts


async def test_any_integer_seed_is_reproducible(model: MLXModel) -> None:
    hot: ModelSettings = {"temperature": 20.0, "seed": -1, "max_tokens": 12}
    assert (await first_response(model, "plain_answer", hot)).parts == (
        await first_response(model, "plain_answer", {**hot, "seed": 2**64 - 1})
    ).parts


@pytest.mark.parametrize("batching", [True, False])
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"logit_bias": {"1000000": 5}}, "outside the vocabulary"),  # indexed past the logits: segfault
        ({"logit_bias": {"-1": 5}}, "outside the vocabulary"),  # silently biased the last token
        ({"logit_bias": {"<vocabulary size>": 5}}, "outside the vocabulary"),
        ({"logit_bias": {"hello": 5}}, "token ids"),
        ({"logit_bias": {"5": "a lot"}}, "numbers"),
        ({"max_tokens": 0}, "at least 1"),
        ({"max_tokens": -1}, "at least 1"),  # mlx-lm's "no limit" one at a time
        ({"max_tokens": 2.5}, "integer"),
        ({"temperature": -1.0}, "negative"),
        ({"top_p": 1.5}, "between 0 and 1"),
        ({"top_k": 2.5}, "integer"),
        ({"seed": "7"}, "integer"),
        ({"presence_penalty": "high"}, "number"),
        ({"stop_sequences": "END"}, "list of strings"),
        ({"temperature": float("nan")}, "finite"),  # passed `< 0` and sampled garbage
        ({"top_p": float("nan")}, "finite"),
        ({"frequency_penalty": float("inf")}, "finite"),
        ({"logit_bias": {"5": float("nan")}}, "finite"),
        ({"logit_bias": {"5": float("inf")}}, "finite"),  # +inf is NaN after normalising
    ],
)
async def test_bad_settings_are_user_errors(
    model_path: Path, batching: bool, settings: dict[str, Any], message: str
) -> None:
    mlx_model = MLXModel(model_path, batching=batching)
    if settings.get("logit_bias") == {"<vocabulary size>": 5}:
        settings = {"logit_bias": {str(vocabulary_size(mlx_model)): 5}}  # one past the last id
    agent = scenario("plain_answer").agent(mlx_model)
    with pytest.raises(UserError, match=message):
        await agent.run(scenario("plain_answer").prompt, model_settings=cast(ModelSettings, settings))


@pytest.mark.parametrize("penalty", ["presence_penalty", "frequency_penalty"])
async def test_penalties_change_repeating_output(model: MLXModel, penalty: str) -> None:
    # The call text repeats tokens (`": "`, quotes, newlines), so a large penalty must change it.
    greedy = await first_response(model, "tool_call_tags", {})
    penalised = await first_response(model, "tool_call_tags", {penalty: 30.0, "max_tokens": 30})  # type: ignore[misc]
    assert isinstance(greedy.parts[0], ToolCallPart)
    assert penalised.parts != greedy.parts


async def test_logit_bias(model: MLXModel) -> None:
    tokenizer = model.loaded.tokenizer
    first_token = tokenizer.encode(turn_text("plain_answer"), add_special_tokens=False)[0]
    forced = tokenizer.encode("README", add_special_tokens=False)[0]
    response = await first_response(
        model, "plain_answer", {"logit_bias": {str(first_token): -100, str(forced): 100}, "max_tokens": 3}
    )
    assert response.parts and isinstance(response.parts[0], TextPart)
    assert response.parts[0].content.startswith("README")


async def test_tool_choice_none_renders_no_tools(model: MLXModel) -> None:
    with_tools = await first_response(model, "plain_answer", {"max_tokens": 1})
    without = await first_response(model, "plain_answer", {"tool_choice": "none", "max_tokens": 1})
    assert without.usage.input_tokens < with_tools.usage.input_tokens - 100


async def test_tool_choice_required_keeps_text_out_of_the_answer(model: MLXModel) -> None:
    # The agent refuses a static 'required' (it would never finish), so make the request directly.
    sc = scenario("plain_answer")
    with capture_run_messages() as messages:
        await sc.agent(model).run(sc.prompt)
    params = ModelRequestParameters(
        function_tools=[Tool(f).tool_def for f in sc.tools], allow_text_output=True
    )
    response = await model_request(
        model, messages[:-1], model_settings={"tool_choice": "required"}, model_request_parameters=params
    )
    assert response.parts == [ThinkingPart(turn_text("plain_answer"))]


async def test_a_call_to_a_tool_excluded_by_tool_choice_is_not_run(model: MLXModel) -> None:
    # The model was trained to call `open_file`, a tool it was never offered. Here the agent has
    # such a tool, but `tool_choice` keeps it from the model (so the rendered prompt is the one the
    # model was trained on): the call must not run, and stays the text the model wrote.
    sc = scenario("unknown_tool_retry")
    opened: list[str] = []

    def open_file(path: str) -> str:
        """Open a file."""
        opened.append(path)
        return "opened"

    agent = Agent(model, system_prompt=sc.system_prompt, tools=[*sc.tools, open_file])
    result = await agent.run(
        sc.prompt, model_settings={"tool_choice": ToolOrOutput(["read_file", "list_files"])}
    )
    assert opened == []
    first = result.all_messages()[1]
    assert isinstance(first, ModelResponse)
    assert first.parts == [TextPart(sc.turns[0].text)]
    assert first.finish_reason == "stop"
    assert first.provider_details is not None
    assert [p["kind"] for p in first.provider_details["parse_problems"]] == ["unknown_tool"]


async def test_unsupported_settings_are_declared(model: MLXModel) -> None:
    assert {"timeout", "extra_headers", "extra_body"} <= model.unsupported_settings
    honoured = {"max_tokens", "temperature", "top_p", "top_k", "seed", "stop_sequences"}
    honoured |= {"presence_penalty", "frequency_penalty", "logit_bias", "parallel_tool_calls"}
    assert not honoured & model.unsupported_settings


# --- concurrency and cancellation ----------------------------------------------------------------

_EXPECTED = {
    "plain_answer": "Hello! Ask me anything about the project.",
    "parallel_calls": "Both files describe the demo project.",
    "tool_call_tags": "README.md says: Demo, a tiny project.",
    "tool_call_json_fence": "The project is named demo, version 0.1.0.",
    "unknown_tool_retry": "setup.cfg names the project demo.",
    "output_tool": CityInfo(city="Paris", country="France"),
    "prompted_output": CityInfo(city="Rome", country="Italy"),
}


async def test_eight_concurrent_runs_are_all_correct(model: MLXModel) -> None:
    names = [*_EXPECTED, "tool_call_tags"]
    assert len(names) == 8

    async def run(name: str) -> Any:
        sc = scenario(name)
        if name.startswith("tool_call") and len(name) % 2:
            async with sc.agent(model).run_stream(sc.prompt) as result:
                return await result.get_output()
        return (await sc.agent(model).run(sc.prompt)).output

    outputs = await asyncio.gather(*(run(n) for n in names))
    assert outputs == [_EXPECTED[n] for n in names]
    assert not model.loaded.busy.locked()


async def test_cancelling_a_stream_frees_the_model(model: MLXModel) -> None:
    eos = next(iter(model.loaded.tokenizer.eos_token_ids))
    endless: ModelSettings = {
        "logit_bias": {str(eos): -1000},
        "max_tokens": 3_000,
    }  # within the 4,096-token context
    sc = scenario("plain_answer")
    started = time.perf_counter()
    async with sc.agent(model).run_stream(sc.prompt, model_settings=endless) as result:
        async for _ in result.stream_text(delta=True):
            break
    # Leaving the stream stopped generation and released the model within a token or so.
    assert not model.loaded.busy.locked()
    assert time.perf_counter() - started < 30
    # The model serves the next request at once, correctly.
    again = await sc.agent(model).run(sc.prompt)
    assert again.output == _EXPECTED["plain_answer"]


async def test_a_dropped_streamed_response_frees_the_model(model: MLXModel) -> None:
    # A stream entered and read, then dropped without leaving its block or closing it (a caller
    # that keeps `__aenter__`'s result and lets it go): its generation stops within a few tokens.
    # (asyncio closes the abandoned `request_stream` generator, which closes the generation; the
    # stream's own collection stops it too: test_model_generation.py drops a bare stream.)
    await model.load()
    eos = next(iter(model.loaded.tokenizer.eos_token_ids))
    endless: ModelSettings = {"logit_bias": {str(eos): -1000}, "max_tokens": 3_000}
    messages: list[ModelMessage] = [ModelRequest.user_text_prompt("Say hello.")]
    entered = model_request_stream(model, messages, model_settings=endless)
    response = await entered.__aenter__()
    async for _ in response:
        break
    stats = cast(Any, response)._generation.stats
    at_drop = stats.output_tokens
    del entered, response
    gc.collect()
    deadline = time.perf_counter() + 30
    while stats.finish_reason != "cancelled" and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    assert stats.finish_reason == "cancelled"
    assert stats.output_tokens - at_drop < 64
    while model.loaded.busy.locked() and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    assert not model.loaded.busy.locked()


async def test_cancelling_the_task_frees_the_model(model: MLXModel) -> None:
    eos = next(iter(model.loaded.tokenizer.eos_token_ids))
    endless: ModelSettings = {
        "logit_bias": {str(eos): -1000},
        "max_tokens": 3_000,
    }  # within the 4,096-token context
    sc = scenario("plain_answer")
    task = asyncio.create_task(sc.agent(model).run(sc.prompt, model_settings=endless))
    while not model.loaded.busy.locked():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not model.loaded.busy.locked()
    assert (await sc.agent(model).run(sc.prompt)).output == _EXPECTED["plain_answer"]


# --- loading ------------------------------------------------------------------------------------


async def test_instances_share_loaded_weights(model_path: Path, model: MLXModel) -> None:
    assert MLXModel(model_path).loaded is model.loaded
    assert MLXModel(str(model_path)).loaded is model.loaded


async def test_preloaded_pair(model: MLXModel) -> None:
    await model.load()
    pair = (model.loaded.model, model.loaded.tokenizer)
    other = MLXModel(pair, model_name="pair")
    assert other.loaded is not model.loaded
    sc = scenario("plain_answer")
    assert (await sc.agent(other).run(sc.prompt)).output == _EXPECTED["plain_answer"]
    assert other.model_name == "pair"


def test_unknown_tool_format_is_refused(model_path: Path) -> None:
    with pytest.raises(UserError, match="tool_format"):
        MLXModel(model_path, tool_format="nonsense")


def test_adapter_with_a_pair_is_refused(model: MLXModel) -> None:
    with pytest.raises(UserError, match="adapter_path"):
        MLXModel((object(), object()), adapter_path="adapters")


def vocabulary_size(model: MLXModel) -> int:
    """The logits the model computes per token (its vocabulary, with padding)."""
    from pydantic_mlx._request_settings import vocabulary_size  # pyright: ignore[reportPrivateUsage]

    loaded = model._loaded  # pyright: ignore[reportPrivateUsage]
    loaded.load_sync()
    return vocabulary_size(loaded)
