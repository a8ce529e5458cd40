"""PydanticAI's `thinking` setting on MLXModel: the template's switch, the thinking budget, and
reasoning kept right across turns (on the demo model, whose template thinks like Qwen3's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlx.core as mx
import pytest
from pydantic_ai import Agent
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    ThinkingPart,
    ThinkingPartDelta,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models._tool_choice import resolve_tool_choice  # pyright: ignore[reportPrivateUsage]
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.tools import ToolDefinition

from pydantic_mlx import MLXModel, MLXModelSettings
from pydantic_mlx._chat import CHAT_TEMPLATE_PROFILE, render_prompt
from pydantic_mlx._loading import loaded_model
from pydantic_mlx._thinking import thinking_switch
from pydantic_mlx._thinking_budget import ReasoningMarkers, ThinkingBudgetProcessor, reasoning_markers
from pydantic_mlx.demo import scenario

pytestmark = pytest.mark.anyio

QWEN3_LIKE = "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>{% endif %}"
DEEPSEEK_V31_LIKE = "{% if not thinking %}</think>{% else %}<think>{% endif %}"
GPT_OSS_LIKE = (
    '{%- if reasoning_effort is not defined %}{%- set reasoning_effort = "medium" %}{%- endif %}'
    "Reasoning: {{ reasoning_effort }}<|channel|>analysis<|message|>{{ m }}<|end|>"
)
MISTRAL_LIKE = (
    "{%- set effort = reasoning_effort | default('none') %}"
    "{%- if effort not in ['none', 'high'] %}{{ raise_exception('no') }}{% endif %}[THINK][/THINK]"
)
NO_SWITCH = "{% for m in messages %}{{ m.content }}{% endfor %}<think>"


# --- the template's switch ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "thinking", "kwargs"),
    [
        (QWEN3_LIKE, False, {"enable_thinking": False}),
        (QWEN3_LIKE, True, {"enable_thinking": True}),
        (QWEN3_LIKE, "low", {"enable_thinking": True}),
        (DEEPSEEK_V31_LIKE, False, {"thinking": False}),
        (DEEPSEEK_V31_LIKE, "high", {"thinking": True}),
        (GPT_OSS_LIKE, True, {}),  # the template's own default effort
        (GPT_OSS_LIKE, False, {"reasoning_effort": "low"}),  # it cannot turn thinking off
        (GPT_OSS_LIKE, "minimal", {"reasoning_effort": "low"}),
        (GPT_OSS_LIKE, "medium", {"reasoning_effort": "medium"}),
        (GPT_OSS_LIKE, "max", {"reasoning_effort": "high"}),
        (MISTRAL_LIKE, False, {"reasoning_effort": "none"}),
        (MISTRAL_LIKE, "low", {"reasoning_effort": "high"}),
    ],
)
def test_thinking_reaches_the_templates_own_switch(
    template: str, thinking: Any, kwargs: dict[str, Any]
) -> None:
    switch = thinking_switch(template, thinking)
    assert switch.template_kwargs == kwargs
    assert switch.honoured


def test_approximations_are_said() -> None:
    assert "means on" in (thinking_switch(QWEN3_LIKE, "low").note or "")
    assert "lowest effort 'low'" in (thinking_switch(GPT_OSS_LIKE, False).note or "")
    assert "nearest level" in (thinking_switch(GPT_OSS_LIKE, "max").note or "")
    assert thinking_switch(QWEN3_LIKE, False).note is None


def test_a_template_without_a_switch_is_reported_not_guessed() -> None:
    switch = thinking_switch(NO_SWITCH, False)
    assert switch.template_kwargs == {}
    assert not switch.honoured
    assert "no thinking switch" in (switch.note or "")
    # A template's own local variable named `thinking` is not a switch.
    assert not thinking_switch("{% set thinking = 1 %}{{ thinking }}", False).honoured
    assert thinking_switch(QWEN3_LIKE, None).template_kwargs == {}


# --- what `supports_thinking` changes in pydantic-ai's rules -------------------------------------


def _params(**kwargs: Any) -> ModelRequestParameters:
    output = ToolDefinition(name="final_result", parameters_json_schema={"type": "object"}, kind="output")
    return ModelRequestParameters(output_tools=[output], allow_text_output=False, **kwargs)


def test_supports_thinking_only_lets_the_setting_through(demo_model_path: Path) -> None:
    """pydantic-ai drops `thinking` for a profile without `supports_thinking`; with it, the setting
    moves to `params.thinking`, and nothing else changes: output mode, output tools and tool choice
    stay as they are (those rules follow `forced_tool_choice_disables_thinking`, left False)."""
    assert CHAT_TEMPLATE_PROFILE.get("supports_thinking")
    with_it = MLXModel(demo_model_path)
    without = MLXModel(demo_model_path, profile=ModelProfile(supports_thinking=False))
    settings = MLXModelSettings(thinking=False, max_tokens=5)
    on_settings, on = with_it.prepare_request(settings, _params())
    off_settings, off = without.prepare_request(settings, _params())
    assert on.thinking is False
    assert off.thinking is None
    assert on_settings == off_settings == {"max_tokens": 5}
    assert on.output_mode == off.output_mode
    assert on.output_tools == off.output_tools
    assert resolve_tool_choice(on_settings, on) == resolve_tool_choice(off_settings, off) == "required"
    assert not with_it.profile.get("forced_tool_choice_disables_thinking", False)


# --- rendering ------------------------------------------------------------------------------------


async def _prompt_text(model: MLXModel, settings: MLXModelSettings | None) -> str:
    await model.load()
    messages: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart("Hi")])]
    merged, params = model.prepare_request(settings, ModelRequestParameters())
    plan = model._plan(messages, merged or {}, params)  # pyright: ignore[reportPrivateUsage]
    return model.loaded.tokenizer.decode(plan.prompt)


async def test_thinking_false_renders_the_no_think_prompt(demo_model_path: Path) -> None:
    model = MLXModel(demo_model_path)
    off = await _prompt_text(model, MLXModelSettings(thinking=False))
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    on = await _prompt_text(model, MLXModelSettings(thinking=True))
    assert on.endswith("<|im_start|>assistant\n")
    assert on == await _prompt_text(model, None)


def test_gpt_oss_templates_get_reasoning_as_thinking(demo_model_path: Path) -> None:
    """gpt-oss's template reads `message.thinking` and raises when a message with calls also has
    content: the reasoning goes there, with such content after it."""
    from transformers import AutoTokenizer

    tokenizer: Any = AutoTokenizer.from_pretrained(demo_model_path)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m.role == 'assistant' %}"
        "{% if m.content and m.thinking and m.tool_calls %}{{ raise_exception('both') }}{% endif %}"
        "[A:{{ m.thinking }}|{{ m.content }}]{% else %}[{{ m.content }}]{% endif %}{% endfor %}"
    )
    messages: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("Hi")]),
        ModelResponse(parts=[ThinkingPart("plan"), TextPart("note"), ToolCallPart("f", {})]),
    ]
    prompt = render_prompt(tokenizer, messages, [], add_generation_prompt=False)
    assert tokenizer.decode(prompt) == "[Hi][A:plan\n\nnote|]"


# --- the demo model's thinking scenarios -----------------------------------------------------------


async def test_thinking_run_streams_reasoning_and_keeps_the_cache(demo_model_path: Path) -> None:
    """Four requests with thinking on: each response's reasoning is a ThinkingPart, and the next
    prompt renders it back exactly as generated, so only the new tokens are prefilled."""
    loaded = loaded_model(demo_model_path)
    await loaded.load()
    model = MLXModel((loaded.model, loaded.tokenizer), batching=False)  # a private prompt cache
    case = scenario("thinking")
    result = await case.agent(model).run(case.prompt)
    assert result.output == "pyproject.toml and setup.cfg both name it demo."
    responses = [m for m in result.all_messages() if isinstance(m, ModelResponse)]
    assert len(responses) == 4
    thoughts = [[p.content.strip() for p in r.parts if isinstance(p, ThinkingPart)] for r in responses]
    assert thoughts == [
        ["First I list the files"],
        ["The name is in pyproject"],
        ["setup.cfg may name it too"],
        ["Both say demo"],
    ]
    prefilled = [r.provider_details["prefilled_tokens"] for r in responses if r.provider_details]
    prompts = [r.usage.input_tokens for r in responses]
    outputs = [r.usage.output_tokens for r in responses]
    # Each prompt extends the previous prompt and everything generated after it (the end-of-turn
    # token included: generation computes one step ahead): all of that comes from the cache.
    for turn in range(1, 4):
        new_tokens = prompts[turn] - (prompts[turn - 1] + outputs[turn - 1])
        assert prefilled[turn] == new_tokens, (turn, prefilled, prompts, outputs)
    assert responses[0].provider_details and responses[0].provider_details["thinking"] == {
        "requested": True,
        "template_kwargs": {"enable_thinking": True},
        "honoured": True,
    }


async def test_thinking_parts_stream_as_thinking_deltas(demo_model_path: Path) -> None:
    case = scenario("thinking")
    agent = case.agent(MLXModel(demo_model_path))
    thinking_events: list[Any] = []
    async with agent.run_stream_events(case.prompt) as events:
        async for event in events:
            starts = isinstance(event, PartStartEvent) and isinstance(event.part, ThinkingPart)
            if starts or (isinstance(event, PartDeltaEvent) and isinstance(event.delta, ThinkingPartDelta)):
                thinking_events.append(event)
            if isinstance(event, PartStartEvent) and isinstance(event.part, ToolCallPart):
                break  # the first request's call: its reasoning has streamed
    assert isinstance(thinking_events[0], PartStartEvent)
    streamed = thinking_events[0].part.content + "".join(
        e.delta.content_delta or "" for e in thinking_events[1:] if isinstance(e, PartDeltaEvent)
    )
    assert streamed.strip() == "First I list the files"


async def test_thinking_off_answers_without_reasoning(demo_model_path: Path) -> None:
    case = scenario("thinking_off")
    result = await case.agent(MLXModel(demo_model_path)).run(case.prompt)
    assert result.output == "pyproject.toml names it demo."
    response = result.all_messages()[-1]
    assert isinstance(response, ModelResponse)
    assert not [p for p in response.parts if isinstance(p, ThinkingPart)]
    assert response.provider_details and response.provider_details["thinking"]["template_kwargs"] == {
        "enable_thinking": False
    }


# --- the thinking budget ------------------------------------------------------------------------


async def _first_thinking_turn(model: MLXModel, settings: MLXModelSettings) -> ModelResponse:
    case = scenario("thinking")
    agent = Agent(model, system_prompt=case.system_prompt, tools=list(case.tools))
    async with agent.iter(case.prompt, model_settings=settings) as run:
        async for node in run:
            if Agent.is_call_tools_node(node):
                return node.model_response
    raise AssertionError("no model response")


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("batching", [False, True])
async def test_budget_closes_reasoning_after_n_tokens(
    demo_model_path: Path, batching: bool, constrained: bool
) -> None:
    loaded = loaded_model(demo_model_path)
    await loaded.load()
    model = MLXModel((loaded.model, loaded.tokenizer), batching=batching, constrained=constrained)
    budget = 3
    response = await _first_thinking_turn(model, MLXModelSettings(thinking=True, mlx_thinking_budget=budget))
    tokenizer = loaded.tokenizer
    think, end_think = (tokenizer.encode(t, add_special_tokens=False)[0] for t in ("<think>", "</think>"))
    details = response.provider_details or {}
    budget_details = details["thinking_budget"]
    assert budget_details == {
        "budget": budget,
        "applied": True,
        "closer": "</think>",
        "spent": budget,
        "closed_by_budget": True,
    }
    # The model opened its block, wrote exactly `budget` tokens of it, and the closer came next.
    thinking = [p for p in response.parts if isinstance(p, ThinkingPart)]
    reasoning_ids = tokenizer.encode("<think>" + thinking[0].content + "</think>", add_special_tokens=False)
    assert reasoning_ids[0] == think and reasoning_ids[-1] == end_think
    assert len(reasoning_ids) - 2 == budget
    # And generation went on after it: the answer follows the forced closer.
    assert (response.usage.output_tokens or 0) > budget + 2


async def test_a_budget_larger_than_the_reasoning_changes_nothing(demo_model_path: Path) -> None:
    response = await _first_thinking_turn(
        MLXModel(demo_model_path), MLXModelSettings(mlx_thinking_budget=100)
    )
    details = (response.provider_details or {})["thinking_budget"]
    assert details["closed_by_budget"] is False
    assert details["spent"] > 3
    assert [p.tool_name for p in response.parts if isinstance(p, ToolCallPart)] == ["list_files"]


@pytest.mark.parametrize("budget", [-1, True, 2.5, "3"])
async def test_a_bad_budget_is_a_user_error(demo_model_path: Path, budget: Any) -> None:
    agent = Agent(MLXModel(demo_model_path))
    with pytest.raises(UserError, match="mlx_thinking_budget"):
        await agent.run("Hi", model_settings={"mlx_thinking_budget": budget})  # type: ignore[typeddict-item]


async def test_thinking_false_without_a_switch_closes_the_block_at_once(demo_model_path: Path) -> None:
    """A template that cannot turn thinking off gets PydanticAI's rule: think as little as it can."""
    from mlx_lm import load

    model_weights, tokenizer = load(str(demo_model_path))
    template = tokenizer.chat_template
    tokenizer._tokenizer.chat_template = template.replace(
        "enable_thinking is defined and enable_thinking is false", "false"
    )  # pyright: ignore[reportPrivateUsage]
    model = MLXModel((model_weights, tokenizer), batching=False)
    response = await _first_thinking_turn(model, MLXModelSettings(thinking=False))
    details = response.provider_details or {}
    assert details["thinking"]["honoured"] is False
    assert "no thinking switch" in details["thinking"]["note"]
    assert details["thinking_budget"]["budget"] == 0
    assert details["thinking_budget"]["closed_by_budget"] is True
    assert [p.content.strip() for p in response.parts if isinstance(p, ThinkingPart)] in ([], [""])


def test_budget_processor_forces_a_multi_token_closer_then_lets_go() -> None:
    markers = ReasoningMarkers("<a>", "</a>", opener_ids=(1,), closer_ids=(7, 8))
    processor = ThinkingBudgetProcessor(markers, 2, in_reasoning=False)
    vocabulary = 10
    logits = mx.zeros((1, vocabulary))

    def step(tokens: list[int]) -> list[int]:
        out = processor(mx.array(tokens), logits)
        return [i for i in range(vocabulary) if out[0, i].item() > -1e9]

    everything = list(range(vocabulary))
    assert step([5]) == everything  # the prompt's last token
    assert step([5, 1]) == everything  # the opener
    assert step([5, 1, 3]) == everything  # one reasoning token
    assert step([5, 1, 3, 4]) == [7]  # two: the closer is forced
    assert step([5, 1, 3, 4, 7]) == [8]
    assert step([5, 1, 3, 4, 7, 8]) == everything  # the answer is free
    assert step([5, 1, 3, 4, 7, 8, 1]) == [7]  # a block reopened after the budget closes at once
    assert processor.closed_by_budget == 2


def test_a_call_opener_ends_the_budget_where_the_parser_ends_the_block() -> None:
    """hermes' parser ends a block the prompt opened at `<tool_call>` (the call is the answer): the
    budget stops counting there and never forces a closer into the call. In a block the model
    opened itself the opener is reasoning text, and the budget goes on."""
    markers = ReasoningMarkers(
        "<a>", "</a>", opener_ids=(1,), closer_ids=(7,), ender_ids=(), prompt_ender_ids=((6, 9),)
    )
    vocabulary = 10
    logits = mx.zeros((1, vocabulary))
    everything = list(range(vocabulary))

    def allowed(processor: ThinkingBudgetProcessor, tokens: list[int]) -> list[int]:
        out = processor(mx.array(tokens), logits)
        return [i for i in range(vocabulary) if out[0, i].item() > -1e9]

    prompt_opened = ThinkingBudgetProcessor(markers, 3, in_reasoning=True)
    assert allowed(prompt_opened, [5]) == everything
    assert allowed(prompt_opened, [5, 3]) == everything
    assert allowed(prompt_opened, [5, 3, 6]) == everything
    assert allowed(prompt_opened, [5, 3, 6, 9]) == everything  # the call opened: no closer forced
    assert allowed(prompt_opened, [5, 3, 6, 9, 4, 4, 4]) == everything
    assert (prompt_opened.spent, prompt_opened.closed_by_budget) == (1, 0)

    model_opened = ThinkingBudgetProcessor(markers, 3, in_reasoning=False)
    assert allowed(model_opened, [5]) == everything
    assert allowed(model_opened, [5, 1, 3, 6]) == everything
    assert allowed(model_opened, [5, 1, 3, 6, 9]) == [7]  # the opener was text: budget spent
    assert model_opened.closed_by_budget == 1


def test_reasoning_markers_know_the_call_openers_that_end_the_block(demo_model_path: Path) -> None:
    from mlx_lm import load

    _, tokenizer = load(str(demo_model_path))
    markers = reasoning_markers(tokenizer.chat_template, "hermes", tokenizer)
    assert markers is not None
    assert markers.ender_ids == ()
    assert markers.prompt_ender_ids == (tuple(tokenizer.encode("<tool_call>", add_special_tokens=False)),)


def test_reasoning_markers_come_from_the_family(demo_model_path: Path) -> None:
    from mlx_lm import load

    _, tokenizer = load(str(demo_model_path))
    markers = reasoning_markers(tokenizer.chat_template, "hermes", tokenizer)
    assert markers is not None and (markers.opener, markers.closer) == ("<think>", "</think>")
    assert len(markers.closer_ids) == 1
    assert reasoning_markers("{{ messages }}", "hermes", tokenizer) is None


def test_reasoning_markers_of_a_template_no_format_was_detected_from(demo_model_path: Path) -> None:
    """`tool_format="auto"` (what an undetected template gets): the generic `<think>` pair. Before,
    `mlx_thinking_budget` raised ValueError ("unknown tool-call format 'auto'") for such a model."""
    from mlx_lm import load

    _, tokenizer = load(str(demo_model_path))
    markers = reasoning_markers(tokenizer.chat_template, "auto", tokenizer)
    assert markers is not None and (markers.opener, markers.closer) == ("<think>", "</think>")
