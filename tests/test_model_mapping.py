"""How model text becomes response parts, for outputs the tiny model cannot be made to write.

No MLX here: fixed text is fed through `MLXStreamedResponse`, whose mapping is the one `request`
and `request_stream` use (tests/test_model.py covers it with real generation).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

from pydantic_mlx._generation import FinishReason, GenerationOptions, GenerationStats
from pydantic_mlx._request_plan import RequestPlan  # pyright: ignore[reportPrivateUsage]
from pydantic_mlx.model import MLXStreamedResponse

pytestmark = pytest.mark.anyio


class FixedText:
    """Stands in for a `GenerationStream`: yields the given chunks, then ends with `finish_reason`."""

    def __init__(self, chunks: Sequence[str], finish_reason: FinishReason) -> None:
        self._chunks = list(chunks)
        self.stats = GenerationStats(prompt_tokens=3, output_tokens=len(chunks), finish_reason=finish_reason)

    def __aiter__(self) -> FixedText:
        return self

    async def __anext__(self) -> str:
        if not self._chunks:
            raise StopAsyncIteration
        return self._chunks.pop(0)

    def stop(self) -> None:
        self._chunks.clear()

    async def aclose(self) -> None:
        self._chunks.clear()


def tool(name: str) -> ToolDefinition:
    schema = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
    return ToolDefinition(name=name, parameters_json_schema=schema)


TOOLS = [tool("read_file"), tool("list_files")]


async def mapped(text: str, finish_reason: FinishReason = "stop", *, chunk: int = 0) -> ModelResponse:
    chunks = [text[i : i + chunk] for i in range(0, len(text), chunk)] if chunk else [text]
    plan = RequestPlan(
        prompt=[1, 2, 3],
        options=GenerationOptions(max_tokens=64),
        tool_format="hermes",
        tools=TOOLS,
        excluded_tools=frozenset(),
        in_reasoning=False,
        text_is_answer=True,
        one_call_only=False,
    )
    stream = MLXStreamedResponse(
        model_request_parameters=ModelRequestParameters(function_tools=TOOLS),
        _model_name="fixed-text",
        _plan=plan,
        _generation=FixedText(chunks, finish_reason),  # pyright: ignore[reportArgumentType]
    )
    async for _ in stream:
        pass
    return stream.get()


@pytest.mark.parametrize("chunk", [0, 1, 5])
@pytest.mark.parametrize(
    ("body", "name"),
    [
        ('{"name": "read_file", "arguments": {"path": "a"', "read_file"),  # unbalanced brackets
        ('{"name": "read_file", "arguments": "a"}', "read_file"),  # arguments that are not JSON
        ('{"name": "list_files", "arguments": {"path": "."}} and more', "list_files"),
        ("{not json at all}", ""),  # no tool named: the retry lists the tools
        ('{"name": "read_file", "next": "list_files", "arguments": [}', ""),  # two named: no guess
    ],
)
async def test_a_malformed_call_is_sent_back_for_a_retry_and_is_not_the_answer(
    body: str, name: str, chunk: int
) -> None:
    text = f"Let me look.\n<tool_call>\n{body}\n</tool_call>"
    response = await mapped(text, chunk=chunk)
    assert response.parts[0] == TextPart("Let me look.\n")
    [call] = response.parts[1:]
    assert isinstance(call, ToolCallPart)
    assert (call.tool_name, call.args) == (name, text.removeprefix("Let me look.\n"))
    with pytest.raises(ValueError):
        call.args_as_dict(raise_if_invalid=True)  # never runs: pydantic-ai asks the model again
    assert response.finish_reason == "tool_call"


async def test_a_call_cut_off_after_a_complete_one_is_the_last_part_and_reports_length() -> None:
    # The complete call alone (finish_reason "tool_call") would run while the second one was
    # silently lost; now the agent sees a cut-off call last and raises `IncompleteToolCall`.
    text = (
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "read_fi'
    )
    response = await mapped(text, "length")
    assert response.finish_reason == "length"
    complete, cut = response.parts
    assert isinstance(complete, ToolCallPart) and complete.args_as_dict() == {"path": "a"}
    assert isinstance(cut, ToolCallPart) and cut.args == '<tool_call>\n{"name": "read_fi'
    with pytest.raises(ValueError):
        cut.args_as_dict(raise_if_invalid=True)


@pytest.mark.parametrize("finish_reason", ["length", "stop_sequence"])
async def test_a_complete_body_cut_before_its_end_marker_is_not_a_call(finish_reason: FinishReason) -> None:
    # A stop sequence (or the token limit) cut the output: the body might have gone on.
    response = await mapped('<tool_call>\n{"name": "read_file", "arguments": {"path": "a"}}', finish_reason)
    [call] = response.parts
    assert isinstance(call, ToolCallPart)
    with pytest.raises(ValueError):
        call.args_as_dict(raise_if_invalid=True)


async def test_a_complete_body_at_the_end_of_the_turn_is_a_call_without_its_end_marker() -> None:
    # Small models often end their turn without `</tool_call>`.
    response = await mapped('<tool_call>\n{"name": "read_file", "arguments": {"path": "a"}}', "stop")
    [call] = response.parts
    assert isinstance(call, ToolCallPart) and call.args_as_dict() == {"path": "a"}


async def test_text_cut_off_after_a_call_reports_length() -> None:
    text = '<tool_call>\n{"name": "read_file", "arguments": {"path": "a"}}\n</tool_call>\nNow I will'
    response = await mapped(text, "length")
    assert [type(p) for p in response.parts] == [ToolCallPart, TextPart]
    assert response.finish_reason == "length"


async def test_ids_a_model_repeats_in_one_response_are_made_unique() -> None:
    # pydantic-ai refuses a response whose calls share an id.
    text = "\n".join(
        f'<tool_call>\n{{"id": "call_1", "name": "read_file", "arguments": {{"path": "{path}"}}}}\n</tool_call>'
        for path in ("a", "b")
    )
    response = await mapped(text)
    ids = [p.tool_call_id for p in response.parts if isinstance(p, ToolCallPart)]
    assert len(ids) == 2
    assert ids[0] == "call_1"
    assert ids[1] != "call_1"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("run the command", "hermes: expected a JSON call object, got 'run the command'"),
        ('{"name": "read_file", "arguments": "a"}', "hermes: arguments string is not JSON"),
    ],
)
async def test_the_retry_of_an_unread_call_tells_the_model_what_could_not_be_read(
    body: str, problem: str
) -> None:
    """pydantic-ai's own retry knows only the name (`Unknown tool name: ''`) or that the
    arguments were not JSON; the prompt the model sees next says what the parser could not read."""
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from pydantic_mlx._chat import chat_messages

    unread = await mapped(f"<tool_call>\n{body}\n</tool_call>")
    seen: list[list[dict[str, object]]] = []

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return unread
        seen.append(chat_messages(messages))
        return ModelResponse(parts=[TextPart("done")])

    agent = Agent(FunctionModel(respond))

    @agent.tool_plain
    def read_file(path: str) -> str:
        return path

    @agent.tool_plain
    def list_files(path: str) -> str:
        return path

    assert (await agent.run("Go.")).output == "done"
    [retry] = [m for m in seen[0] if m["role"] == "tool"]
    content = str(retry["content"])
    assert content.startswith("Your "), content
    assert problem in content
    [call] = [p for p in unread.parts if isinstance(p, ToolCallPart)]
    assert (call.provider_details or {})["parse_problem"].startswith(problem)


async def test_an_unread_call_when_one_tool_is_offered_names_that_tool() -> None:
    """With one tool offered the model meant that one: the retry (and the error the user sees
    when retries run out) names it, rather than `Tool ''`."""
    from pydantic_mlx._response import _named_tool  # pyright: ignore[reportPrivateUsage]

    assert _named_tool("<tool_call>\nrun it\n</tool_call>", ["final_result"]) == "final_result"
    assert _named_tool("<tool_call>\nrun it\n</tool_call>", ["a", "b"]) == ""
    assert _named_tool("<tool_call>\nb or a\n</tool_call>", ["a", "b"]) == ""
