"""Call grammars of the layouts constrained last: DeepSeek V3.2/V4's DSML blocks, Kimi-K3's XTML
tools channel, and the bare calls that count only where an answer begins (gpt-oss's
` to=functions.NAME...`, Gemma 4's `call:NAME{...}`).

Same two tokenizers as `test_constrained_formats.py` (markers as text, and as special tokens with
the random model's embedding grown to match); the weights are RANDOM, so whenever the output
parses as valid calls, the grammar made it so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("llguidance")

from formats.test_deepseek import render_dsml
from formats.test_kimi_k2 import render_k3
from pydantic_mlx.constrained import tool_call_processor
from pydantic_mlx.constrained._decoding import (
    _first_match,  # pyright: ignore[reportPrivateUsage]
    grammar_tokenizer,
)
from pydantic_mlx.constrained._grammars import GrammarSet, tool_call_grammars
from pydantic_mlx.parsers import ToolCall, parse
from pydantic_mlx.parsers.formats import get_format
from test_constrained import (
    BAD_CALLS,
    GOOD_CALLS,
    SCHEMAS,
    TOOL_SETS,
    ForceText,
    _accepts,
    _assert_valid,
    _countdown,
    _generate,
    _prompt,
)
from test_constrained_formats import _is_special_tokenizer, _load


@pytest.fixture(scope="module", params=[False, True], ids=["text-markers", "special-tokens"])
def loaded(request: pytest.FixtureRequest, random_model_path: Path) -> tuple[Any, Any]:
    return _load(random_model_path, request.param)


def _grammars(
    loaded: tuple[Any, Any], tool_format: str, *, required: bool, parallel: bool = True
) -> GrammarSet:
    grammars = tool_call_grammars(
        tool_format,
        SCHEMAS,
        required=required,
        parallel=parallel,
        untagged_json=False,
        reasoning=None,
        special_token=grammar_tokenizer(loaded[1]).special_token,
    )
    assert grammars is not None
    return grammars


def _answer(loaded: tuple[Any, Any], tool_format: str, *, parallel: bool) -> str:
    answer = _grammars(loaded, tool_format, required=True, parallel=parallel).answer
    assert answer is not None
    return answer


def _harmony_bare(calls: list[ToolCall]) -> str:
    """gpt-oss's answer after a prompt ending in `<|start|>assistant`: the recipient first."""
    first = get_format("harmony").render(calls[:1]).replace("<|channel|>commentary to=", " to=", 1)
    first = first.replace(" <|constrain|>json<|message|>", "<|channel|>commentary json<|message|>", 1)
    rest = get_format("harmony").render(calls[1:])
    return first + ("<|start|>assistant" + rest if rest else "")


def _gemma_bare(calls: list[ToolCall]) -> str:
    """Gemma 4's answer whose first call left out `<|tool_call>`."""
    return get_format("gemma4").render(calls).removeprefix("<|tool_call>")


# Each layout's writer: (format, name, render).
LAYOUTS = [
    ("deepseek", "dsml-v3.2", lambda calls: render_dsml(calls)),
    ("deepseek", "dsml-v4", lambda calls: render_dsml(calls, "tool_calls")),
    ("kimi_k2", "xtml", lambda calls: render_k3(calls)),
    ("kimi_k2", "xtml-json", lambda calls: render_k3(calls, json_block=True)),
    ("harmony", "bare", _harmony_bare),
    ("gemma4", "bare", _gemma_bare),
]


@pytest.mark.parametrize(
    ("tool_format", "render"), [(f, r) for f, _, r in LAYOUTS], ids=[i for _, i, _ in LAYOUTS]
)
def test_grammar_accepts_the_layout_and_refuses_invalid_calls(
    loaded: tuple[Any, Any], tool_format: str, render: Any
) -> None:
    one = _answer(loaded, tool_format, parallel=False)
    many = _answer(loaded, tool_format, parallel=True)
    tools = TOOL_SETS["all"]
    for call in GOOD_CALLS:
        text = render([call])
        result = parse(text, tool_format, tools)
        assert [(c.name, c.arguments) for c in result.calls] == [(call.name, call.arguments)], text
        assert _accepts(loaded, one, text), text
        assert _accepts(loaded, many, text), text
    pair = render(GOOD_CALLS[:2])
    assert len(parse(pair, tool_format, tools).calls) == 2, pair
    assert _accepts(loaded, many, pair), pair
    assert not _accepts(loaded, one, pair), pair
    for call in BAD_CALLS:
        assert not _accepts(loaded, many, render([call])), render([call])


# Values the parser would end early or refuse: the grammar never writes them.
MARKER_VALUES = {
    "deepseek": ["a</｜DSML｜parameter>b", "<｜DSML｜parameter"],
    "kimi_k2": ["a<|close|>argument<|sep|>b", "<|open|>"],
}


@pytest.mark.parametrize("tool_format", ["deepseek", "kimi_k2"])
def test_a_text_value_may_be_empty_or_hold_tags_but_never_the_markers(
    loaded: tuple[Any, Any], tool_format: str
) -> None:
    many = _answer(loaded, tool_format, parallel=True)
    render = render_dsml if tool_format == "deepseek" else render_k3
    for city in ["", "a</b>", "x\ny", "<tag>", "|>"]:
        text = render([ToolCall("get_weather", {"city": city, "unit": "celsius"})])
        [call] = parse(text, tool_format, TOOL_SETS["all"]).calls
        assert call.arguments["city"] == city
        assert _accepts(loaded, many, text), text
    for city in MARKER_VALUES[tool_format]:
        text = render([ToolCall("get_weather", {"city": city, "unit": "celsius"})])
        assert not _accepts(loaded, many, text), text
    too_long = render([ToolCall("get_weather", {"city": "x" * 13, "unit": "celsius"})])  # maxLength 12
    assert not _accepts(loaded, many, too_long), too_long


# Pieces of text values, markers and near-markers among them.
PIECES = ["a", " ", "\n", "<", "/", ">", "|", "｜", "</", "<b>", "DSML", "｜DSML｜", "parameter>", "<|open|>"]
PIECES += [
    "<|close|>",
    "<|sep|>",
    "argument",
    "</｜DSML｜parameter>",
    "<｜DSML｜parameter",
    "<|close|>argument<|sep|>",
]
MARKERS = ("｜DSML｜", "<|open|>", "<|close|>", "<|sep|>")


@pytest.mark.parametrize("tool_format", ["deepseek", "kimi_k2"])
def test_a_text_value_is_accepted_exactly_when_it_reads_back(
    loaded: tuple[Any, Any], tool_format: str
) -> None:
    """What the grammar accepts reads back as the same valid call; what reads back (a value of at
    most 12 characters, holding no special token of the tokenizer) is accepted."""
    many = _answer(loaded, tool_format, parallel=True)
    render = render_dsml if tool_format == "deepseek" else render_k3
    tokenizer = grammar_tokenizer(loaded[1])
    spelled = [m for m in MARKERS if tokenizer.special_token(m) is not None]

    @settings(max_examples=60, deadline=None)
    @given(city=st.lists(st.sampled_from(PIECES), max_size=5).map("".join))
    def check(city: str) -> None:
        call = ToolCall("get_weather", {"city": city, "unit": "celsius"})
        text = render([call])
        calls = parse(text, tool_format, TOOL_SETS["all"]).calls
        reads_back = [(c.name, c.arguments) for c in calls] == [(call.name, call.arguments)]
        fits = len(city) <= 12 and not any(marker in city for marker in spelled)
        assert _accepts(loaded, many, text) == (reads_back and fits), text

    check()


def test_the_dsml_and_xtml_markers_are_special_tokens_when_the_tokenizer_has_them(
    loaded: tuple[Any, Any],
) -> None:
    tokenizer = grammar_tokenizer(loaded[1])
    dsml, xtml = _answer(loaded, "deepseek", parallel=True), _answer(loaded, "kimi_k2", parallel=True)
    if _is_special_tokenizer(loaded):
        assert f"<[{tokenizer.special_token('｜DSML｜')}]>" in dsml
        for token in ("<|open|>", "<|sep|>", "<|close|>"):
            assert f"<[{tokenizer.special_token(token)}]>" in xtml
        # Spelled out in text, the markers would end or break a value: a text value never holds them.
        assert "｜DSML｜" in dsml and "<\\|open\\|>" in xtml
    else:
        assert "<[" not in dsml and "<[" not in xtml


# --- lazy triggers ---------------------------------------------------------------------------------

# One region each, as a model opens it.
LAZY_REGIONS = {
    "deepseek": [
        render_dsml([GOOD_CALLS[0], GOOD_CALLS[3]]),
        render_dsml([GOOD_CALLS[2]], "tool_calls"),
    ],
    "kimi_k2": [render_k3(GOOD_CALLS[:2]), render_k3(GOOD_CALLS[2:], json_block=True)],
}


@pytest.mark.parametrize("tool_format", ["deepseek", "kimi_k2"])
def test_the_dsml_and_xtml_openers_trigger_anywhere(loaded: tuple[Any, Any], tool_format: str) -> None:
    grammars = _grammars(loaded, tool_format, required=False)
    for text in LAZY_REGIONS[tool_format]:
        assert parse("Sure.\n" + text, tool_format, TOOL_SETS["all"]).calls, text
        hit = _first_match(grammars.triggers, ("Sure.\n" + text).encode())
        assert hit is not None and hit[0] == len("Sure.\n"), text
        assert _accepts(loaded, hit[1].grammar, text), text


# (format, the answer's beginning, a region the at-start trigger opens there)
AT_START = [
    ("harmony", "", _harmony_bare(GOOD_CALLS[1:2])),
    ("harmony", " \n", _harmony_bare(GOOD_CALLS[3:])),
    ("gemma4", "", _gemma_bare(GOOD_CALLS[:1])),
    ("gemma4", "\n", _gemma_bare(GOOD_CALLS[2:3])),
]


@pytest.mark.parametrize(("tool_format", "lead", "text"), AT_START)
def test_a_bare_call_triggers_only_where_the_answer_begins(
    loaded: tuple[Any, Any], tool_format: str, lead: str, text: str
) -> None:
    triggers = _grammars(loaded, tool_format, required=False).triggers
    region = text.lstrip()
    assert parse(lead + text, tool_format, TOOL_SETS["all"]).calls, text
    hit = _first_match(triggers, (lead + text).encode(), at_answer_start=True)
    assert hit is not None and hit[0] == len(lead + text) - len(region), text
    assert hit[1].at_start and _accepts(loaded, hit[1].grammar, region), text
    # Anywhere else the same text is prose to the parser, and stays free.
    assert _first_match(triggers, (lead + text).encode()) is None
    assert parse("Well, " + region, tool_format, TOOL_SETS["all"]).calls == []
    assert _first_match(triggers, ("Well, " + region).encode(), at_answer_start=True) is None


LEADS = [" ", "\n", "\t", "\r\n", "Sure.", "call:", "to=functions.", "<b>", "`"]


@pytest.mark.parametrize(("tool_format", "render"), [("harmony", _harmony_bare), ("gemma4", _gemma_bare)])
def test_a_bare_call_trigger_agrees_with_the_parser(
    loaded: tuple[Any, Any], tool_format: str, render: Any
) -> None:
    """Where the trigger fires, the call the grammar completes is read by the parser; where it does
    not, the parser reads prose; after nothing but spaces, it fires."""
    triggers = _grammars(loaded, tool_format, required=False).triggers
    region = render(GOOD_CALLS[:1]).lstrip()

    @settings(max_examples=40, deadline=None)
    @given(lead=st.lists(st.sampled_from(LEADS), max_size=3).map("".join))
    def check(lead: str) -> None:
        hit = _first_match(triggers, (lead + region).encode(), at_answer_start=True)
        if hit is None:  # the parser reads the text as prose: it stays free
            assert parse(lead + region, tool_format, TOOL_SETS["all"]).calls == [], lead
            assert lead.strip(" \t\r\n"), lead
            return
        # From where it fired, the grammar writes a call the parser reads there.
        assert _accepts(loaded, hit[1].grammar, region)
        head = (lead + region).encode()[: hit[0]].decode()
        [call] = parse(head + region, tool_format, TOOL_SETS["all"]).calls
        assert (call.name, call.arguments) == (GOOD_CALLS[0].name, GOOD_CALLS[0].arguments)
        assert lead.strip(" \t\r\n") or hit[0] == len(lead.encode()), lead

    check()


def test_a_bare_gemma_call_triggers_only_once_it_names_a_declared_tool(loaded: tuple[Any, Any]) -> None:
    triggers = _grammars(loaded, "gemma4", required=False).triggers
    for text in ["call: me maybe", "call:", "call:get_weathe", "call:get_weather", "call:forecast{"]:
        assert _first_match(triggers, text.encode(), at_answer_start=True) is None, text
    hit = _first_match(triggers, b"call:get_weather{", at_answer_start=True)
    assert hit is not None and hit[0] == 0


# --- generation with random weights ----------------------------------------------------------------

# (format, what the model writes first, where the constrained region ends)
OPENED = [
    pytest.param(
        "deepseek", "Let me check.\n<｜DSML｜function_calls>", "</｜DSML｜function_calls>", id="dsml-v3.2"
    ),
    pytest.param("deepseek", "<｜DSML｜tool_calls>", "</｜DSML｜tool_calls>", id="dsml-v4"),
    pytest.param("kimi_k2", "On it.<|open|>tools<|sep|>", "<|close|>tools<|sep|>", id="xtml"),
    pytest.param("harmony", " to=functions.", "<|call|>", id="harmony-bare"),
    pytest.param("gemma4", "call:get_weather{", "<tool_call|>", id="gemma4-bare"),
    pytest.param(
        "gemma4",
        "<|channel>thought\nhm<channel|>call:ping{",
        "<tool_call|>",
        id="gemma4-bare-after-reasoning",
    ),
]


@pytest.mark.parametrize(("tool_format", "opening", "closer"), OPENED)
def test_a_call_opened_lazily_is_valid(
    loaded: tuple[Any, Any], tool_format: str, opening: str, closer: str
) -> None:
    tools = TOOL_SETS["all"]
    tokenizer = loaded[1]
    processor = tool_call_processor(tokenizer, tool_format, tools, parallel=False)
    after_call = _countdown(lambda: processor.regions >= 1 and not processor.constraining, 1)
    text, _ = _generate(
        loaded,
        _prompt(tokenizer, tools),
        [ForceText(tokenizer, opening), processor],
        seed=0,
        until=after_call,
        max_tokens=500,
    )
    # A detokenizer may drop the output's leading space (gpt-oss's ` to=`); the processor saw it.
    assert text.lstrip().startswith(opening.lstrip())
    assert processor.regions == 1 and processor.problems == [], (text, processor.problems)
    end = text.find(closer, len(opening.lstrip()))
    assert end >= 0, text
    result = parse(text[: end + len(closer)], tool_format, tools)
    assert result.calls and not result.errors, (text, result.errors)
    _assert_valid(result.calls, tools)


@pytest.mark.parametrize(
    ("tool_format", "opening"),
    [("harmony", "Sure. to=functions."), ("gemma4", "Sure. call:get_weather{")],
)
def test_a_bare_call_after_prose_stays_free(loaded: tuple[Any, Any], tool_format: str, opening: str) -> None:
    tokenizer = loaded[1]
    processor = tool_call_processor(tokenizer, tool_format, TOOL_SETS["all"])
    text, _ = _generate(
        loaded,
        _prompt(tokenizer, TOOL_SETS["all"]),
        [ForceText(tokenizer, opening), processor],
        seed=0,
        max_tokens=40,
    )
    assert text.startswith(opening)
    assert processor.regions == 0


# A `required` answer that opens with each layout's marker (forced): the grammar completes it.
REQUIRED = [
    pytest.param("deepseek", "<｜DSML｜function_calls>", id="dsml-v3.2"),
    pytest.param("deepseek", "<｜DSML｜tool_calls>", id="dsml-v4"),
    pytest.param("kimi_k2", "<|open|>tools<|sep|>", id="xtml"),
    pytest.param("harmony", " to=functions.", id="harmony-bare"),
    pytest.param("gemma4", "call:", id="gemma4-bare"),
]


@pytest.mark.parametrize("parallel", [False, True], ids=["one", "parallel"])
@pytest.mark.parametrize(("tool_format", "opening"), REQUIRED)
def test_a_required_answer_in_the_layout_is_valid(
    loaded: tuple[Any, Any], tool_format: str, opening: str, parallel: bool
) -> None:
    tools = TOOL_SETS["all"]
    tokenizer = loaded[1]
    processor = tool_call_processor(tokenizer, tool_format, tools, required=True, parallel=parallel)
    text, finish = _generate(
        loaded, _prompt(tokenizer, tools), [ForceText(tokenizer, opening), processor], seed=1, max_tokens=500
    )
    assert text.lstrip().startswith(opening.lstrip()) and processor.problems == [], (text, processor.problems)
    result = parse(text, tool_format, tools, truncated=finish == "length")
    _assert_valid(result.calls, tools)
    if finish == "stop":
        assert result.calls and not result.errors, (text, result.errors)
        assert len(result.calls) == 1 or parallel, text
        assert not (result.content or "").strip(), text
    else:  # noise may go on calling until the token limit: only the region cut off is lost
        assert parallel and [e.kind for e in result.errors] == ["truncated_call"], text
