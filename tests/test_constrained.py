"""Grammar-constrained decoding on the tiny model with RANDOM (untrained) weights.

An untrained model writes noise, so whenever its output parses as valid calls or valid JSON,
the grammar made it so. Each generation is capped at a few hundred tokens; string fields carry
`max_length` and numbers bounds, so that noise inside a value ends (greedy noise repeats one
token: `1111...` or a string that never meets its `"`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

pytest.importorskip("llguidance")

import mlx.core as mx
from mlx_lm import stream_generate
from mlx_lm.sample_utils import make_sampler

from pydantic_mlx.constrained import output_processor, tool_call_processor
from pydantic_mlx.constrained._decoding import GrammarLogitsProcessor, grammar_tokenizer
from pydantic_mlx.constrained._grammars import ToolSchema, output_grammars, tool_call_grammars
from pydantic_mlx.parsers import ToolCall, parse
from pydantic_mlx.parsers.formats import get_format

MAX_TOKENS = 300
SEEDS = (0, 1, 2)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Weather(Strict):
    city: Annotated[str, Field(max_length=12)]
    unit: Literal["celsius", "fahrenheit"]
    days: Annotated[int, Field(ge=1, le=14)] | None = None


class Priority(StrEnum):
    low = "low"
    high = "high"


class Item(Strict):
    sku: Annotated[str, Field(max_length=8)]
    quantity: Annotated[int, Field(ge=1, le=99)]


class Order(Strict):
    """Nested models and an enum: pydantic writes them as `$defs` with `$ref`s."""

    items: Annotated[list[Item], Field(min_length=1, max_length=3)]
    priority: Priority
    gift: bool = False
    note: Annotated[str, Field(max_length=10)] | None = None


class Ping(Strict):
    pass


MODELS: dict[str, type[BaseModel]] = {"get_weather": Weather, "place_order": Order, "ping": Ping}
TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": model.model_json_schema()}}
    for name, model in MODELS.items()
]
TOOL_SETS = {
    "weather": TOOLS[:1],
    "order": TOOLS[1:2],
    "all": TOOLS,
}


@pytest.fixture(scope="module")
def random_model(random_model_path: Path) -> tuple[Any, Any]:
    from mlx_lm import load

    return load(str(random_model_path))


def _prompt(tokenizer: Any, tools: list[dict[str, Any]] | None, text: str = "Go.") -> list[int]:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tools=tools, add_generation_prompt=True
    )


def _generate(
    loaded: tuple[Any, Any],
    prompt: list[int],
    processors: list[Any],
    *,
    seed: int | None,
    max_tokens: int = MAX_TOKENS,
    until: Callable[[], bool] | None = None,
) -> tuple[str, str | None]:
    model, tokenizer = loaded
    if seed is not None:
        mx.random.seed(seed)
    sampler = make_sampler(temp=1.0) if seed is not None else make_sampler(temp=0.0)
    text, finish = "", None
    for response in stream_generate(
        model, tokenizer, prompt, max_tokens=max_tokens, sampler=sampler, logits_processors=processors
    ):
        text += response.text
        finish = response.finish_reason
        if until is not None and until():
            break
    return text, finish


def _assert_valid(calls: list[ToolCall], tools: list[dict[str, Any]]) -> None:
    declared = {t["function"]["name"] for t in tools}
    for call in calls:
        assert call.name in declared
        MODELS[call.name].model_validate(call.arguments)


class ForceText:
    """A logits processor that makes the model write `text` first (a stand-in for a model that
    opens a call on its own, which random weights never do), then leaves the logits alone."""

    def __init__(self, tokenizer: Any, text: str) -> None:
        self._tokens = tokenizer.encode(text, add_special_tokens=False)
        self._step = 0

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        if self._step >= len(self._tokens):
            return logits
        forced = self._tokens[self._step]
        self._step += 1
        return mx.where(mx.arange(logits.shape[-1]) == forced, 0.0, -mx.inf)[None].astype(logits.dtype)


# --- tool_choice="required": the answer is calls, valid ones -------------------------------------


@pytest.mark.parametrize("seed", [None, *SEEDS])
@pytest.mark.parametrize("tool_set", list(TOOL_SETS))
@pytest.mark.parametrize("tool_format", ["hermes", "qwen3_coder", "auto"])
def test_required_answer_is_a_valid_call(
    random_model: tuple[Any, Any], tool_format: str, tool_set: str, seed: int | None
) -> None:
    tools = TOOL_SETS[tool_set]
    processor = tool_call_processor(random_model[1], tool_format, tools, required=True, parallel=False)
    text, finish = _generate(random_model, _prompt(random_model[1], tools), [processor], seed=seed)
    assert finish == "stop", text
    result = parse(text, tool_format, tools)
    assert len(result.calls) == 1, text
    assert not result.errors, (text, result.errors)
    assert result.content is None or not result.content.strip()
    _assert_valid(result.calls, tools)
    assert processor.problems == []


@pytest.mark.parametrize("seed", [None, *SEEDS])
def test_required_parallel_calls_are_all_valid(random_model: tuple[Any, Any], seed: int | None) -> None:
    tools = TOOL_SETS["all"]
    processor = tool_call_processor(random_model[1], "hermes", tools, required=True)
    text, finish = _generate(random_model, _prompt(random_model[1], tools), [processor], seed=seed)
    result = parse(text, "hermes", tools, truncated=finish == "length")
    assert result.calls, text
    _assert_valid(result.calls, tools)
    # Noise may go on calling until the token limit: only that last call may be cut off.
    assert all(e.kind == "truncated_call" for e in result.errors) and (
        finish == "length" or not result.errors
    )


# --- lazy: free text, a call the model opens, free text again ------------------------------------

LAZY_OPENINGS = [
    pytest.param("hermes", "Let me check.\n<tool_call>", id="hermes-tag"),
    pytest.param("hermes", 'Sure:\n```json\n{"name": "get_weather"', id="hermes-fence"),
    pytest.param("hermes", 'Sure:\n```json\n{\n  "name": "place_order"', id="hermes-fence-pretty"),
    pytest.param("hermes", 'I will call it:\n{"name": "ping"', id="hermes-bare"),
    pytest.param("qwen3_coder", "Let me check.\n<tool_call>", id="qwen3_coder-tag"),
    pytest.param("qwen3_coder", "Let me check.\n<function=", id="qwen3_coder-function"),
    pytest.param("auto", "Checking.\n<tool_call>\n<function=", id="auto-xml"),
    pytest.param("auto", "Checking.\n<tool_call>\n{", id="auto-json"),
    pytest.param("llama3_json", '{"name": "get_weather"', id="llama3_json-bare"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("tool_format", "opening"), LAZY_OPENINGS)
def test_a_call_the_model_opens_is_valid(
    random_model: tuple[Any, Any], tool_format: str, opening: str, seed: int
) -> None:
    tools = TOOL_SETS["all"]
    tokenizer = random_model[1]
    processor = tool_call_processor(tokenizer, tool_format, tools)
    processors = [ForceText(tokenizer, opening), processor]
    # Stop a few tokens after the call's region is over: what noise follows is not ours to judge.
    after_call = _countdown(lambda: processor.regions >= 1 and not processor.constraining, 5)
    text, _ = _generate(random_model, _prompt(tokenizer, tools), processors, seed=seed, until=after_call)
    assert text.startswith(opening)
    assert processor.regions >= 1 and processor.problems == [], (text, processor.problems)
    # The constrained call ends where its grammar ends; the free noise after it is not ours to judge.
    head = _first_region(text, len(opening))
    result = parse(head, tool_format, tools)
    assert len(result.calls) == 1 and not result.errors, (head, result.errors)
    _assert_valid(result.calls, tools)


def _countdown(condition: Callable[[], bool], steps: int) -> Callable[[], bool]:
    left = steps

    def done() -> bool:
        nonlocal left
        if condition():
            left -= 1
        return left <= 0

    return done


def _first_region(text: str, after: int) -> str:
    """The text up to the end of the first call (by the format's closer, or the JSON's end)."""
    for closer in ("</tool_call>", "</function>", "\n```"):
        end = text.find(closer, after)
        if end >= 0 and not (closer == "</function>" and "<tool_call>" in text[:end]):
            return text[: end + len(closer)]
    depth, in_string, escaped = 0, False, False
    start = text.index("{")
    for i, ch in enumerate(text[start:], start):
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return text[: i + 1]
    raise AssertionError(f"no complete call in {text!r}")


def test_free_text_is_not_constrained(random_model: tuple[Any, Any]) -> None:
    tools = TOOL_SETS["all"]
    tokenizer = random_model[1]
    prompt = _prompt(tokenizer, tools)
    free, _ = _generate(random_model, prompt, [], seed=None, max_tokens=60)
    processor = tool_call_processor(tokenizer, "hermes", tools)
    lazy, _ = _generate(random_model, prompt, [processor], seed=None, max_tokens=60)
    assert lazy == free
    assert processor.regions == 0


def test_json_that_names_no_declared_tool_stays_free(random_model: tuple[Any, Any]) -> None:
    tools = TOOL_SETS["weather"]
    tokenizer = random_model[1]
    opening = 'Example:\n```json\n{"name": "Bob", "age": 3}\n```\n{"name": "get_weatherx"'
    processor = tool_call_processor(tokenizer, "hermes", tools)
    text, _ = _generate(
        random_model, _prompt(tokenizer, tools), [ForceText(tokenizer, opening), processor], seed=0
    )
    assert text.startswith(opening)
    assert processor.regions == 0


# --- native output: the whole answer is JSON valid against the schema ----------------------------


@pytest.mark.parametrize("seed", [None, *SEEDS])
@pytest.mark.parametrize("output", [Weather, Order])
def test_native_output_validates(
    random_model: tuple[Any, Any], output: type[BaseModel], seed: int | None
) -> None:
    tokenizer = random_model[1]
    processor = output_processor(tokenizer, output.model_json_schema())
    text, finish = _generate(random_model, _prompt(tokenizer, None), [processor], seed=seed)
    assert finish == "stop", text
    output.model_validate_json(text)


@pytest.mark.parametrize("seed", [None, *SEEDS])
def test_native_output_with_tools_is_valid_calls_or_valid_json(
    random_model: tuple[Any, Any], seed: int | None
) -> None:
    tools = TOOL_SETS["weather"]
    tokenizer = random_model[1]
    processor = output_processor(
        tokenizer, Order.model_json_schema(), tool_format="hermes", tools=tools, parallel=False
    )
    text, finish = _generate(random_model, _prompt(tokenizer, tools), [processor], seed=seed)
    assert finish == "stop", text
    result = parse(text, "hermes", tools)
    if result.calls:
        assert len(result.calls) == 1 and not (result.content or "").strip()
        _assert_valid(result.calls, tools)
    else:
        Order.model_validate_json(text)


@pytest.mark.parametrize("seed", SEEDS)
def test_reasoning_stays_free_before_the_constrained_answer(random_model: tuple[Any, Any], seed: int) -> None:
    tokenizer = random_model[1]
    thinking = "hmm {not json at all\n</think>"
    processor = output_processor(
        tokenizer, Weather.model_json_schema(), tool_format="hermes", in_reasoning=True
    )
    text, finish = _generate(
        random_model, _prompt(tokenizer, None), [ForceText(tokenizer, thinking), processor], seed=seed
    )
    assert finish == "stop"
    assert text.startswith(thinking)
    Weather.model_validate_json(text[len(thinking) :])
    result = parse("<think>" + text, "hermes", [])
    assert result.reasoning is not None and Weather.model_validate_json(result.content or "")


def test_required_after_reasoning(random_model: tuple[Any, Any]) -> None:
    tools = TOOL_SETS["weather"]
    tokenizer = random_model[1]
    thinking = "the user wants weather</think>\n"
    processor = tool_call_processor(tokenizer, "hermes", tools, required=True, in_reasoning=True)
    text, _ = _generate(
        random_model, _prompt(tokenizer, tools), [ForceText(tokenizer, thinking), processor], seed=1
    )
    result = parse(text, "hermes", tools, in_reasoning=True)
    assert result.reasoning == "the user wants weather"
    assert result.calls and not result.errors
    _assert_valid(result.calls, tools)


@pytest.mark.parametrize("required", [True, False])
def test_a_call_opener_ends_the_reasoning_block_the_prompt_opened(
    random_model: tuple[Any, Any], required: bool
) -> None:
    """hermes' parser reads `<tool_call>` inside a block the prompt opened as the end of the
    reasoning and the start of a call (as llama.cpp does): the grammar must start there too, or
    the call would be free. Forced and lazy alike, the call that follows is valid."""
    tools = TOOL_SETS["weather"]
    tokenizer = random_model[1]
    thinking = "the user wants weather\n<tool_call>"
    for seed in SEEDS:
        processor = tool_call_processor(tokenizer, "hermes", tools, required=required, in_reasoning=True)
        text, _ = _generate(
            random_model,
            _prompt(tokenizer, tools),
            [ForceText(tokenizer, thinking), processor],
            seed=seed,
            until=lambda p=processor: p.regions == 1 and not p.constraining,
        )
        assert processor.regions == 1 and processor.problems == [], (seed, text)
        result = parse(text, "hermes", tools, in_reasoning=True)
        assert (result.reasoning or "").strip() == "the user wants weather", text
        assert len(result.calls) == 1 and not result.errors, (seed, text, result)
        _assert_valid(result.calls, tools)


def test_reasoning_before_native_output_cannot_write_a_call_opener_that_ends_it(
    random_model: tuple[Any, Any],
) -> None:
    """Before a forced native answer, a one-token opener that would end the reasoning block the
    prompt opened (and start a call the answer cannot be) is masked inside it, as the end of the
    sequence is. An answer that may be a call may start with it."""
    tokenizer = random_model[1]
    schema = Weather.model_json_schema()
    [opener] = tokenizer.encode("<tool_call>", add_special_tokens=False)
    [word] = tokenizer.encode("a", add_special_tokens=False)
    prompt = mx.array(_prompt(tokenizer, None))
    logits = mx.zeros((1, len(tokenizer.vocab)))

    native = output_processor(tokenizer, schema, tool_format="hermes", in_reasoning=True)
    masked = native(prompt, logits)
    assert masked[0, word].item() == 0.0
    assert masked[0, tokenizer.eos_token_id].item() == -float("inf")
    assert masked[0, opener].item() == -float("inf")

    tools = [{"type": "function", "function": {"name": "weather", "parameters": schema}}]
    calls = output_processor(tokenizer, schema, tool_format="hermes", tools=tools, in_reasoning=True)
    assert calls(prompt, logits)[0, opener].item() == 0.0


def test_a_block_the_model_opened_keeps_a_call_opener_as_text(random_model: tuple[Any, Any]) -> None:
    """hermes' parser ends only a block the prompt opened at `<tool_call>`; in one the model opened
    itself it may be writing about calls, and the processor leaves that text free as well."""
    tools = TOOL_SETS["weather"]
    tokenizer = random_model[1]
    thinking = "<think>I could write <tool_call> here"
    processor = tool_call_processor(tokenizer, "hermes", tools)
    text, _ = _generate(
        random_model,
        _prompt(tokenizer, tools),
        [ForceText(tokenizer, thinking), processor],
        seed=0,
        max_tokens=len(tokenizer.encode(thinking, add_special_tokens=False)) + 3,
    )
    assert text.startswith(thinking) and processor.regions == 0 and not processor.constraining
    assert parse(text, "hermes", tools).calls == []


# --- grammars: what they accept and refuse, checked token by token -------------------------------


def _accepts(loaded: tuple[Any, Any], grammar: str, text: str) -> bool:
    tokenizer = grammar_tokenizer(loaded[1])
    matcher = tokenizer.matcher(grammar)
    return (
        matcher.consume_tokens(tokenizer.llg.tokenize_str(text, parse_special=True))
        and matcher.is_accepting()
    )


SCHEMAS = [ToolSchema(name, model.model_json_schema()) for name, model in MODELS.items()]
GOOD_CALLS = [
    ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}),
    ToolCall("get_weather", {"city": "Oslo", "unit": "fahrenheit", "days": 3}),
    ToolCall("place_order", {"items": [{"sku": "a1", "quantity": 2}], "priority": "high", "note": None}),
    ToolCall("ping", {}),
]
BAD_CALLS = [
    ToolCall("get_forecast", {"city": "Paris", "unit": "celsius"}),  # not declared
    ToolCall("get_weather", {"city": "Paris"}),  # a required argument missing
    ToolCall("get_weather", {"city": "Paris", "unit": "kelvin"}),  # not in the enum
    ToolCall("get_weather", {"city": "Paris", "unit": "celsius", "wind": 1}),  # undeclared argument
    ToolCall("place_order", {"items": [], "priority": "low"}),  # too few items
    ToolCall("place_order", {"items": [{"sku": "a1", "quantity": "2"}], "priority": "low"}),  # wrong type
    ToolCall("place_order", {"items": [{"sku": "a1", "quantity": 100}], "priority": "low"}),  # out of range
]


@pytest.mark.parametrize("tool_format", ["hermes", "qwen3_coder"])
def test_call_grammar_accepts_rendered_valid_calls_and_refuses_invalid_ones(
    random_model: tuple[Any, Any], tool_format: str
) -> None:
    tokenizer = grammar_tokenizer(random_model[1])
    grammars = tool_call_grammars(
        tool_format,
        SCHEMAS,
        required=True,
        untagged_json=False,
        reasoning=None,
        special_token=tokenizer.special_token,
    )
    assert grammars is not None and grammars.answer is not None
    render = get_format(tool_format).render
    for call in GOOD_CALLS:
        assert _accepts(random_model, grammars.answer, render([call])), render([call])
    assert _accepts(random_model, grammars.answer, render(GOOD_CALLS[:2]))
    for call in BAD_CALLS:
        if tool_format == "qwen3_coder" and call.arguments.get("items") == []:
            continue  # an XML-style empty list is `[]` too; covered by the JSON format
        assert not _accepts(random_model, grammars.answer, render([call])), render([call])


def test_output_grammar_accepts_only_valid_json(random_model: tuple[Any, Any]) -> None:
    grammar = output_grammars(Order.model_json_schema(), reasoning=None).answer
    assert grammar is not None
    good = {"items": [{"sku": "x", "quantity": 1}], "priority": "low"}
    assert _accepts(random_model, grammar, json.dumps(good))
    assert not _accepts(random_model, grammar, json.dumps(good, indent=2))  # a whole answer is compact
    assert not _accepts(random_model, grammar, json.dumps({**good, "priority": "urgent"}))
    assert not _accepts(random_model, grammar, json.dumps({"items": good["items"]}))


def test_untagged_triggers_fire_on_declared_names_only() -> None:
    grammars = tool_call_grammars(
        "hermes", SCHEMAS, required=False, untagged_json=True, reasoning=None, special_token=lambda _: None
    )
    assert grammars is not None
    tag, fence, bare = grammars.triggers

    def fires(text: str) -> list[int]:
        return [i for i, t in enumerate((tag, fence, bare)) if t.pattern.search(text.encode())]

    assert fires("<tool_call>") == [0]
    assert fires('```json\n{"name": "ping"') == [1, 2]
    assert fires('```json\n{\n  "name": "get_weather"') == [1, 2]
    assert fires('```\n{"name":"ping"') == [1, 2]
    assert fires('text:  {"name": "ping"') == [2]
    assert fires('{"name": "ping"') == [2]
    assert fires('f({"name": "ping"') == []
    assert fires('{"name": "pin"') == []
    assert fires('{"name": "pingpong"') == []
    assert fires('```json\n{"city": "Paris"}') == []


def test_processor_masks_only_inside_a_call(random_model: tuple[Any, Any]) -> None:
    tokenizer = random_model[1]
    processor = tool_call_processor(tokenizer, "hermes", TOOL_SETS["weather"])
    assert isinstance(processor, GrammarLogitsProcessor)
    logits = mx.zeros((1, 1024))
    processor(mx.array([1, 2, 3]), logits)  # the prompt
    states = []
    seen = [1, 2, 3]
    text = 'Hi <tool_call>\n{"name": "get_weather", "arguments": {"city": "a", "unit": "celsius"}}\n</tool_call> ok'
    for token in tokenizer.encode(text, add_special_tokens=False):
        seen.append(token)
        masked = processor(mx.array(seen), logits)
        states.append(bool(mx.isinf(masked).any().item()))
    assert processor.regions == 1 and processor.problems == []
    assert states[0] is False and states[-1] is False
    assert any(states)


@pytest.fixture(scope="module")
def thinking_model(random_model_path: Path) -> tuple[Any, Any]:
    """The random model with `<think>`/`</think>` added as special tokens (as in Qwen3's tokenizer)."""
    from mlx_lm import load
    from mlx_lm.tokenizer_utils import TokenizerWrapper
    from tokenizers import AddedToken

    model, tokenizer = load(str(random_model_path))
    hf = tokenizer._tokenizer
    hf.add_tokens([AddedToken("<think>", special=True), AddedToken("</think>", special=True)])
    return model, TokenizerWrapper(hf)


def _feed(processor: Any, prompt: list[int], tokens: list[int], width: int) -> list[mx.array]:
    """The processor's output before each of `tokens` (fed as if sampled), on zero logits."""
    logits = mx.zeros((1, width))
    outputs = [processor(mx.array(prompt), logits)]
    for i in range(1, len(tokens)):
        outputs.append(processor(mx.array(prompt + tokens[:i]), logits))
    return outputs


def _allowed(output: mx.array, token: int) -> bool:
    return bool(output[0, token].item() == 0.0)


def _masked(output: mx.array) -> list[int]:
    return [i for i, masked in enumerate(mx.isinf(output[0]).tolist()) if masked]  # pyright: ignore[reportArgumentType]


def test_a_thinking_model_may_open_its_reasoning_before_the_constrained_answer(
    thinking_model: tuple[Any, Any],
) -> None:
    # The tokenizer's ids for the added tokens lie past the random model's logits, so the
    # processor is fed the tokens of a thinking answer directly, on logits wide enough for them.
    tokenizer = thinking_model[1]
    think = tokenizer.convert_tokens_to_ids("<think>")
    width = think + 64
    processor = output_processor(tokenizer, Weather.model_json_schema(), tool_format="hermes")
    answer = '{"city": "Oslo", "unit": "celsius"}'
    tokens = tokenizer.encode("<think>plan: {no json here</think>" + answer, add_special_tokens=False)
    outputs = _feed(processor, _prompt(tokenizer, None), [*tokens, tokenizer.eos_token_id], width)
    assert tokens[0] == think and _allowed(outputs[0], think)
    answer_from = len(tokens) - len(tokenizer.encode(answer, add_special_tokens=False))
    free = outputs[1:answer_from]
    # The reasoning is not masked, but it cannot end the output: the forced answer must follow.
    ends = sorted(tokenizer.eos_token_ids)
    assert all(_masked(o) == ends for o in free)
    constrained = outputs[answer_from:]
    assert all(
        _allowed(o, t)
        for o, t in zip(constrained, [*tokens[answer_from:], tokenizer.eos_token_id], strict=True)
    )
    assert not _allowed(outputs[-1], tokens[answer_from])  # only the end may follow the answer
    assert processor.regions == 1 and processor.problems == []


def test_without_an_opened_reasoning_block_the_answer_starts_at_once(thinking_model: tuple[Any, Any]) -> None:
    tokenizer = thinking_model[1]
    think = tokenizer.convert_tokens_to_ids("<think>")
    processor = output_processor(tokenizer, Weather.model_json_schema(), tool_format="hermes")
    outputs = _feed(
        processor,
        _prompt(tokenizer, None),
        tokenizer.encode('{"city": "', add_special_tokens=False),
        think + 64,
    )
    assert _allowed(outputs[0], think)
    assert not _allowed(outputs[-1], think)


def test_a_region_completed_by_the_token_that_opened_it_leaves_the_text_free(random_model_path: Path) -> None:
    """A token may both open a call and end it (`()]` after `[ping`, in a vocabulary that has
    it): the region is complete, so the text after it is free, not masked down to the end."""
    from mlx_lm import load
    from mlx_lm.tokenizer_utils import TokenizerWrapper
    from tokenizers import AddedToken

    _, loaded = load(str(random_model_path))
    hf = loaded._tokenizer
    hf.add_tokens([AddedToken("()]", special=False)])
    tokenizer = TokenizerWrapper(hf)
    processor = tool_call_processor(tokenizer, "pythonic", TOOL_SETS["all"])
    tokens = tokenizer.encode("Calls:\n[ping()] and more", add_special_tokens=False)
    closing = tokens.index(tokenizer.convert_tokens_to_ids("()]"))
    outputs = _feed(processor, [1, 2, 3], tokens, len(hf) + 8)
    assert processor.regions == 1 and processor.problems == []
    assert not processor.constraining
    after = outputs[closing + 1]  # the logits for the token after `()]`
    assert not bool(mx.isinf(after).any().item()), "the text after the call is masked"


def test_a_refused_token_is_reported_in_a_line_not_with_the_grammar(random_model: tuple[Any, Any]) -> None:
    """`problems` end up in every response's `provider_details`: llguidance's error is cut to
    its message (it appends the parser state and the grammar: 23 kB for 50 small tools)."""
    tokenizer = random_model[1]
    tools = [ToolSchema(f"tool_{i}", Weather.model_json_schema()) for i in range(50)]
    processor = tool_call_processor(tokenizer, "hermes", tools, required=True)
    tokens = tokenizer.encode("no call", add_special_tokens=False)  # as if a sampler overrode the mask
    _feed(processor, [1, 2, 3], [*tokens, tokens[-1]], 1024)
    [problem] = processor.problems
    assert "doesn't satisfy the grammar" in problem and len(problem) <= 300, problem[:500]
