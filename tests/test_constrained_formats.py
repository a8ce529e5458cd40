"""Native call grammars of llama3_json, mistral, deepseek, kimi_k2, glm and harmony.

Two tokenizers: the tiny model's own, which has none of these formats' special tokens (so every
marker is plain text in the grammar), and the same with each marker added as a special token
and the random model's embedding grown to match (so markers are single tokens, as in the real
tokenizers). The model's weights are RANDOM: whenever its output parses as valid calls, the
grammar made it so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

pytest.importorskip("llguidance")

import mlx.core as mx

from pydantic_mlx.constrained import output_processor, tool_call_processor
from pydantic_mlx.constrained._decoding import grammar_tokenizer
from pydantic_mlx.constrained._grammars import CALL_FORMATS, ToolSchema, tool_call_grammars
from pydantic_mlx.parsers import ToolCall, parse
from pydantic_mlx.parsers.formats import format_names, get_format
from test_constrained import (
    BAD_CALLS,
    GOOD_CALLS,
    MAX_TOKENS,
    SCHEMAS,
    TOOL_SETS,
    ForceText,
    _accepts,
    _assert_valid,
    _countdown,
    _generate,
    _prompt,
)

FORMATS = [
    "llama3_json",
    "mistral",
    "deepseek",
    "kimi_k2",
    "glm",
    "harmony",
    "gemma4",
    "pythonic",
    "minimax_m2",
    "seed_oss",
    "minicpm5",
    "granite_20b_fc",
    "hy3",
    "hy4",
    "solar_open",
    "function_gemma",
    "command",
    "longcat",
    "gigachat",
    "apertus",
    "granite",
    "nemotron",
    "phi4_mini",
    "hunyuan",
    "apriel",
    "jamba",
    "internlm2",
    "ernie",
    "olmo3",
    "minicpm3",
]

SPECIAL_TOKENS = {
    "llama3_json": ["<|python_tag|>"],
    "mistral": ["[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"],
    "deepseek": [
        "<｜tool▁calls▁begin｜>",
        "<｜tool▁calls▁end｜>",
        "<｜tool▁call▁begin｜>",
        "<｜tool▁call▁end｜>",
        "<｜tool▁sep｜>",
        "｜DSML｜",
    ],
    "kimi_k2": [
        "<|tool_calls_section_begin|>",
        "<|tool_calls_section_end|>",
        "<|tool_call_begin|>",
        "<|tool_call_end|>",
        "<|tool_call_argument_begin|>",
        "<|open|>",
        "<|sep|>",
        "<|close|>",
    ],
    "glm": ["<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>"],  # <tool_call> already is one
    "harmony": ["<|start|>", "<|channel|>", "<|message|>", "<|constrain|>", "<|call|>", "<|end|>"],
    "gemma4": ["<|tool_call>", "<tool_call|>", '<|"|>'],
    "pythonic": ["<|python_start|>", "<|python_end|>", "<|tool_call_start|>", "<|tool_call_end|>"],
    "minimax_m2": ["<minimax:tool_call>", "</minimax:tool_call>"],
    "seed_oss": ["<seed:tool_call>", "</seed:tool_call>"],
    "minicpm5": [],  # its tags are ordinary text in its tokenizer
    "granite_20b_fc": ["<function_call>"],
    "hy3": [
        f"<{closing}{word}:opensource>"
        for word in ("tool_calls", "tool_call", "arg_key", "arg_value")
        for closing in ("", "/")
    ]
    + ["<tool_sep:opensource>"],
    "hy4": [
        f"<{closing}{word}:6124c78e>"
        for word in ("tool_calls", "tool_call", "arg_key", "arg_value")
        for closing in ("", "/")
    ],
    "solar_open": [
        "<|tool_call:start|>",
        "<|tool_call:end|>",
        "<|tool_arg:start|>",
        "<|tool_arg:value|>",
        "<|tool_arg:end|>",
    ],
    "function_gemma": ["<start_function_call>", "<end_function_call>", "<escape>"],
    "command": ["<|START_ACTION|>", "<|END_ACTION|>"],
    "longcat": ["<longcat_tool_call>", "</longcat_tool_call>", "<longcat_arg_key>", "</longcat_arg_key>"],
    "gigachat": ["<|role_sep|>", "<|function_call|>", "｜GCML｜"],
    "apertus": ["<|tools_prefix|>", "<|tools_suffix|>"],
    "granite": ["<|tool_call|>"],
    "nemotron": ["<TOOLCALL>", "</TOOLCALL>"],
    "phi4_mini": [],
    "hunyuan": ["<tool_calls>", "</tool_calls>"],
    "apriel": [],  # hunyuan's
    "jamba": [],  # hunyuan's
    "internlm2": ["<|action_start|>", "<|plugin|>", "<|action_end|>"],
    "ernie": [],  # hermes' <tool_call>, already one
    "olmo3": [],
    "minicpm3": ["<|thought_start|>", "<|thought_end|>"],  # its call tokens are pythonic's
}
# The markers a `required` answer holds, one of each tuple (llama3_json's and pythonic's are
# optional): a DeepSeek answer is a V3/V3.1 section or a DSML block, a Kimi one a K2 section or a
# K3 tools channel, and Gemma 4's first call may leave out `<|tool_call>` but not `<tool_call|>`.
REQUIRED_OPENERS = {
    "mistral": ("[TOOL_CALLS]",),
    "deepseek": ("<｜tool▁calls▁begin｜>", "｜DSML｜"),
    "kimi_k2": ("<|tool_calls_section_begin|>", "<|open|>"),
    "glm": ("<tool_call>",),
    "harmony": ("<|channel|>",),
    "gemma4": ("<tool_call|>",),
    "minimax_m2": ("<minimax:tool_call>",),
    "seed_oss": ("<seed:tool_call>",),
    "function_gemma": ("<start_function_call>",),
    "command": ("<|START_ACTION|>",),
    "longcat": ("<longcat_tool_call>",),
    "gigachat": ("<|role_sep|>", "<|function_call|>", "｜GCML｜"),
    "apertus": ("<|tools_prefix|>",),
    "granite": ("<|tool_call|>",),
    "nemotron": ("<TOOLCALL>",),
    "hunyuan": ("<tool_calls>",),
    "solar_open": ("<|tool_call:start|>",),
    "apriel": ("<tool_calls>",),
    "jamba": ("<tool_calls>",),
    "internlm2": ("<|action_start|>",),
}

# The layouts each parser reads from real models, beyond what `render` writes.
VARIANTS: dict[str, list[str]] = {
    "llama3_json": [
        '{"name": "ping", "parameters": {}}',
        '{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "celsius"}}; {"name": "ping", "parameters": {}}',
    ],
    "mistral": [
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}, "id": "a1b2c3d4e"}]',
        '[TOOL_CALLS][{"name": "ping", "arguments": {}}, {"name": "ping", "arguments": {}}]',
        "[TOOL_CALLS]ping[CALL_ID]a1b2c3d4e[ARGS]{}",
    ],
    "deepseek": [
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
        '{"city": "Oslo", "unit": "celsius"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function'
        "<｜tool▁sep｜>ping\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    ],
    "kimi_k2": [
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.ping:12<|tool_call_argument_begin|>{}"
        "<|tool_call_end|><|tool_calls_section_end|>",
    ],
    "glm": [
        # GLM-4.7: no newlines; GLM-4.5's template: a newline before </tool_call> too.
        "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Oslo</arg_value>"
        "<arg_key>unit</arg_key><arg_value>celsius</arg_value></tool_call>",
        "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>New\nYork</arg_value>\n"
        "<arg_key>unit</arg_key>\n<arg_value>celsius</arg_value>\n</tool_call>",
        "<tool_call>ping</tool_call>",
    ],
    "harmony": [
        "<|start|>assistant<|channel|>commentary to=functions.ping <|constrain|>json<|message|>{}<|call|>",
        "<|channel|>commentary to=functions.ping json<|message|>{}<|call|>",
        "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>"
        '{"city": "Oslo", "unit": "celsius"}<|call|>',
    ],
    "gemma4": [
        '<|tool_call>call:place_order{items:[{sku:<|"|>a 1<|"|>,quantity:2}],priority:<|"|>high<|"|>}<tool_call|>'
        "<|tool_call>call:ping{}<tool_call|>",
    ],
    "pythonic": [
        '[get_weather(city="Oslo", unit="celsius")]',
        "<|tool_call_start|>[ping()]<|tool_call_end|>",
        "<|python_start|>[get_weather(city='It\\'s', unit='celsius', days=3), ping()]<|python_end|>",
    ],
    "minimax_m2": [
        '<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="city">New\nYork</parameter>\n'
        '<parameter name="unit">celsius</parameter>\n</invoke>\n<invoke name="ping">\n</invoke>\n'
        "</minimax:tool_call>",
    ],
    "seed_oss": [
        "<seed:tool_call>\n<function=get_weather>\n<parameter=city>Oslo</parameter>\n"
        "<parameter=unit>celsius</parameter>\n</function>\n</seed:tool_call>\n"
        "<seed:tool_call>\n<function=ping>\n</function>\n</seed:tool_call>",
    ],
    "hy3": [
        "<tool_calls:opensource>\n<tool_call:opensource>get_weather<tool_sep:opensource>"
        "<arg_key:opensource>city</arg_key:opensource><arg_value:opensource>New\nYork</arg_value:opensource>"
        "<arg_key:opensource>unit</arg_key:opensource><arg_value:opensource>celsius</arg_value:opensource>"
        "</tool_call:opensource>\n<tool_call:opensource>ping<tool_sep:opensource>\n</tool_call:opensource>\n"
        "</tool_calls:opensource>",
    ],
    "hy4": [
        "<tool_calls:6124c78e>\n<tool_call:6124c78e>get_weather"
        "<arg_key:6124c78e>city</arg_key:6124c78e><arg_value:6124c78e>New\nYork</arg_value:6124c78e>"
        "<arg_key:6124c78e>unit</arg_key:6124c78e><arg_value:6124c78e>celsius</arg_value:6124c78e>"
        "</tool_call:6124c78e>\n<tool_call:6124c78e>ping\n</tool_call:6124c78e>\n"
        "</tool_calls:6124c78e>",
    ],
    "solar_open": [
        "<|tool_call:start|>get_weather\n<|tool_arg:start|>city<|tool_arg:value|>New\nYork<|tool_arg:end|>\n"
        "<|tool_arg:start|>unit<|tool_arg:value|>celsius<|tool_arg:end|>\n<|tool_call:end|>",
        "<|tool_call:start|>get_weather<|tool_arg:start|>city<|tool_arg:value|> Oslo <|tool_arg:end|>"
        "<|tool_arg:start|>unit<|tool_arg:value|>celsius<|tool_arg:end|><|tool_call:end|>",
        "<|tool_call:start|>ping<|tool_call:end|>",
    ],
    "granite_20b_fc": [
        '<function_call>{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}'
        '<function_call> {"name": "ping", "arguments": {}}',
    ],
    "minicpm5": [
        '<function name="get_weather"><param name="city"><![CDATA[New\nYork]]></param>'
        '<param name="unit">celsius</param></function>\n<function name="ping"></function>',
    ],
    "function_gemma": [
        "<start_function_call>call:get_weather{city:<escape>Oslo<escape>,unit:<escape>celsius<escape>}"
        "<end_function_call><start_function_call>call:ping{}<end_function_call>",
    ],
    "command": [
        '<|START_ACTION|>[{"tool_call_id": "0", "tool_name": "ping", "parameters": {}}]<|END_ACTION|>',
        '<|START_ACTION|>\n[\n    {"tool_call_id": "0", "tool_name": "get_weather", "parameters": {"city": "Oslo", '
        '"unit": "celsius"}},\n    {"tool_call_id": "1", "tool_name": "ping", "parameters": {}}\n]\n<|END_ACTION|>',
    ],
    "longcat": [
        '<longcat_tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}\n'
        "</longcat_tool_call>",
        "<longcat_tool_call>get_weather<longcat_arg_key>city</longcat_arg_key><longcat_arg_value>Oslo"
        "</longcat_arg_value><longcat_arg_key>unit</longcat_arg_key><longcat_arg_value>celsius"
        "</longcat_arg_value></longcat_tool_call>",
    ],
    "gigachat": [
        'function call<|role_sep|>\n{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}',
        '<|function_call|>{"name": "ping", "arguments": {}}',
    ],
    "apertus": [
        '<|tools_prefix|>[{"get_weather": {"city": "Oslo", "unit": "celsius"}}, {"ping": {}}]<|tools_suffix|>'
    ],
    "granite": [
        '<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}, {"name": "ping", "arguments": {}}]'
    ],
    "nemotron": [
        '<TOOLCALL>[{"name": "ping", "arguments": {}}, {"name": "ping", "arguments": {}}]</TOOLCALL>'
    ],
    "phi4_mini": ['functools[{"name": "ping", "arguments": {}}, {"name": "ping", "arguments": {}}]'],
    "hunyuan": [
        '<tool_calls>[{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}, '
        '{"name": "ping", "arguments": {}}]</tool_calls>'
    ],
    "apriel": [
        '<tool_calls>[{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}, '
        '{"name": "ping", "arguments": {}}]</tool_calls>'
    ],
    "jamba": [
        '<tool_calls>[\n    {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}},\n    '
        '{"name": "ping", "arguments": {}}\n]</tool_calls>'
    ],
    "internlm2": [
        '<|action_start|><|plugin|>\n{"name": "ping", "parameters": {}}<|action_end|>'
        '<|action_start|> <|plugin|>\n{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "celsius"}}'
        "<|action_end|>"
    ],
    "ernie": [
        '<tool_call>\n{"name": "ping", "arguments": {}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}\n</tool_call>'
    ],
    "olmo3": [
        "<function_calls>\nget_weather(city='Oslo', unit=\"celsius\")\nping()\n</function_calls>",
    ],
    "minicpm3": [
        '<|tool_call_start|>\n```python\nget_weather(city="Oslo",unit="celsius")\nping()\n```\n<|tool_call_end|>',
    ],
}

# What opens a call in each format (the lazy triggers), as the model would write it.
OPENERS = {
    "llama3_json": "<|python_tag|>",
    "mistral": "[TOOL_CALLS]",
    "deepseek": "<｜tool▁calls▁begin｜>",
    "kimi_k2": "<|tool_calls_section_begin|>",
    "glm": "<tool_call>",
    "harmony": "<|channel|>commentary to=",
    "gemma4": "<|tool_call>",
    "pythonic": "<|python_start|>",
    "minimax_m2": "<minimax:tool_call>",
    "seed_oss": "<seed:tool_call>",
    "minicpm5": '<function name="',
    "granite_20b_fc": "<function_call>",
    "hy3": "<tool_calls:opensource>",
    "hy4": "<tool_calls:6124c78e>",
    "solar_open": "<|tool_call:start|>",
    "function_gemma": "<start_function_call>",
    "command": "<|START_ACTION|>",
    "longcat": "<longcat_tool_call>",
    "gigachat": "<｜GCML｜tool_calls>",
    "apertus": "<|tools_prefix|>",
    "granite": "<|tool_call|>",
    "nemotron": "<TOOLCALL>",
    "phi4_mini": 'functools[{"name"',
    "hunyuan": "<tool_calls>",
    "apriel": "<tool_calls>",
    "jamba": "<tool_calls>",
    "internlm2": "<|action_start|><|plugin|>",
    "ernie": "<tool_call>",
    "olmo3": "<function_calls>",
    "minicpm3": "<|tool_call_start|>",
}
# Text before a call: none where the opener counts only where the answer begins (`functools` is
# Python's module too, so Phi-4-mini's calls are read only there).
LEAD = {"phi4_mini": ""}
# Where a constrained call ends: the first of these after the opener (llama3: the JSON's end).
CLOSERS = {
    "mistral": None,
    "llama3_json": None,
    "deepseek": "<｜tool▁calls▁end｜>",
    "kimi_k2": "<|tool_calls_section_end|>",
    "glm": "</tool_call>",
    "harmony": "<|call|>",
    "gemma4": "<tool_call|>",
    "pythonic": "<|python_end|>",
    "minimax_m2": "</minimax:tool_call>",
    "seed_oss": "</seed:tool_call>",
    "minicpm5": "</function>",
    "granite_20b_fc": None,
    "hy3": "</tool_calls:opensource>",
    "hy4": "</tool_calls:6124c78e>",
    "solar_open": "<|tool_call:end|>",
    "function_gemma": "<end_function_call>",
    "command": "<|END_ACTION|>",
    "longcat": "</longcat_tool_call>",
    "gigachat": "</｜GCML｜tool_calls>",
    "apertus": "<|tools_suffix|>",
    "granite": None,
    "nemotron": "</TOOLCALL>",
    "phi4_mini": None,
    "hunyuan": "</tool_calls>",
    "apriel": "</tool_calls>",
    "jamba": "</tool_calls>",
    "internlm2": "<|action_end|>",
    "ernie": "</tool_call>",
    "olmo3": "</function_calls>",
    "minicpm3": "<|tool_call_end|>",
}


def _load(path: Path, special: bool) -> tuple[Any, Any]:
    from mlx_lm import load

    model, tokenizer = load(str(path))
    if not special:
        return model, tokenizer
    from mlx_lm.tokenizer_utils import TokenizerWrapper
    from tokenizers import AddedToken

    hf = tokenizer._tokenizer
    hf.add_tokens([AddedToken(t, special=True) for tokens in SPECIAL_TOKENS.values() for t in tokens])
    # Rows for the new tokens in the (tied) embedding, so the model has logits for them.
    embedding = model.model.embed_tokens
    rows = len(hf) - embedding.weight.shape[0]
    grown = mx.random.normal((rows, embedding.weight.shape[1]), key=mx.random.key(7)) * 0.02
    embedding.weight = mx.concatenate([embedding.weight, grown.astype(embedding.weight.dtype)])
    return model, TokenizerWrapper(hf)


@pytest.fixture(scope="module", params=[False, True], ids=["text-markers", "special-tokens"])
def loaded(request: pytest.FixtureRequest, random_model_path: Path) -> tuple[Any, Any]:
    return _load(random_model_path, request.param)


def _is_special_tokenizer(loaded: tuple[Any, Any]) -> bool:
    return grammar_tokenizer(loaded[1]).special_token("[TOOL_CALLS]") is not None


def _answer_grammar(loaded: tuple[Any, Any], tool_format: str, *, parallel: bool) -> str:
    tokenizer = grammar_tokenizer(loaded[1])
    grammars = tool_call_grammars(
        tool_format,
        SCHEMAS,
        required=True,
        parallel=parallel,
        untagged_json=False,
        reasoning=None,
        special_token=tokenizer.special_token,
    )
    assert grammars is not None and grammars.answer is not None
    return grammars.answer


def test_every_parser_format_has_a_call_grammar() -> None:
    assert set(CALL_FORMATS) == {"auto", *format_names()}


# --- the grammar accepts what the format writes, and only valid calls ---------------------------


@pytest.mark.parametrize("tool_format", FORMATS)
def test_grammar_accepts_rendered_and_real_layouts_and_refuses_invalid_calls(
    loaded: tuple[Any, Any], tool_format: str
) -> None:
    one = _answer_grammar(loaded, tool_format, parallel=False)
    many = _answer_grammar(loaded, tool_format, parallel=True)
    render = get_format(tool_format).render
    tools = TOOL_SETS["all"]
    for call in GOOD_CALLS:
        text = render([call])
        assert _accepts(loaded, one, text), text
        assert _accepts(loaded, many, text), text
    pair = render(GOOD_CALLS[:2])
    assert _accepts(loaded, many, pair), pair
    assert not _accepts(loaded, one, pair), pair
    for text in VARIANTS[tool_format]:
        result = parse(text, tool_format, tools)
        assert result.calls and not result.errors, text  # the parser reads it: so must the grammar
        assert _accepts(loaded, many, text), text
    for call in BAD_CALLS:
        if tool_format == "glm" and call.arguments.get("items") == [{"sku": "a1", "quantity": "2"}]:
            continue  # GLM writes a string raw: `2` is the number's spelling too
        assert not _accepts(loaded, many, render([call])), render([call])


def test_markers_are_special_tokens_when_the_tokenizer_has_them(loaded: tuple[Any, Any]) -> None:
    grammar = _answer_grammar(loaded, "mistral", parallel=True)
    tokenizer = grammar_tokenizer(loaded[1])
    if _is_special_tokenizer(loaded):
        assert f"<[{tokenizer.special_token('[TOOL_CALLS]')}]>" in grammar
        assert '"[TOOL_CALLS]"' not in grammar
    else:
        assert '"[TOOL_CALLS]"' in grammar and "<[" not in grammar
    # `<tool_call>` is a special token of the tiny tokenizer itself.
    assert f"<[{tokenizer.special_token('<tool_call>')}]>" in _answer_grammar(loaded, "glm", parallel=True)


# --- tool_choice="required" on random weights -----------------------------------------------------


@pytest.mark.parametrize(("tool_set", "seed"), [("all", None), ("weather", 0), ("order", None), ("order", 1)])
@pytest.mark.parametrize("tool_format", FORMATS)
def test_required_answer_is_a_valid_call_in_the_format(
    loaded: tuple[Any, Any], tool_format: str, tool_set: str, seed: int | None
) -> None:
    tools = TOOL_SETS[tool_set]
    tokenizer = loaded[1]
    processor = tool_call_processor(tokenizer, tool_format, tools, required=True, parallel=False)
    # Hy4-preview's `:6124c78e` markers, spelled out by a tokenizer that lacks them, take room.
    budget = 2 * MAX_TOKENS if tool_format == "hy4" else MAX_TOKENS
    text, finish = _generate(loaded, _prompt(tokenizer, tools), [processor], seed=seed, max_tokens=budget)
    assert finish == "stop", text
    result = parse(text, tool_format, tools)
    assert len(result.calls) == 1 and not result.errors, (text, result.errors)
    assert result.content is None or not result.content.strip(), text
    _assert_valid(result.calls, tools)
    assert processor.problems == []
    if _is_special_tokenizer(loaded) and tool_format in REQUIRED_OPENERS:
        written = tokenizer.encode(text, add_special_tokens=False)
        openers = [grammar_tokenizer(tokenizer).special_token(m) for m in REQUIRED_OPENERS[tool_format]]
        assert any(opener in written for opener in openers), text


@pytest.mark.parametrize("tool_set", ["weather", "order"])
@pytest.mark.parametrize("tool_format", FORMATS)
def test_required_parallel_calls_are_all_valid(
    loaded: tuple[Any, Any], tool_format: str, tool_set: str
) -> None:
    tools = TOOL_SETS[tool_set]
    processor = tool_call_processor(loaded[1], tool_format, tools, required=True)
    text, finish = _generate(loaded, _prompt(loaded[1], tools), [processor], seed=2)
    result = parse(text, tool_format, tools, truncated=finish == "length")
    _assert_valid(result.calls, tools)
    if finish == "stop":
        assert result.calls and not result.errors, (text, result.errors)
    else:
        # Noise may go on calling until the token limit: only the region cut off is lost (a
        # Mistral call list is one region).
        assert [e.kind for e in result.errors] == ["truncated_call"], text


# --- lazy: a call the model opens with the format's marker is completed validly ---------------------


@pytest.mark.parametrize("seed", [0])
@pytest.mark.parametrize("tool_format", FORMATS)
def test_a_call_opened_with_the_format_marker_is_valid(
    loaded: tuple[Any, Any], tool_format: str, seed: int
) -> None:
    tools = TOOL_SETS["all"]
    tokenizer = loaded[1]
    opening = LEAD.get(tool_format, "Let me check.\n") + OPENERS[tool_format]
    processor = tool_call_processor(tokenizer, tool_format, tools, parallel=False)
    after_call = _countdown(lambda: processor.regions >= 1 and not processor.constraining, 3)
    text, _ = _generate(
        loaded,
        _prompt(tokenizer, tools),
        [ForceText(tokenizer, opening), processor],
        seed=seed,
        until=after_call,
        max_tokens=500,
    )
    assert text.startswith(opening)
    assert processor.regions >= 1 and processor.problems == [], (text, processor.problems)
    head = _first_call(text, tool_format, len(opening))
    result = parse(head, tool_format, tools)
    assert result.calls and not result.errors, (head, result.errors)
    _assert_valid(result.calls, tools)


def _first_call(text: str, tool_format: str, after: int) -> str:
    closer = CLOSERS[tool_format]
    if closer is not None:
        end = text.find(closer, after)
        assert end >= 0, text
        return text[: end + len(closer)]
    # llama3_json / mistral: the region ends with its (last) JSON value: the parser ends it there.
    return text


def test_required_calls_round_trip_through_each_parser(loaded: tuple[Any, Any]) -> None:
    """A sanity check of the test data: every rendered good call parses back to itself."""
    for tool_format in FORMATS:
        for call in GOOD_CALLS:
            calls = parse(get_format(tool_format).render([call]), tool_format, TOOL_SETS["all"]).calls
            assert [(c.name, c.arguments) for c in calls] == [(call.name, call.arguments)], tool_format


def test_harmony_call_token_may_be_the_end_of_sequence(random_model_path: Path) -> None:
    """gpt-oss stops on `<|call|>` (one of its end-of-sequence tokens): the grammar still names
    it as the call's end, and the mask allows it there."""
    from mlx_lm.tokenizer_utils import TokenizerWrapper

    _, tokenizer = _load(random_model_path, special=True)
    hf = tokenizer._tokenizer
    call = hf.convert_tokens_to_ids("<|call|>")
    stops_on_call = TokenizerWrapper(hf, eos_token_ids=[*tokenizer.eos_token_ids, call])
    processor = tool_call_processor(stops_on_call, "harmony", TOOL_SETS["weather"], required=True)
    header = "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
    tokens = hf.encode(header + '{"city": "Oslo", "unit": "celsius"}', add_special_tokens=False)
    logits = mx.zeros((1, len(hf)))
    prompt = [1, 2, 3]
    output = processor(mx.array(prompt), logits)
    for i in range(1, len(tokens) + 1):
        output = processor(mx.array(prompt + tokens[:i]), logits)
    allowed = [i for i in range(len(hf)) if output[0, i].item() == 0.0]
    assert allowed == [call]
    assert processor.problems == []


class Node(BaseModel):
    """A recursive model, a mapping, unions and bounded floats: the literal notations' harder paths."""

    model_config = ConfigDict(extra="forbid")
    label: Annotated[str, Field(min_length=1, max_length=6)]
    weight: Annotated[float, Field(ge=0, le=1)] = 0.5
    tags: dict[str, int] = {}
    value: int | str | None = None
    children: Annotated[list[Node], Field(max_length=2)] = []


@pytest.mark.parametrize("tool_format", ["gemma4", "pythonic", "glm"])
def test_literal_notations_follow_recursive_and_union_schemas(
    loaded: tuple[Any, Any], tool_format: str
) -> None:
    schemas = [ToolSchema("tree", Node.model_json_schema())]
    grammars = tool_call_grammars(
        tool_format,
        schemas,
        required=True,
        untagged_json=False,
        reasoning=None,
        special_token=grammar_tokenizer(loaded[1]).special_token,
    )
    assert grammars is not None and grammars.answer is not None
    render = get_format(tool_format).render
    leaf = {"label": "b", "weight": 1, "value": "x"}
    good = [
        {"label": "a"},
        {"label": "a", "weight": 0.25, "tags": {"k": 1, "my key": 2}, "value": 3, "children": [leaf, leaf]},
        {"label": "a", "value": None, "children": [{"label": "c", "children": [leaf]}]},
    ]
    bad = [
        {"label": ""},  # too short
        {"label": "a", "weight": 2},  # out of range
        {"label": "a", "tags": {"k": "v"}},  # a mapping value of the wrong type
        {"label": "a", "children": [leaf, leaf, leaf]},  # too many children
        {"label": "a", "children": [{"weight": 0}]},  # a nested required field missing
    ]
    for arguments in good:
        text = render([ToolCall("tree", arguments)])
        assert _accepts(loaded, grammars.answer, text), text
        [call] = parse(
            text,
            tool_format,
            [{"type": "function", "function": {"name": "tree", "parameters": Node.model_json_schema()}}],
        ).calls
        assert Node.model_validate(call.arguments) == Node.model_validate(arguments)
    for arguments in bad:
        text = render([ToolCall("tree", arguments)])
        assert not _accepts(loaded, grammars.answer, text), text


def test_llama3_json_bare_calls_say_parameters(loaded: tuple[Any, Any]) -> None:
    grammars = tool_call_grammars(
        "llama3_json",
        SCHEMAS,
        required=False,
        untagged_json=True,
        reasoning=None,
        special_token=grammar_tokenizer(loaded[1]).special_token,
    )
    assert grammars is not None
    bare = next(t for t in grammars.triggers if t.pattern.search(b'\n{"name": "ping"'))
    for text in ('{"name": "ping", "parameters": {}}', '{"name": "ping", "arguments": {}}'):
        assert _accepts(loaded, bare.grammar, text), text
    assert not _accepts(loaded, bare.grammar, '{"name": "ping", "args": {}}')


# One region each, as a model opens it (every lazy opener of every format).
LAZY_REGIONS: dict[str, list[str]] = {
    "llama3_json": ['<|python_tag|>{"name": "ping", "arguments": {}}; {"name": "ping", "parameters": {}}'],
    "mistral": [
        '[TOOL_CALLS][{"name": "ping", "arguments": {}}, {"name": "ping", "arguments": {}, "id": "a1b2c3d4e"}]',
        "[TOOL_CALLS]ping[CALL_ID]a1b2c3d4e[ARGS]{}",
        '[TOOL_CALLS]get_weather[ARGS]{\n  "city": "Oslo",\n  "unit": "celsius"\n}',
    ],
    "deepseek": [
        "<｜tool▁call▁begin｜>ping<｜tool▁sep｜>{}<｜tool▁call▁end｜>",
        VARIANTS["deepseek"][0],
    ],
    "kimi_k2": [
        "<|tool_call_begin|>functions.ping:0<|tool_call_argument_begin|>{}<|tool_call_end|>",
        "<|tool_call_section_begin|><|tool_call_begin|>functions.ping:3<|tool_call_argument_begin|>{}"
        "<|tool_call_end|><|tool_call_section_end|>",
    ],
    "glm": VARIANTS["glm"][:2],
    "harmony": [
        "<|start|>assistant to=functions.ping<|channel|>commentary json<|message|>{}<|call|>",
        "<|channel|>analysis to=functions.ping<|message|>{}<|call|>",
    ],
    "gemma4": ["<|tool_call>call:ping{}<tool_call|>"],
    "pythonic": [
        "<|tool_call_start|>[ping()]<|tool_call_end|>",
        '<|python_tag|>[ping(), get_weather(city="Oslo", unit="celsius")]',
        "<|python_start|>[get_weather(city = 'Oslo',unit='celsius')]<|python_end|>",
        '[ping(), get_weather(city="Oslo", unit="celsius")]',  # bare, as Llama 3.2 writes it
    ],
    "minimax_m2": VARIANTS["minimax_m2"],
    "seed_oss": VARIANTS["seed_oss"][:1],
    "minicpm5": VARIANTS["minicpm5"],
    "granite_20b_fc": VARIANTS["granite_20b_fc"],
    "hy3": VARIANTS["hy3"],
    "hy4": VARIANTS["hy4"],
    "solar_open": VARIANTS["solar_open"],
    "function_gemma": ["<start_function_call>call:ping{}<end_function_call>"],
    "command": VARIANTS["command"],
    "longcat": VARIANTS["longcat"],
    "gigachat": VARIANTS["gigachat"],
    "apertus": VARIANTS["apertus"],
    "granite": VARIANTS["granite"],
    "nemotron": VARIANTS["nemotron"],
    "phi4_mini": VARIANTS["phi4_mini"],
    "hunyuan": VARIANTS["hunyuan"],
    "apriel": VARIANTS["hunyuan"],
    "jamba": [*VARIANTS["jamba"], '<tool_calls>[{"name": "ping", "arguments": {}}]</tool_calls>'],
    "internlm2": ['<|action_start|><|plugin|>\n{"name": "ping", "arguments": {}}<|action_end|>'],
    "ernie": ['<tool_call>\n{"name": "ping", "arguments": {}}\n</tool_call>'],  # a region is one call
    "olmo3": [
        *VARIANTS["olmo3"],
        "<function_calls>\nget_weather(city = 'Oslo',unit='celsius')\n</function_calls>",
    ],
    "minicpm3": VARIANTS["minicpm3"],
}


@pytest.mark.parametrize("tool_format", FORMATS)
def test_every_lazy_opener_constrains_its_region(loaded: tuple[Any, Any], tool_format: str) -> None:
    from pydantic_mlx.constrained._decoding import _first_match  # pyright: ignore[reportPrivateUsage]

    grammars = tool_call_grammars(
        tool_format,
        SCHEMAS,
        required=False,
        untagged_json=False,
        reasoning=None,
        special_token=grammar_tokenizer(loaded[1]).special_token,
    )
    assert grammars is not None
    texts = [get_format(tool_format).render([call]) for call in GOOD_CALLS] + LAZY_REGIONS[tool_format]
    for text in texts:
        result = parse(LEAD.get(tool_format, "Sure.\n") + text, tool_format, TOOL_SETS["all"])
        assert result.calls and not result.errors, text
        hit = _first_match(grammars.triggers, text.encode(), at_answer_start=tool_format in LEAD)
        assert hit is not None and hit[0] == 0, text
        assert _accepts(loaded, hit[1].grammar, text), text


@pytest.mark.parametrize("seed", [0, 1])
def test_a_bare_pythonic_list_naming_a_declared_tool_is_completed_validly(
    loaded: tuple[Any, Any], seed: int
) -> None:
    tools = TOOL_SETS["all"]
    tokenizer = loaded[1]
    opening = "Checking.\n[get_weather("
    processor = tool_call_processor(tokenizer, "pythonic", tools)
    after_call = _countdown(lambda: processor.regions >= 1 and not processor.constraining, 1)
    text, _ = _generate(
        loaded,
        _prompt(tokenizer, tools),
        [ForceText(tokenizer, opening), processor],
        seed=seed,
        until=after_call,
        max_tokens=500,
    )
    assert processor.regions == 1 and processor.problems == [], text
    # The region ends at the list's `]` (one free token may follow): the shortest head that reads
    # as calls is the constrained list.
    heads = (text[: i + 1] for i, ch in enumerate(text) if ch == "]")
    result = next(r for r in (parse(h, "pythonic", tools) for h in heads) if r.calls and not r.errors)
    _assert_valid(result.calls, tools)
    assert result.calls[0].name == "get_weather"


@pytest.mark.parametrize("tool_format", FORMATS)
def test_native_output_with_tools_is_valid_json_or_valid_calls(
    loaded: tuple[Any, Any], tool_format: str
) -> None:
    from test_constrained import Weather

    tools = TOOL_SETS["order"]
    tokenizer = loaded[1]
    processor = output_processor(
        tokenizer, Weather.model_json_schema(), tool_format=tool_format, tools=tools, parallel=False
    )
    text, finish = _generate(loaded, _prompt(tokenizer, tools), [processor], seed=0)
    assert finish == "stop", text
    result = parse(text, tool_format, tools)
    if result.calls:
        assert len(result.calls) == 1 and not result.errors and not (result.content or "").strip(), text
        _assert_valid(result.calls, tools)
    else:
        Weather.model_validate_json(text)


# A tool declared with `parameters: {}` (MCP servers and hand-written OpenAI dicts do this): the
# schema says nothing, but every parser refuses arguments that are not an object.
UNTYPED_PARAMETERS = [ToolSchema("noargs", {})]
NOT_AN_OBJECT = ["5", "true", '"x"', "[]"]


@pytest.mark.parametrize(
    "tool_format", ["hermes", "llama3_json", "mistral", "deepseek", "kimi_k2", "harmony", "auto"]
)
def test_arguments_are_an_object_even_when_the_schema_says_nothing(
    loaded: tuple[Any, Any], tool_format: str
) -> None:
    from pydantic_mlx.constrained._decoding import _first_match  # pyright: ignore[reportPrivateUsage]
    from pydantic_mlx.parsers import ToolCall

    tools = [{"type": "function", "function": {"name": "noargs", "parameters": {}}}]
    special_token = grammar_tokenizer(loaded[1]).special_token
    required = tool_call_grammars(
        tool_format,
        UNTYPED_PARAMETERS,
        required=True,
        untagged_json=True,
        reasoning=None,
        special_token=special_token,
    )
    lazy = tool_call_grammars(
        tool_format,
        UNTYPED_PARAMETERS,
        required=False,
        untagged_json=True,
        reasoning=None,
        special_token=special_token,
    )
    assert required is not None and required.answer is not None and lazy is not None
    rendered = get_format(tool_format if tool_format != "auto" else "hermes").render([ToolCall("noargs", {})])
    hit = _first_match(lazy.triggers, rendered.encode())  # the region the model opens with it
    assert hit is not None and hit[0] == 0, rendered
    for grammar in (required.answer, hit[1].grammar):
        assert _accepts(loaded, grammar, rendered), rendered
        for value in NOT_AN_OBJECT:
            text = rendered.replace("{}", value, 1)
            assert parse(text, tool_format, tools).errors, text  # the parser refuses it ...
            assert not _accepts(loaded, grammar, text), text  # ... so the grammar must too


class Note(BaseModel):
    """`str | None` and `int | str`: the template writes a string value of either as bare text."""

    model_config = ConfigDict(extra="forbid")
    title: str
    note: str | None = None
    ref: int | str = 0
    level: Annotated[int, Field(ge=0)] | str = 0  # a bounded branch: only JSON is safe here


def _render_in(layout: str) -> Any:
    from formats.test_deepseek import render_dsml
    from formats.test_kimi_k2 import render_k3

    return {"dsml": render_dsml, "xtml": render_k3}.get(layout) or get_format(layout).render


@pytest.mark.parametrize("tool_format", ["minimax_m2", "seed_oss"])
def test_tagged_string_lengths_do_not_count_the_layout_newlines(
    loaded: tuple[Any, Any], tool_format: str
) -> None:
    """The templates write a value inline, or between two newlines when it starts or ends with
    one, and the parser removes those two: lengths count the value as read back. The grammar
    counted the newlines (refusing a valid multi-line value of `maxLength`) and let `\\n\\n`
    through as two characters where the parser reads the empty string."""
    schema = {"type": "object", "properties": {"s": {"type": "string", "minLength": 2, "maxLength": 4}}}
    grammars = tool_call_grammars(
        tool_format,
        [ToolSchema("t", schema)],
        required=True,
        untagged_json=False,
        reasoning=None,
        special_token=grammar_tokenizer(loaded[1]).special_token,
    )
    assert grammars is not None and grammars.answer is not None
    render = get_format(tool_format).render
    tools = [{"type": "function", "function": {"name": "t", "parameters": schema}}]
    values = [("a", False), ("ab", True), ("abcd", True), ("\nabc", True), ("ab\n\n", True), ("abcde", False)]
    for value, valid in values:
        text = render([ToolCall("t", {"s": value})])
        assert [c.arguments for c in parse(text, tool_format, tools).calls] == [{"s": value}]
        assert _accepts(loaded, grammars.answer, text) is valid, text
    # Layout newlines around a value that is too short once they are removed.
    short = render([ToolCall("t", {"s": "ab"})]).replace(">ab</parameter>", ">\n\n</parameter>")
    assert [c.arguments for c in parse(short, tool_format, tools).calls] == [{"s": ""}]
    assert not _accepts(loaded, grammars.answer, short), short


@pytest.mark.parametrize(
    ("tool_format", "layout"),
    [("qwen3_coder", "qwen3_coder"), ("glm", "glm"), ("deepseek", "dsml"), ("kimi_k2", "xtml")],
)
def test_a_string_in_a_union_may_be_written_bare_as_the_template_writes_it(
    loaded: tuple[Any, Any], tool_format: str, layout: str
) -> None:
    schema = Note.model_json_schema()
    tools = [{"type": "function", "function": {"name": "save", "parameters": schema}}]
    grammars = tool_call_grammars(
        tool_format,
        [ToolSchema("save", schema)],
        required=True,
        untagged_json=False,
        reasoning=None,
        special_token=grammar_tokenizer(loaded[1]).special_token,
    )
    assert grammars is not None and grammars.answer is not None
    render = _render_in(layout)
    good = [
        {"title": "a", "note": "hello world"},  # bare text, as the template writes a string
        {"title": "a", "note": None},
        {"title": "a", "note": "5"},  # bare `5` reads back as the string
        {"title": "a", "ref": "abc"},
        {"title": "a", "ref": 5},
        {"title": "a", "level": 3},
    ]
    for arguments in good:
        text = render([ToolCall("save", arguments)])
        [call] = parse(text, tool_format, tools).calls
        assert call.arguments == arguments, text
        assert _accepts(loaded, grammars.answer, text), text
    for text in (
        render([ToolCall("save", {"title": "a", "note": '"quoted"'})]),  # JSON, read as a string
        render([ToolCall("save", {"title": "a", "ref": "null"})]),
    ):
        result = parse(text, tool_format, tools)
        assert result.calls and not result.errors, text
        Note.model_validate(result.calls[0].arguments)
        assert _accepts(loaded, grammars.answer, text), text
    # `-1` written bare reads back as the integer -1, which `level` refuses: only JSON there.
    text = render([ToolCall("save", {"title": "a", "level": -1})])
    assert not _accepts(loaded, grammars.answer, text), text


# Schemas that refer to their own parts by path: zod-to-json-schema (MCP servers in TypeScript)
# writes a reused sub-schema as `#/properties/...`, and a recursive one as `#`.
ADDRESS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
PATH_REFS = [
    (
        {
            "type": "object",
            "properties": {"home": ADDRESS, "work": {"$ref": "#/properties/home"}},
            "required": ["home", "work"],
            "additionalProperties": False,
        },
        {"home": {"city": "A"}, "work": {"city": "B"}},
        {"home": {"city": "A"}, "work": {"town": "B"}},
    ),
    (
        {
            "type": "object",
            "properties": {"v": {"type": "integer"}, "child": {"$ref": "#"}},
            "required": ["v"],
            "additionalProperties": False,
        },
        {"v": 1, "child": {"v": 2, "child": {"v": 3}}},
        {"v": 1, "child": {"w": 2}},
    ),
]


@pytest.mark.parametrize("tool_format", CALL_FORMATS)
def test_references_by_path_resolve_where_the_schema_is_embedded(
    loaded: tuple[Any, Any], tool_format: str
) -> None:
    special_token = grammar_tokenizer(loaded[1]).special_token
    render = get_format(tool_format if tool_format != "auto" else "hermes").render
    for schema, good, bad in PATH_REFS:
        grammars = tool_call_grammars(
            tool_format,
            [ToolSchema("t", schema)],
            required=True,
            untagged_json=True,
            reasoning=None,
            special_token=special_token,
        )
        assert grammars is not None and grammars.answer is not None
        text = render([ToolCall("t", good)])
        tools = [{"type": "function", "function": {"name": "t", "parameters": schema}}]
        assert [c.arguments for c in parse(text, tool_format, tools).calls] == [good], text
        assert _accepts(loaded, grammars.answer, text), text
        assert not _accepts(loaded, grammars.answer, render([ToolCall("t", bad)])), bad


@pytest.mark.parametrize("tool_format", CALL_FORMATS)
def test_a_boolean_property_schema_builds_a_grammar(loaded: tuple[Any, Any], tool_format: str) -> None:
    """`"x": true` (any value) is valid JSON Schema: building the grammar used to raise
    AttributeError in the tag formats, failing the whole request on the generation thread."""
    schema = {"type": "object", "properties": {"x": True, "y": {"type": "integer"}}, "required": ["y"]}
    grammars = tool_call_grammars(
        tool_format,
        [ToolSchema("t", schema)],
        required=True,
        untagged_json=True,
        reasoning=None,
        special_token=grammar_tokenizer(loaded[1]).special_token,
    )
    assert grammars is not None and grammars.answer is not None
    render = get_format(tool_format if tool_format != "auto" else "hermes").render
    tools = [{"type": "function", "function": {"name": "t", "parameters": schema}}]
    for arguments in ({"y": 1}, {"x": [1, "a"], "y": 2}):
        text = render([ToolCall("t", arguments)])
        assert [c.arguments for c in parse(text, tool_format, tools).calls] == [arguments], text
        assert _accepts(loaded, grammars.answer, text), text


def test_qwen3_coder_string_lengths_do_not_count_the_template_newline(loaded: tuple[Any, Any]) -> None:
    """The template writes `\\nVALUE\\n</parameter>` and the parser drops both newlines: a value
    of exactly `maxLength` characters is valid, one under `minLength` is not."""
    schema = {"type": "object", "properties": {"s": {"type": "string", "minLength": 2, "maxLength": 4}}}
    grammars = tool_call_grammars(
        "qwen3_coder",
        [ToolSchema("t", schema)],
        required=True,
        untagged_json=False,
        reasoning=None,
        special_token=grammar_tokenizer(loaded[1]).special_token,
    )
    assert grammars is not None and grammars.answer is not None
    render = get_format("qwen3_coder").render
    tools = [{"type": "function", "function": {"name": "t", "parameters": schema}}]
    for value, valid in [("a", False), ("ab", True), ("abcd", True), ("abc\n", True), ("abcde", False)]:
        text = render([ToolCall("t", {"s": value})])
        assert [c.arguments for c in parse(text, "qwen3_coder", tools).calls] == [{"s": value}]
        assert _accepts(loaded, grammars.answer, text) is valid, text
        if value.endswith("\n"):
            continue
        # Without the template's newline before the closer, the parser reads the same value.
        bare = text.replace("\n</parameter>", "</parameter>")
        assert [c.arguments for c in parse(bare, "qwen3_coder", tools).calls] == [{"s": value}]
        assert _accepts(loaded, grammars.answer, bare) is valid, bare


@pytest.mark.parametrize(
    ("tool_format", "layout"),
    [("qwen3_coder", "qwen3_coder"), ("glm", "glm"), ("deepseek", "dsml"), ("kimi_k2", "xtml")],
)
def test_a_string_const_is_the_only_value_a_tag_format_may_write(
    loaded: tuple[Any, Any], tool_format: str, layout: str
) -> None:
    """`Literal["fixed"]` is `{"const": "fixed", "type": "string"}` in pydantic's schema: the tag
    formats wrote any text there (and refused the bare value when `type` was left out)."""
    render = _render_in(layout)
    for const in ({"const": "fixed", "type": "string"}, {"const": "fixed"}):
        schema = {"type": "object", "properties": {"mode": const}, "required": ["mode"]}
        grammars = tool_call_grammars(
            tool_format,
            [ToolSchema("t", schema)],
            required=True,
            untagged_json=False,
            reasoning=None,
            special_token=grammar_tokenizer(loaded[1]).special_token,
        )
        assert grammars is not None and grammars.answer is not None
        good = render([ToolCall("t", {"mode": "fixed"})])
        tools = [{"type": "function", "function": {"name": "t", "parameters": schema}}]
        assert [c.arguments for c in parse(good, tool_format, tools).calls] == [{"mode": "fixed"}]
        assert _accepts(loaded, grammars.answer, good), good
        assert not _accepts(loaded, grammars.answer, render([ToolCall("t", {"mode": "other"})]))


def test_xlam_answer_is_a_call_list_and_nothing_else(loaded: tuple[Any, Any]) -> None:
    """xLAM-2 has no marker (so no lazy trigger of its own): a `required` answer is its bare list."""
    one = _answer_grammar(loaded, "xlam", parallel=False)
    many = _answer_grammar(loaded, "xlam", parallel=True)
    render = get_format("xlam").render
    for call in GOOD_CALLS:
        assert _accepts(loaded, one, render([call])), call
    pair = render(GOOD_CALLS[:2])
    assert _accepts(loaded, many, pair) and not _accepts(loaded, one, pair)
    for call in BAD_CALLS:
        assert not _accepts(loaded, many, render([call])), call
    assert not _accepts(loaded, many, "[]")
