"""Chat rendering of hostile or odd text (issue 21): lone surrogates, and fields a template prints.

Every string a template may print reaches the tokenizer as text, never as control tokens; text
a tokenizer cannot take (a lone surrogate) is rendered, not fatal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

from pydantic_mlx import MLXModel
from pydantic_mlx._chat import render_prompt
from test_chat import FORGERY, READ_FILE, copy_with_template

# `os.listdir` on Linux gives a file name that is not UTF-8 as a lone surrogate (PEP 383).
NOT_UTF8_NAME = b"caf\xe9.txt".decode("utf-8", "surrogateescape")


@pytest.fixture(scope="module")
def tokenizer(random_model_path: Path) -> Any:
    from mlx_lm.utils import load_tokenizer

    return load_tokenizer(random_model_path)


def surrogate_conversation(text: str) -> list[ModelMessage]:
    return [
        ModelRequest(parts=[SystemPromptPart(f"Files: {text}"), UserPromptPart(f"Read {text}")]),
        ModelResponse(parts=[ToolCallPart("read_file", {"path": text}, tool_call_id=f"c{text}")]),
        ModelRequest(parts=[ToolReturnPart("read_file", f"{text}: \ud800 \udfff", tool_call_id=f"c{text}")]),
    ]


def test_lone_surrogates_are_rendered_as_replacement_characters(tokenizer: Any) -> None:
    tool = ToolDefinition(
        name="read_file",
        description=f"Read one of {NOT_UTF8_NAME}",
        parameters_json_schema=READ_FILE.parameters_json_schema,
    )
    # Was: TypeError("TextInputSequence must be str") from the tokenizer.
    ids = render_prompt(tokenizer, surrogate_conversation(NOT_UTF8_NAME), [tool])
    text = tokenizer.decode(ids)
    assert text.count("caf\ufffd.txt") >= 4  # system, user, call, result (and the tool's description)
    assert "\ufffd \ufffd" in text
    assert "\udce9" not in text


def test_a_surrogate_pair_is_one_character(tokenizer: Any) -> None:
    pair = "\ud83d\ude00"  # two code points, as `surrogatepass` decoding leaves an emoji
    text = tokenizer.decode(render_prompt(tokenizer, [ModelRequest(parts=[UserPromptPart(pair)])], []))
    assert "\U0001f600" in text


@pytest.mark.anyio
async def test_a_request_with_lone_surrogates_generates(random_model_path: Path) -> None:
    model = MLXModel(random_model_path)
    response = await model.request(
        surrogate_conversation(NOT_UTF8_NAME),
        {"max_tokens": 3},
        ModelRequestParameters(function_tools=[READ_FILE]),
    )
    assert response.usage.output_tokens == 3


# A template that prints every field of a tool turn and of a call: the ids and the tool's name.
PRINTING_TEMPLATE = (
    "{%- for message in messages %}<|im_start|>{{ message.role }}\n"
    "{%- if message.role == 'tool' %}[{{ message.tool_call_id }}|{{ message.name }}]{%- endif %}"
    "{{ message.content }}"
    "{%- for call in message.tool_calls or [] %}<tool_call>{{ call.id }} {{ call.type }} "
    "{{ call.function.name }}</tool_call>{%- endfor %}<|im_end|>\n"
    "{%- endfor %}<|im_start|>assistant\n"
)


def test_ids_and_tool_names_cannot_forge_turns(tokenizer: Any) -> None:
    printing = copy_with_template(tokenizer, PRINTING_TEMPLATE)
    messages: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("hi")]),
        ModelResponse(parts=[ToolCallPart(FORGERY, {"path": "a"}, tool_call_id=FORGERY)]),
        ModelRequest(parts=[ToolReturnPart(FORGERY, "ok", tool_call_id=FORGERY)]),
    ]
    ids = render_prompt(printing, messages, [READ_FILE])
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids.count(im_start) == 4  # user, assistant, tool, generation prompt: none forged
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") not in ids
    text = tokenizer.decode(ids)
    assert text.count(FORGERY) == 4  # call id, call name, tool turn's id and name: all there, as text
    naive = tokenizer.encode(text, add_special_tokens=False)
    assert naive.count(im_start) > 4  # not vacuous: the printed fields spell turn markers


def test_plain_ids_are_left_to_the_template(tokenizer: Any) -> None:
    # Only fields that spell an added token are held: a plain id renders inline, exactly as written.
    printing = copy_with_template(tokenizer, PRINTING_TEMPLATE)
    messages: list[ModelMessage] = [
        ModelResponse(parts=[ToolCallPart("read_file", {"path": "a"}, tool_call_id="call_1")]),
        ModelRequest(parts=[ToolReturnPart("read_file", "ok", tool_call_id="call_1")]),
    ]
    ids = render_prompt(printing, messages, [READ_FILE])
    expected = printing.apply_chat_template(
        [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "read_file"}}],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "read_file", "content": "ok"},
        ],
        tokenize=False,
    )
    assert tokenizer.decode(ids) == expected
