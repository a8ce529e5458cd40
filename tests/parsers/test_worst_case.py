"""Adversarial text costs the parser a few steps, not one per character (issue 21).

`"{" * n` was a full engine step per brace in `auto` (1 MB: 3-4 s): a bracket right after a
bracket never stands alone, so a run of them is passed at once. Timings are in
benchmarks/parsers.py (`--worst-case`); here, the number of steps and the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydantic_mlx.parsers import Event, StreamParser, _dialect, parse
from pydantic_mlx.parsers._engine import Engine

from .test_fast_paths import without_fast_paths
from .test_hostile_linear import lines_run

TOOLS = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]


def count_text_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the text state's steps (`Engine._step_text`) into the one-item list it returns."""
    steps = [0]
    step_text = Engine._step_text  # pyright: ignore[reportPrivateUsage]

    def counted(self: Engine, final: bool) -> bool:
        steps[0] += 1
        return step_text(self, final)

    monkeypatch.setattr(Engine, "_step_text", counted)
    return steps


@pytest.mark.parametrize("unit", ["{", "[", "[{", "{["])
def test_a_run_of_brackets_is_a_few_steps(unit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = count_text_steps(monkeypatch)
    text = unit * 50_000
    result = parse(text, "auto", tools=TOOLS)
    assert result.content == text and not result.calls
    assert steps[0] < 20  # was one step per bracket: 100,000


@pytest.mark.parametrize("unit", ["[ARGS]\n", "[ARGS] ", "[x]\n", "[a.b-c_d] x\n"])
def test_a_bracketed_word_on_every_line_is_a_few_steps(unit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A `[` alone on its line may open a pythonic call list (`[f(a=1)]`), but only when a name
    # and then `(` follow it: `[ARGS]` on every line cost a step per line (1 MB: 1.5 s).
    steps = count_text_steps(monkeypatch)
    text = unit * 5_000
    for format in ("auto", "pythonic"):
        steps[0] = 0
        result = parse(text, format, tools=TOOLS)
        assert (result.content, result.calls, result.errors) == (text, [], [])
        assert steps[0] < 20  # was one step per line: 5,000


@settings(max_examples=60, deadline=None)
@given(
    brackets=st.text(alphabet="{[", min_size=1, max_size=6),
    gap=st.sampled_from(["", "\n", " "]),
    call=st.sampled_from(
        [
            '[TOOL_CALLS]read_file[ARGS]{"a": 1}',
            '{"name": "read_file", "arguments": {}}',
            '[{"name": "read_file", "arguments": {}}]',
            "[read_file(a=1)]",
        ]
    ),
)
def test_what_follows_a_run_of_brackets_is_read_as_before(brackets: str, gap: str, call: str) -> None:
    # The run is skipped but for its last bracket, which may open a marker or a call itself.
    text = brackets + gap + call
    whole = parse(text, "auto", tools=TOOLS)
    streamed = StreamParser("auto", tools=TOOLS)
    for i in range(0, len(text), 3):
        streamed.feed(text[i : i + 3])
    streamed.close()
    assert streamed.result() == whole
    # A call opened by a marker, or a list of calls on its own line, is read whatever brackets
    # come before (decided exactly as when each bracket was a step: compared on these cases).
    if call.startswith("[TOOL_CALLS]") or (gap == "\n" and call.startswith("[")):
        assert [c.name for c in whole.calls] == ["read_file"], text


@pytest.mark.parametrize("opener", ["[TOOL_CALLS]", "<|tool_call|>", "<|python_tag|>"])
def test_an_opener_repeated_thousands_of_times_is_one_unread_region(opener: str) -> None:
    # A doubled opener is one region; it was read by one recursive call per repetition, so a
    # long run (benchmarks/parsers.py's "mistral markers") raised RecursionError.
    text = opener * 5_000
    for result in (parse(text, "auto", tools=TOOLS), parse(text, "auto", tools=TOOLS, truncated=True)):
        assert (result.content, result.calls) == (None, [])
        assert [e.text for e in result.errors] == [text]
    streamed = StreamParser("auto", tools=TOOLS)
    for i in range(0, len(text), 16):
        streamed.feed(text[i : i + 16])
    streamed.close()
    assert streamed.result() == parse(text, "auto", tools=TOOLS)


REPEATED_CALLS = [
    ("auto", "<tool_call>{"),
    ("hermes", "<tool_call>{"),
    ("auto", "<TOOLCALL>{"),
    ("nemotron", "<TOOLCALL>{"),
    ("auto", "<function={"),
    ("qwen3_coder", "<function={"),
]


@pytest.mark.parametrize(("format", "unit"), REPEATED_CALLS)
def test_a_repeated_broken_call_costs_a_few_lines_per_repeat(format: str, unit: str) -> None:
    # Each repeat is a region its own opener interrupts, unread: it was opened, searched and
    # parsed by every format sharing the opener (130-210 lines of the parser per repeat); the
    # repeats after the first are now settled by one comparison each. Counted, not timed.
    parse(unit * 10, format, tools=TOOLS)  # patterns built once are not counted
    short, long = (lines_run(lambda n=n: parse(unit * n, format, tools=TOOLS)) for n in (300, 1200))
    assert (long - short) / 900 < 30
    result = parse(unit * 1200, format, tools=TOOLS)
    assert (result.content, result.calls) == (None, [])
    assert [e.text for e in result.errors] == [unit] * 1200
    assert len({e.message for e in result.errors}) == 1


@pytest.mark.parametrize(("format", "unit"), REPEATED_CALLS)
def test_a_repeated_broken_call_streamed_is_read_by_the_formats_once(
    format: str, unit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Streamed, each repeat settles on its own delta; the formats' verdict on a body they
    # already failed to read is remembered (it was one parse per format per repeat), and the
    # buffer is trimmed between the regions (it grew for the whole output: each delta appended
    # could copy all of it).
    reads = 0
    for module in {fmt for fmt, _ in _candidates(format, unit)}:
        read = module.parse_region

        def counted(*args: Any, read: Callable[..., Any] = read) -> Any:
            nonlocal reads
            reads += 1
            return read(*args)

        monkeypatch.setattr(module, "parse_region", counted)
    parser = StreamParser(format, tools=TOOLS)
    text = unit * 3000
    sizes: list[int] = []
    for i in range(0, len(text), 4):
        parser.feed(text[i : i + 4])
        sizes.append(len(parser._engine._buf))  # pyright: ignore[reportPrivateUsage]
    parser.close()
    assert parser.result() == parse(text, format, tools=TOOLS)
    assert reads < 10  # was 3000 per format sharing the opener
    assert max(sizes) < 10_000  # was the whole text


def _candidates(format: str, unit: str) -> tuple[tuple[Any, Any], ...]:
    """The (format module, syntax) pairs that read the regions `unit`'s opener opens."""
    dialect = _dialect(format)  # pyright: ignore[reportPrivateUsage]
    opener = next(o for o in dialect.openers if unit.startswith(o))
    return dialect.openers[opener]


@settings(max_examples=150, deadline=None)
@given(
    format=st.sampled_from(["auto", "hermes", "nemotron", "qwen3_coder", "glm", "mistral"]),
    opener=st.sampled_from(["<tool_call>", "<TOOLCALL>", "<function=", "[TOOL_CALLS]", "<|python_tag|>"]),
    body=st.sampled_from(
        [
            "{",
            "x",
            " {",
            "{\n",
            "`",
            '"',
            "<",
            "}",
            "\\",
            "[",
            "```",
            "a=1",
            '{"a": 1}',
            '{"a": "',
            "</",
            "<tool_call>",
        ]
    ),
    repeats=st.integers(1, 12),
    before=st.sampled_from(["", "hi ", "`", "\n", "<think>x</think>"]),
    after=st.sampled_from(["", "x", "<tool_call>", "</tool_call>", "</TOOLCALL>", "{", "`"]),
    step=st.integers(1, 13),
)
def test_a_repeated_call_settles_as_each_repeat_would(
    format: str, opener: str, body: str, repeats: int, before: str, after: str, step: int
) -> None:
    # The repeats settled at once give what the steps give one region at a time: streamed in
    # small deltas (where the next repeat is rarely all there, so each is a step) == parse.
    text = before + (opener + body) * repeats + after
    whole = parse(text, format, tools=TOOLS)
    streamed = StreamParser(format, tools=TOOLS)
    events: list[Event] = []
    for i in range(0, len(text), step):
        events += streamed.feed(text[i : i + step])
    events += streamed.close()
    assert streamed.result() == whole
    assert [type(e).__name__ for e in events].count("UnreadCall") == len(
        [e for e in whole.errors if type(e).__name__ != "UnknownTool"]
    )


REPEATED_BODIES = [
    "{",
    "x",
    " {",
    "{\n",
    "`",
    '"',
    "<",
    "}",
    "\\",
    "[",
    "```",
    '{"a": "',
    "</",
    "<tool_call>",
]


@settings(max_examples=300, deadline=None)
@given(
    format=st.sampled_from(["auto", "hermes", "nemotron", "qwen3_coder", "glm", "mistral"]),
    opener=st.sampled_from(["<tool_call>", "<TOOLCALL>", "<function=", "[TOOL_CALLS]", "<function"]),
    body=st.sampled_from(REPEATED_BODIES),
    repeats=st.integers(1, 10),
    other=st.one_of(st.none(), st.tuples(st.integers(0, 9), st.sampled_from(REPEATED_BODIES))),
    before=st.sampled_from(["", "hi ", "`", "\n", "<think>x</think>", "```\n", "ok\n\n"]),
    after=st.sampled_from(["", "x", "<tool_call>", "</tool_call>", "</TOOLCALL>", "{", "`", "<tool_"]),
    in_reasoning=st.booleans(),
    data=st.data(),
)
def test_repeats_streamed_settle_on_the_delta_a_step_would(
    format: str,
    opener: str,
    body: str,
    repeats: int,
    other: tuple[int, str] | None,
    before: str,
    after: str,
    in_reasoning: bool,
    data: st.DataObject,
) -> None:
    # Streamed, the repeats of a region settled unread are settled from its outcome as they
    # arrive, without the steps (`Engine._settle_streamed_repeats`): each one's events must come
    # on the very delta the steps give them, and the steps must take over where the text changes
    # (another body in one repeat, a partial marker, another opener after the last).
    units = [opener + body] * repeats
    if other is not None and other[0] < repeats:
        units[other[0]] = opener + other[1]
    text = before + "".join(units) + after
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(len(text) - 1, 1)), max_size=60))))
    deltas = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    fast = StreamParser(format, tools=TOOLS, in_reasoning=in_reasoning)
    stepped = without_fast_paths(StreamParser(format, tools=TOOLS, in_reasoning=in_reasoning))
    assert [fast.feed(d) for d in deltas] == [stepped.feed(d) for d in deltas]
    assert fast.close() == stepped.close()
    assert fast.result() == stepped.result() == parse(text, format, tools=TOOLS, in_reasoning=in_reasoning)


@pytest.mark.parametrize(("format", "unit"), [*REPEATED_CALLS, ("auto", "<tool_call>")])
@pytest.mark.parametrize("step", [1, 4])
def test_a_repeated_broken_call_streamed_costs_a_few_lines_per_delta(
    format: str, unit: str, step: int
) -> None:
    # Streamed, a repeat is rarely all there when the region before it settles: each repeat was
    # still a region of its own (opened, walked, settled: 67-83 lines of the parser per 4-char
    # delta, 36-40 per 1-char delta). Each is now settled from the last one's outcome on the
    # delta that completes it: 33-40 and 25-27 lines per delta. Counted, not timed.
    def streamed(n: int) -> None:
        parser = StreamParser(format, tools=TOOLS)
        text = unit * n
        for i in range(0, len(text), step):
            parser.feed(text[i : i + step])
        parser.close()

    streamed(10)  # patterns built once are not counted
    short, long = (lines_run(lambda n=n: streamed(n)) for n in (100, 400))
    deltas = 300 * len(unit) / step
    assert (long - short) / deltas < (50 if step == 4 else 32)


CYCLE_BODIES = [
    *REPEATED_BODIES,
    "x",
    "a",
    "read_file",
    '{"name": "read_file", "arguments": {}}',
    "<function=f>",
]


@settings(max_examples=300, deadline=None)
@given(
    format=st.sampled_from(["auto", "hermes", "nemotron", "qwen3_coder", "glm", "mistral"]),
    opener=st.sampled_from(["<tool_call>", "<TOOLCALL>", "<function=", "[TOOL_CALLS]"]),
    cycle=st.lists(st.sampled_from(CYCLE_BODIES), min_size=1, max_size=4),
    repeats=st.integers(1, 6),
    other=st.one_of(st.none(), st.tuples(st.integers(0, 20), st.sampled_from(CYCLE_BODIES))),
    before=st.sampled_from(["", "hi ", "`", "\n", "<think>x</think>"]),
    after=st.sampled_from(["", "x", "<tool_call>", "</tool_call>", "{", "`", "<tool_"]),
    tools=st.sampled_from([None, TOOLS]),
    data=st.data(),
)
def test_cycles_of_regions_settle_on_the_delta_a_step_would(
    format: str,
    opener: str,
    cycle: list[str],
    repeats: int,
    other: tuple[int, str] | None,
    before: str,
    after: str,
    tools: Any,
    data: st.DataObject,
) -> None:
    # Regions whose bodies alternate (`<tool_call>{a<tool_call>{b` repeated: a cycle of two; or
    # a broken region, then one read as a call or as text) are settled from the cycle's outcomes
    # once it came twice in a row, at once or streamed: each region's events (calls numbered on)
    # must come on the very delta the steps give them, and the steps must take over where the
    # text leaves the cycle.
    units = [opener + body for body in cycle] * repeats
    if other is not None and other[0] < len(units):
        units[other[0]] = opener + other[1]
    text = before + "".join(units) + after
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(len(text) - 1, 1)), max_size=80))))
    deltas = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    fast = StreamParser(format, tools=tools)
    stepped = without_repeats(StreamParser(format, tools=tools))
    assert [fast.feed(d) for d in deltas] == [stepped.feed(d) for d in deltas]
    assert fast.close() == stepped.close()
    assert fast.result() == stepped.result() == parse(text, format, tools=tools)


def without_repeats(parser: StreamParser) -> StreamParser:
    """`parser` with every delta stepped, and every region too (no cycle of regions is kept)."""
    engine: Any = without_fast_paths(parser)._engine  # pyright: ignore[reportPrivateUsage]
    engine._settle_repeats = lambda *_: None
    return parser


@pytest.mark.parametrize(
    "unit",
    ["<tool_call>{<tool_call>x", "<tool_call>{a<tool_call>{b", "<tool_call>{a<tool_call>{b<tool_call>c"],
)
def test_a_cycle_of_regions_costs_a_few_lines_per_region(unit: str) -> None:
    # A broken region, then one read as a call (or as text), repeated: each was compared with
    # the one before it only, so none was ever a repeat (150 lines of the parser per region;
    # 1 MB parsed: 1.1-1.4 s). Counted, not timed.
    parse(unit * 10, "auto", tools=TOOLS)
    short, long = (lines_run(lambda n=n: parse(unit * n, "auto", tools=TOOLS)) for n in (100, 400))
    assert (long - short) / (300 * unit.count("<tool_call>")) < 30
    stepped = without_repeats(StreamParser("auto", tools=TOOLS))
    stepped.feed(unit * 400)
    stepped.close()
    assert parse(unit * 400, "auto", tools=TOOLS) == stepped.result()


@pytest.mark.parametrize(
    ("format", "unit", "step", "most"),
    [
        # A JSON-value opener written again and again: each 1-char delta of it was a step (the
        # region waited on the opener's next characters with nothing to search): 64-76 lines.
        ("auto", "[TOOL_CALLS]", 1, 30),
        ("mistral", "[TOOL_CALLS]", 1, 30),
        ("auto", "<|python_tag|>", 1, 30),
        ("auto", "[TOOL_CALLS]", 4, 30),
        # Dropped markup repeated where the answer begins: the answer still begins after it, and
        # each delta of a part of it was a step: 50-61 lines.
        ("auto", "<eos>", 1, 45),
        ("gemma4", "<eos>", 1, 45),
        ("auto", "<|im_end|>\n", 1, 42),
        ("auto", "<eos>", 4, 60),  # (whole markers, each a step: 96)
        ("auto", "[e~[", 4, 60),  # (104)
        # A call head cut by the deltas (`{"na`, `{"name": "re`): each ran the JSON reader: 63.
        ("auto", '{"name": ', 1, 55),
        ("hermes", '{"name": ', 1, 55),
        # A bracketed word cut by the deltas: `[A`, `[AR`, ... each ran both call readers: 42-45.
        ("auto", "[ARGS]\n", 1, 40),
        ("pythonic", "[ARGS]\n", 1, 41),
        ("auto", "[ARGS]\n", 4, 41),
    ],
)
def test_a_wait_streamed_costs_a_few_lines_per_delta(format: str, unit: str, step: int, most: int) -> None:
    # Counted, not timed (the per-MB figures are in benchmarks/parsers.py --named-only).
    def streamed(n: int) -> None:
        parser = StreamParser(format, tools=TOOLS)
        text = unit * n
        for i in range(0, len(text), step):
            parser.feed(text[i : i + step])
        parser.close()

    streamed(10)  # patterns built once are not counted
    short, long = (lines_run(lambda n=n: streamed(n)) for n in (100, 400))
    assert (long - short) / (300 * len(unit) / step) < most


@settings(max_examples=400, deadline=None)
@given(
    format=st.sampled_from(["auto", "mistral", "llama3_json", "pythonic", "hermes", "gemma4"]),
    pieces=st.lists(
        st.sampled_from(
            [
                *["[TOOL_CALLS]", "<|python_tag|>", "[TOOL_", "<|python", " ", "\n", "[", "[ARGS", "]", "x"],
                *[
                    "{",
                    '"',
                    "'",
                    "name",
                    "function",
                    ": ",
                    ":",
                    '"read_file"',
                    '"rea',
                    ",",
                    "}",
                    "(",
                    "<eos>",
                    "<e",
                ],
                *[
                    "<think>",
                    "</think>",
                    "<|im_end|>",
                    "[e~[",
                    "<|channel|>",
                    "<start_of_turn>",
                    "<tool_call>",
                ],
            ]
        ),
        max_size=14,
    ),
    tail=st.sampled_from(
        ["", '{"name": "read_file", "arguments": {}}', '[{"name": "read_file"}]', "read_file("]
    ),
    data=st.data(),
)
def test_waits_on_openers_and_names_settle_as_steps_do(
    format: str, pieces: list[str], tail: str, data: st.DataObject
) -> None:
    # A JSON-value region waiting on its opener written again, a `[` waiting on a name, a `{` on
    # a call head and dropped markup where the answer begins are settled without a step (or with
    # one match) while they wait: every delta's events equal the stepped engine's.
    text = "".join(pieces) + tail
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(len(text) - 1, 1)), max_size=60))))
    deltas = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    fast = StreamParser(format, tools=TOOLS)
    stepped = without_repeats(StreamParser(format, tools=TOOLS))
    assert [fast.feed(d) for d in deltas] == [stepped.feed(d) for d in deltas]
    assert fast.close() == stepped.close()
    assert fast.result() == stepped.result() == parse(text, format, tools=TOOLS)
