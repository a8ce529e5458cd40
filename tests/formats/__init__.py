"""Tests of the individual tool-call formats: strategies they share, and the `FormatCase` each
format module declares so `test_properties.py` runs the same properties over every format."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from parsers.conftest import events_agree, stream
from pydantic_mlx.parsers import MalformedCall, ToolCall, TruncatedCall, parse

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
# String values never contain "<": a raw value holding a format's closing marker is ambiguous
# by design (the templates do not escape it). Markup-looking values have their own examples.
SAFE_TEXT = st.text(st.characters(blacklist_characters="<", blacklist_categories=("Cs",)), max_size=20)
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | SAFE_TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SAFE_TEXT, inner, max_size=3),
    max_leaves=6,
)
ARGUMENTS = st.dictionaries(NAMES, JSON_VALUES, max_size=4)
CALL_SPECS = st.lists(st.tuples(NAMES, ARGUMENTS), min_size=1, max_size=3, unique_by=lambda c: c[0])
"""(name, arguments) pairs with distinct names, so one schema per name can type every value."""
CALL_LISTS = CALL_SPECS.map(lambda specs: [ToolCall(name, arguments) for name, arguments in specs])
PROSE = st.text(st.sampled_from("abc xyz.,!?\n"), max_size=20)
CUTS = st.lists(st.integers(0, 2000), max_size=20)


TOOL_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
ANY_TEXT = st.text(max_size=12)
SHORT_TEXT = st.text(max_size=8)
TINY_TEXT = st.text(max_size=6)
NO_ID = st.none()


def json_calls(
    names: st.SearchStrategy[str] = TOOL_NAMES,
    keys: st.SearchStrategy[str] = SHORT_TEXT,
    texts: st.SearchStrategy[str] = ANY_TEXT,
    nested_keys: st.SearchStrategy[str] = TINY_TEXT,
    ids: st.SearchStrategy[str | None] = NO_ID,
) -> st.SearchStrategy[list[ToolCall]]:
    """One to three calls with any JSON arguments, for formats that carry JSON (names may repeat)."""
    values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(10**15), 10**15)
        | st.floats(allow_nan=False, allow_infinity=False)
        | texts,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(nested_keys, children, max_size=3),
        max_leaves=8,
    )
    return st.lists(
        st.builds(ToolCall, names, st.dictionaries(keys, values, max_size=4), ids), min_size=1, max_size=3
    )


def tool(name: str, **properties: Any) -> dict[str, Any]:
    """An OpenAI-style tool declaration whose parameters have these properties."""
    return {
        "type": "function",
        "function": {"name": name, "parameters": {"type": "object", "properties": properties}},
    }


def json_type(value: Any) -> str:
    """The JSON schema type of a decoded JSON value."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string"}[type(value)]


def tools_typing(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Tool definitions whose schemas give every argument the type it has in `calls`."""
    return [
        {
            "type": "function",
            "function": {
                "name": call.name,
                "parameters": {
                    "type": "object",
                    "properties": {k: {"type": json_type(v)} for k, v in call.arguments.items()},
                },
            },
        }
        for call in calls
    ]


def marked(markers: list[str]) -> st.SearchStrategy[str]:
    """Text made of a format's markers and any characters, in any order."""
    return st.lists(st.sampled_from(markers) | st.text(max_size=8), max_size=25).map("".join)


def soup(markers: list[str]) -> st.SearchStrategy[str]:
    """Text made of a format's markers, pieces of calls and prose, in any order."""
    pieces = [*markers, ">", "\n", " ", "f", "x", "1", '{"a": 1}', '"']
    return st.lists(st.sampled_from(pieces) | PROSE, max_size=25).map("".join)


Rendering = Callable[[list[ToolCall]], tuple[str, list[ToolCall]]]
"""Calls -> (the text a model writes for them, the calls `parse` reads back from that text)."""


@dataclass(frozen=True, repr=False)
class FormatCase:
    """One format's data for the properties `test_properties.py` checks of every format."""

    name: str
    soup: st.SearchStrategy[str]
    """Text made of the format's markers and bits of calls: any order, any nesting."""
    soup_tools: Sequence[list[dict[str, Any]] | None]
    """The tool lists soup is parsed with (the format's declared tools, and none)."""
    calls: st.SearchStrategy[list[ToolCall]]
    renderings: Mapping[str, Rendering]
    """Every way the format's models write calls; read back with a schema that types each value."""
    read_without_tools: Collection[str] = ()
    """Renderings that read back the same with no tools declared (values typed by the text alone)."""
    joiner: str = ""
    """Text a rendering writes between two calls, which `parse` leaves as content."""
    prose: st.SearchStrategy[str] = PROSE
    """Text written around rendered calls."""
    round_trips: int = 150
    """Hypothesis examples of rendered calls (enough for every rendering to get its share)."""
    regions_without_calls: bool = False
    """Whether a well-formed call region may hold no call (harmony: a message to a built-in tool)."""

    def __repr__(self) -> str:  # a failing example names the format, not every strategy
        return f"FormatCase({self.name!r})"


def reads_back(render: Callable[[list[ToolCall]], str]) -> Rendering:
    """A rendering that `parse` reads back as exactly the calls rendered."""
    return lambda calls: (render(calls), calls)


def assert_reads(
    text: str,
    format: str,
    tools: Any,
    content: str | None,
    reasoning: str | None,
    calls: list[ToolCall],
    *,
    in_reasoning: bool = False,
) -> None:
    """`text` parses to exactly this content, reasoning and calls, with no problem, and streamed
    one character at a time it gives the same result and events that rebuild it."""
    result = parse(text, format=format, tools=tools, in_reasoning=in_reasoning)
    assert (result.content, result.reasoning, result.calls, result.errors) == (content, reasoning, calls, [])
    streamed, events = stream(text, range(len(text)), format=format, tools=tools, in_reasoning=in_reasoning)
    assert streamed == result
    assert events_agree(result, events)


def assert_unread(
    text: str, format: str, tools: Any, problem: type[MalformedCall | TruncatedCall], truncated: bool = False
) -> None:
    """`text` holds no call: only what comes before its first marker may be content, and
    problems of this kind carry all the rest (markup never reaches the answer)."""
    result = parse(text, format=format, tools=tools, truncated=truncated)
    assert result.calls == []
    problems = [e for e in result.errors if isinstance(e, MalformedCall | TruncatedCall)]
    assert problems and all(isinstance(e, problem) for e in problems)
    assert (result.content or "") + "".join(e.text for e in problems) == text
