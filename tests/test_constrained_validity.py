"""`constrained=True` means valid, every time: random weights, every format, every way a request
asks for structure, ten seeds at temperature 1, no retries.

The schemas are plain pydantic models, as a newcomer writes them: no `extra="forbid"`, so their
JSON schemas leave `additionalProperties` unsaid and the grammar must close the objects itself.
Validity is checked strictly (undeclared keys refused), as the schema's author means it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.direct import model_request
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import ModelRequest, ModelResponse, ThinkingPart, ToolCallPart, UserPromptPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.output import OutputObjectDefinition
from pydantic_ai.tools import ToolDefinition

pytest.importorskip("llguidance")

import mlx.core as mx

from pydantic_mlx import MLXModel
from pydantic_mlx._generation import GenerationOptions
from pydantic_mlx._thinking_budget import ReasoningMarkers, ThinkingBudgetProcessor
from pydantic_mlx.constrained import _reasoning, output_processor, tool_call_processor  # pyright: ignore[reportPrivateUsage]
from pydantic_mlx.constrained._closed_objects import close_objects
from pydantic_mlx.parsers import parse
from pydantic_mlx.parsers.formats import format_names
from test_constrained import ForceText, _prompt

pytestmark = pytest.mark.anyio

SEEDS = range(10)
FORMATS = [*sorted(format_names()), "auto"]


class Address(BaseModel):
    street: Annotated[str, Field(max_length=8)]
    number: Annotated[int, Field(ge=1, le=99)]


class City(BaseModel):
    """The issue's schema: bounded, nested, and open by JSON Schema's default."""

    name: Annotated[str, Field(max_length=12)]
    population: Annotated[int, Field(ge=0, le=1000)]
    size: Literal["small", "medium", "large"]
    tags: Annotated[list[Annotated[str, Field(max_length=6)]], Field(max_length=3)]
    address: Address | None = None


class _StrictAddress(Address):
    model_config = ConfigDict(extra="forbid")


class _StrictCity(City):
    model_config = ConfigDict(extra="forbid")
    address: _StrictAddress | None = None


def _assert_city(value: Any) -> None:
    """Valid against City's schema as written: undeclared keys are refused."""
    _StrictCity.model_validate(value)


def _settings(seed: int, **more: Any) -> Any:
    return {"temperature": 1.0, "seed": seed, "max_tokens": 400, **more}


def _budget(tool_format: str) -> int:
    """Tokens for one City call: Hy4-preview's `:6124c78e` markers, spelled out by a tokenizer
    that lacks them, take about twice the room."""
    return 800 if tool_format == "hy4" else 400


async def _requests(model: MLXModel, params: ModelRequestParameters, **settings: Any) -> list[ModelResponse]:
    """One request per seed, all at once (batched, so ten cost little more than one)."""
    message = [ModelRequest(parts=[UserPromptPart("Describe a city.")])]
    return await asyncio.gather(
        *(
            model_request(
                model, message, model_settings=_settings(s, **settings), model_request_parameters=params
            )
            for s in SEEDS
        )
    )


def _calls(response: ModelResponse) -> list[ToolCallPart]:
    return [p for p in response.parts if isinstance(p, ToolCallPart)]


@pytest.fixture(scope="module")
def models(random_model_path: Path) -> dict[str, MLXModel]:
    return {f: MLXModel(random_model_path, constrained=True, tool_format=f, model_name=f) for f in FORMATS}


@pytest.mark.parametrize("tool_format", FORMATS)
async def test_tool_output_is_a_valid_call_for_every_seed(
    models: dict[str, MLXModel], tool_format: str
) -> None:
    """Output tools only, no text allowed (the agent's default `ToolOutput`): pydantic-ai's
    implicit `'required'` forces a call from the first token."""
    tool = ToolDefinition(name="final_result", parameters_json_schema=City.model_json_schema(), kind="output")
    params = ModelRequestParameters(output_mode="tool", output_tools=[tool], allow_text_output=False)
    for response in await _requests(models[tool_format], params, max_tokens=_budget(tool_format)):
        calls = _calls(response)
        assert [c.tool_name for c in calls] == ["final_result"], response
        _assert_city(calls[0].args_as_dict())
        assert (response.provider_details or {})["constrained_regions"] == 1


@pytest.mark.parametrize("output", ["tool", "native"])
async def test_an_agent_with_the_default_settings_gets_a_valid_city_every_time(
    models: dict[str, MLXModel], output: str
) -> None:
    """The issue's run as a user writes it: `Agent(model, output_type=City)` (or `NativeOutput`),
    no retries. Before: 3/5 (plain text, no grammar) and 4/5 (an invented key until `max_tokens`)."""
    agent = Agent(models["hermes"], output_type=City if output == "tool" else NativeOutput(City), retries=0)
    results = await asyncio.gather(
        *(agent.run("Describe a city.", model_settings=_settings(s)) for s in SEEDS)
    )
    for result in results:
        _assert_city(result.output.model_dump())


@pytest.mark.parametrize("tool_format", FORMATS)
async def test_native_output_is_valid_json_for_every_seed(
    models: dict[str, MLXModel], tool_format: str
) -> None:
    output = OutputObjectDefinition(json_schema=City.model_json_schema(), name="City")
    params = ModelRequestParameters(output_mode="native", output_object=output, allow_text_output=True)
    for response in await _requests(models[tool_format], params, max_tokens=_budget(tool_format)):
        assert response.finish_reason == "stop", response
        _assert_city(json.loads(response.text or ""))


@pytest.mark.parametrize("tool_format", FORMATS)
async def test_required_function_tool_is_a_valid_call_for_every_seed(
    models: dict[str, MLXModel], tool_format: str
) -> None:
    tool = ToolDefinition(name="add_city", parameters_json_schema=City.model_json_schema())
    params = ModelRequestParameters(function_tools=[tool], allow_text_output=True)
    responses = await _requests(
        models[tool_format],
        params,
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=_budget(tool_format),
    )
    for response in responses:
        calls = _calls(response)
        assert [c.tool_name for c in calls] == ["add_city"], response
        _assert_city(calls[0].args_as_dict())


@pytest.mark.parametrize("tool_format", FORMATS)
async def test_a_lazy_call_the_model_opens_is_valid_for_every_seed(
    models: dict[str, MLXModel], tool_format: str
) -> None:
    """Text allowed: the model opens a call itself (forced here with the format's own opener, as
    random weights never would), and the grammar completes it validly whatever the seed."""
    if tool_format in _NO_LAZY_OPENER:
        pytest.skip(f"{tool_format}: a call cannot be opened after text (covered by the forced cases)")
    model = models[tool_format]
    await model.load()
    tokenizer = model.loaded.tokenizer
    tools = [{"type": "function", "function": {"name": "add_city", "parameters": City.model_json_schema()}}]
    prompt = _prompt(tokenizer, tools)
    opening = "Sure.\n" + _OPENERS.get(tool_format, "<tool_call>")

    async def one(seed: int) -> tuple[str, Any]:
        processor = tool_call_processor(tokenizer, tool_format, tools, parallel=False)
        options = GenerationOptions(
            max_tokens=600,
            temperature=1.0,
            seed=seed,
            extra_processors=(
                lambda: ForceText(tokenizer, opening),
                lambda: processor,
                lambda: EndAfterRegion(processor, tokenizer.eos_token_id),
            ),
        )
        assert model._scheduler is not None  # pyright: ignore[reportPrivateUsage]
        stream = model._scheduler.start(prompt, options)  # pyright: ignore[reportPrivateUsage]
        text = "".join([chunk async for chunk in stream])
        return text, processor

    for seed, (text, processor) in zip(SEEDS, await asyncio.gather(*(one(s) for s in SEEDS)), strict=True):
        assert processor.regions == 1 and not processor.constraining, (seed, text)
        result = parse(text, tool_format, tools)
        assert len(result.calls) == 1 and not result.errors, (seed, text, result.errors)
        _assert_city(result.calls[0].arguments)


class EndAfterRegion:
    """A logits processor that ends the output once `processor`'s first region is complete (the
    model's free text after a call is noise this test has no use for)."""

    def __init__(self, processor: Any, eos: int) -> None:
        self._processor = processor
        self._eos = eos

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        if self._processor.regions < 1 or self._processor.constraining:
            return logits
        ended = mx.where(mx.arange(logits.shape[-1]) == self._eos, 0.0, -mx.inf)
        return mx.broadcast_to(ended, logits.shape).astype(logits.dtype)


_OPENERS = {
    "llama3_json": "<|python_tag|>",
    "mistral": "[TOOL_CALLS]",
    "deepseek": "<｜tool▁calls▁begin｜>",
    "kimi_k2": "<|tool_calls_section_begin|>",
    "harmony": "<|channel|>commentary to=",
    "gemma4": "<|tool_call>",
    "pythonic": "<|python_start|>",
    "function_gemma": "<start_function_call>",
    "command": "<|START_ACTION|>",
    "longcat": "<longcat_tool_call>",
    "gigachat": "<｜GCML｜tool_calls>",
    "apertus": "<|tools_prefix|>",
    "granite": "<|tool_call|>",
    "nemotron": "<TOOLCALL>",
    "minimax_m2": "<minimax:tool_call>",
    "seed_oss": "<seed:tool_call>",
    "minicpm5": '<function name="',
    "granite_20b_fc": "<function_call>",
    "hy3": "<tool_calls:opensource>",
    "hy4": "<tool_calls:6124c78e>",
    "solar_open": "<|tool_call:start|>",
    "hunyuan": "<tool_calls>",
    "apriel": "<tool_calls>",
    "jamba": "<tool_calls>",
    "internlm2": "<|action_start|><|plugin|>",
    "olmo3": "<function_calls>",
    "minicpm3": "<|tool_call_start|>",
}
# Formats whose calls the model cannot open mid-text: read only where the answer begins
# (phi4_mini's `functools[`), or with no marker at all (xlam's bare list is the whole answer).
_NO_LAZY_OPENER = {"phi4_mini", "xlam"}


# --- a forced answer after a reasoning block: the block closes, the answer follows -----------------


class ThinksThenStops:
    """A model that opens its reasoning block (when `opener` is given) and then wants to stop:
    the end of the sequence strongly preferred. Before, a forced answer's grammar left the
    reasoning free, end of sequence included: the response ended inside `<think>`, with no answer."""

    def __init__(self, eos: int, opener: int | None = None) -> None:
        self._eos = eos
        self._opener = opener
        self._calls = 0

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        first, self._calls = self._calls == 0, self._calls + 1
        preferred = self._opener if first and self._opener is not None else self._eos
        return logits + mx.where(mx.arange(logits.shape[-1]) == preferred, 30.0 if first else 8.0, 0.0)


def _opens_with(tool_format: str, opener: str) -> bool:
    reasoning = _reasoning(tool_format)
    return reasoning is not None and reasoning.opener == opener


_REASONING_FORMATS = [f for f in FORMATS if _reasoning(f) is not None]


async def test_native_output_with_thinking_closes_the_reasoning_and_answers_for_every_seed(
    models: dict[str, MLXModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`NativeOutput`, thinking on, through `MLXModel`: the model opens `<think>` itself (its first
    token, which the grammar allows, as Qwen3 does) and then prefers to stop. The end of the
    sequence is refused until the reasoning closes (`mlx_thinking_budget` closes it here), then
    the answer is valid JSON. Every format's reasoning block: the next test."""
    model = models["hermes"]
    await model.load()
    tokenizer = model.loaded.tokenizer
    opener, eos = tokenizer.convert_tokens_to_ids("<think>"), tokenizer.eos_token_id
    plan = model._plan  # pyright: ignore[reportPrivateUsage]

    def thinking_then_stopping(*args: Any) -> Any:
        found = plan(*args)
        processors = (lambda: ThinksThenStops(eos, opener), *found.options.extra_processors)
        return replace(found, options=replace(found.options, extra_processors=processors))

    monkeypatch.setattr(model, "_plan", thinking_then_stopping)
    output = OutputObjectDefinition(json_schema=City.model_json_schema(), name="City")
    params = ModelRequestParameters(
        output_mode="native", output_object=output, allow_text_output=True, thinking=True
    )
    for response in await _requests(model, params, mlx_thinking_budget=6):
        assert response.finish_reason == "stop", response
        assert any(isinstance(p, ThinkingPart) for p in response.parts), response
        _assert_city(json.loads(response.text or ""))


@pytest.mark.parametrize("answer", ["native", "calls"])
@pytest.mark.parametrize("tool_format", _REASONING_FORMATS)
async def test_a_reasoning_block_the_prompt_opened_closes_before_the_forced_answer(
    models: dict[str, MLXModel], tool_format: str, answer: str
) -> None:
    """Every format with a reasoning block, its opener ending the prompt (as thinking templates
    end it), a forced answer (native output, or required calls): the end of the sequence cannot
    come before the closer (forced here by the thinking budget after six tokens, spelled out
    where the tokenizer lacks it), and the format's parser reads a valid answer after the
    reasoning, for every seed."""
    model = models[tool_format]
    await model.load()
    tokenizer = model.loaded.tokenizer
    reasoning = _reasoning(tool_format)
    assert reasoning is not None
    opener, closer = reasoning.opener, reasoning.closer
    markers = ReasoningMarkers(
        opener,
        closer,
        tuple(tokenizer.encode(opener)),
        tuple(tokenizer.encode(closer)),
        # What else ends the block the prompt opened, for the parser: other closers, call openers.
        prompt_ender_ids=tuple(
            tuple(tokenizer.encode(e))
            for e in sorted({*reasoning.ends(None)[0], *reasoning.ends(None)[1]} - {closer})
        ),
    )
    prompt = _prompt(tokenizer, None) + list(markers.opener_ids)
    tools = [{"type": "function", "function": {"name": "add_city", "parameters": City.model_json_schema()}}]

    def constraint() -> Any:
        if answer == "native":
            return output_processor(
                tokenizer, City.model_json_schema(), tool_format=tool_format, in_reasoning=True
            )
        return tool_call_processor(
            tokenizer, tool_format, tools, required=True, parallel=False, in_reasoning=True
        )

    async def one(seed: int) -> tuple[str, Any]:
        processor = constraint()
        options = GenerationOptions(
            # Room for Hy3's `:opensource` markers, spelled out by a tokenizer that lacks them.
            max_tokens=600,
            temperature=1.0,
            seed=seed,
            extra_processors=(
                lambda: ThinksThenStops(tokenizer.eos_token_id),
                lambda: processor,
                lambda: ThinkingBudgetProcessor(markers, 6, in_reasoning=True),
            ),
        )
        assert model._scheduler is not None  # pyright: ignore[reportPrivateUsage]
        stream = model._scheduler.start(prompt, options)  # pyright: ignore[reportPrivateUsage]
        return "".join([chunk async for chunk in stream]), processor

    for seed, (text, processor) in zip(SEEDS, await asyncio.gather(*(one(s) for s in SEEDS)), strict=True):
        assert processor.regions == 1 and processor.problems == [], (seed, text)
        result = parse(text, tool_format, tools if answer == "calls" else [], in_reasoning=True)
        assert result.reasoning is not None and not result.errors, (seed, text, result)
        if answer == "native":
            _assert_city(json.loads(result.content or ""))
        else:
            assert [c.name for c in result.calls] == ["add_city"] and result.content is None, (seed, text)
            _assert_city(result.calls[0].arguments)


# --- objects are closed unless the schema opens them ---------------------------------------------


def test_objects_without_additional_properties_are_closed() -> None:
    closed = close_objects(City.model_json_schema())
    assert closed["additionalProperties"] is False
    assert closed["$defs"]["Address"]["additionalProperties"] is False
    assert "additionalProperties" not in City.model_json_schema()  # the input is left alone


def test_objects_the_schema_opens_stay_open() -> None:
    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        labels: dict[str, int]
        anything: dict[str, Any]

    schema = Open.model_json_schema()
    closed = close_objects(schema)
    assert closed["additionalProperties"] is True
    assert closed["properties"]["labels"]["additionalProperties"] == {"type": "integer"}
    assert closed["properties"]["anything"]["additionalProperties"] is True
    assert close_objects({"type": "object", "unevaluatedProperties": True}) == {
        "type": "object",
        "unevaluatedProperties": True,
    }


def test_closing_reaches_every_subschema_and_leaves_values_alone() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
            "either": {"anyOf": [{"type": "object", "properties": {"b": {}}}, {"type": "null"}]},
            "fixed": {"const": {"type": "object", "properties": {}}, "default": {"properties": {}}},
            "properties": {"type": ["object", "null"]},
        },
    }
    closed = close_objects(schema)
    props = closed["properties"]
    assert props["items"]["items"]["additionalProperties"] is False
    assert props["either"]["anyOf"][0]["additionalProperties"] is False
    assert "additionalProperties" not in props["either"]["anyOf"][1]
    assert props["fixed"] == schema["properties"]["fixed"]  # `const` and `default` are values
    assert props["properties"]["additionalProperties"] is False  # a property named "properties"


def test_an_all_of_of_several_objects_is_closed_over_all_their_keys() -> None:
    schema = {
        "$defs": {"Base": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}},
        "allOf": [{"$ref": "#/$defs/Base"}, {"type": "object", "properties": {"name": {"type": "string"}}}],
    }
    closed = close_objects(schema)
    assert closed["additionalProperties"] is False
    assert set(closed["properties"]) == {"id", "name"}
    assert "additionalProperties" not in closed["allOf"][1]
    assert "additionalProperties" not in closed["$defs"]["Base"]


def test_the_grammar_of_a_closed_all_of_takes_every_members_keys_and_no_other(
    random_model_path: Path,
) -> None:
    from mlx_lm import load

    from pydantic_mlx.constrained._decoding import grammar_tokenizer
    from pydantic_mlx.constrained._grammars import output_grammars

    schema = {
        "$defs": {"Base": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}},
        "allOf": [{"$ref": "#/$defs/Base"}, {"type": "object", "properties": {"name": {"type": "string"}}}],
    }
    llg = grammar_tokenizer(load(str(random_model_path))[1])
    grammar = output_grammars(schema, reasoning=None).answer or ""

    def accepts(text: str) -> bool:
        matcher = llg.matcher(grammar)
        return matcher.consume_tokens(llg.llg.tokenize_str(text)) and matcher.is_accepting()

    assert accepts('{"id": 1, "name": "a"}') and accepts('{"id": 1}')
    assert not accepts('{"id": 1, "x": 2}')  # closed
    assert not accepts('{"name": "a"}') and not accepts('{"id": "1"}')  # each member still checks


def test_a_call_never_copies_schema_keys_into_its_arguments(random_model_path: Path) -> None:
    """What the real Qwen2.5-Coder-0.5B wrote, unconstrained: `"required"` copied from the schema.
    A schema that leaves `additionalProperties` unsaid (as many MCP servers write them) gets a
    closed grammar: the call is refused, the same call without the copied key accepted."""
    from mlx_lm import load

    from pydantic_mlx.constrained._decoding import grammar_tokenizer
    from pydantic_mlx.constrained._grammars import ToolSchema, tool_call_grammars

    _, tokenizer = load(str(random_model_path))
    schema = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}
    llg = grammar_tokenizer(tokenizer)
    grammars = tool_call_grammars(
        "hermes",
        [ToolSchema("run_command", schema)],
        required=True,
        untagged_json=False,
        reasoning=None,
        special_token=llg.special_token,
    )
    assert grammars is not None and grammars.answer is not None

    def accepts(text: str) -> bool:
        matcher = llg.matcher(grammars.answer or "")
        return (
            matcher.consume_tokens(llg.llg.tokenize_str(text, parse_special=True)) and matcher.is_accepting()
        )

    good = '<tool_call>\n{"name": "run_command", "arguments": {"command": "echo hello"}}\n</tool_call>'
    bad = good.replace('"echo hello"}', '"echo hello", "required": ["command"]}')
    assert accepts(good)
    assert not accepts(bad)


# --- settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, None, "Auto"])
def test_constrained_takes_a_bool_or_auto_only(random_model_path: Path, value: Any) -> None:
    with pytest.raises(UserError, match="constrained"):
        MLXModel(random_model_path, constrained=value)


def test_constrained_decoding_is_on_by_default(random_model_path: Path) -> None:
    """`"auto"` is the default and llguidance a dependency: on unless turned off."""
    assert MLXModel(random_model_path).constrained is True
    assert MLXModel(random_model_path, constrained="auto").constrained is True
    assert MLXModel(random_model_path, constrained=False).constrained is False
