"""Grammars (llguidance's Lark dialect) for one tool call in a model's own format, and for JSON output.

Pure text building: no MLX, no llguidance. A grammar describes one *region* of the output, from
its first byte: the call a trigger opened (`<tool_call>` ..., a ```json fence, a bare
`{"name": "tool"`), the calls a `tool_choice="required"` answer consists of, or the JSON of a
native-output answer.

A whole answer's JSON is compact (`{"a": 1, "b": [2]}`, as chat templates render calls); a
region the model opened itself keeps the layout it started (compact or pretty-printed) within
bounded whitespace (`JSON_WHITESPACE`). Whitespace is never unbounded: an untrained or
confused model would otherwise fill its token budget with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import _json_calls, _literal_calls, _xml_calls
from ._closed_objects import close_objects
from ._json_calls import call_json_rule
from ._lark import (
    JSON_WHITESPACE,
    STANDS_ALONE,
    CallSyntax,
    SpecialToken,
    ToolSchema,
    json_options,
    with_local_refs_as_defs,
)

__all__ = [
    "CALL_FORMATS",
    "JSON_WHITESPACE",
    "GrammarSet",
    "SpecialToken",
    "ToolSchema",
    "Trigger",
    "answer_grammars",
    "output_grammars",
    "tool_call_grammars",
]

_LEAD = r"/\n{0,2}/"
"""Whitespace allowed before a whole-answer grammar (after a reasoning block, say)."""

_OPTIONAL_WS = f"(?:{JSON_WHITESPACE})?"


class CallSyntaxBuilder(Protocol):
    """A format's call grammar for `tools` (`compact`: JSON exactly as templates write it)."""

    def __call__(
        self, tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool
    ) -> CallSyntax | None: ...


@dataclass(frozen=True)
class Trigger:
    """Free text that opens a constrained region: where `pattern` matches, `grammar` takes over,
    starting with the matched text itself (so the grammar's first lexemes accept it), or with
    its `region` group when it has one (text before that group is context, not region).

    An `at_start` trigger counts only where the answer begins (the output's start, or right after
    a reasoning block): its pattern must match from there, spaces first."""

    pattern: re.Pattern[bytes]
    grammar: str
    at_start: bool = False


@dataclass(frozen=True)
class ReasoningBlock:
    """A format's reasoning blocks, which grammars leave free, and what ends them: the parser's
    rules, which the processor must follow or a call could start unconstrained inside one.

    `pairs` are the (opener, closer) pairs the parser reads, the main one first. A block the
    prompt opened ends at any closer, one the model opened at its opener's. `enders` are call
    openers that also end any block the model never closed (Kimi-K2's and DeepSeek's special
    tokens); `prompt_enders` those that end a block the prompt opened (hermes, Qwen3-Coder, GLM:
    their templates end the prompt with `<think>`). See `CallSyntax.ends_reasoning`.
    """

    pairs: tuple[tuple[str, str], ...]
    enders: frozenset[str] = frozenset()
    prompt_enders: frozenset[str] = frozenset()

    @property
    def opener(self) -> str:
        return self.pairs[0][0]

    @property
    def closer(self) -> str:
        return self.pairs[0][1]

    def ends(self, opener: str | None) -> tuple[tuple[str, ...], frozenset[str]]:
        """The closers and the call openers that end the block `opener` opened (None: the prompt)."""
        if opener is None:
            return tuple(dict.fromkeys(c for _, c in self.pairs)), self.prompt_enders
        return tuple(c for o, c in self.pairs if o == opener), self.enders


@dataclass(frozen=True)
class GrammarSet:
    """The grammars of one request.

    `answer` constrains the whole answer (after any reasoning block); otherwise the output is
    free and each of `triggers` constrains the region it opens, after which text is free again.
    `reasoning` is the format's reasoning block, which stays free.
    """

    triggers: tuple[Trigger, ...] = ()
    answer: str | None = None
    reasoning: ReasoningBlock | None = None


def tool_call_grammars(
    tool_format: str,
    tools: Sequence[ToolSchema],
    *,
    required: bool,
    parallel: bool = True,
    untagged_json: bool,
    reasoning: ReasoningBlock | None,
    special_token: SpecialToken,
) -> GrammarSet | None:
    """The grammars that make every tool call valid for `tools`, in `tool_format`.

    Lazy (`required=False`): the format's opener markers trigger a call in the format's syntax,
    and with `untagged_json` a ```json fence or a bare `{"name": "<declared tool>"` triggers a
    JSON call object (the shapes small models write instead of markers). `required=True`: the
    answer is one or more calls (exactly one unless `parallel`) in the format's syntax (a bare
    JSON call object for formats without a grammar that read untagged JSON), then the end of
    the answer. None when nothing can be constrained.
    """
    if not tools:
        return None
    tools = [_closed(with_local_refs_as_defs(t)) for t in tools]
    if required:
        return answer_grammars(
            tool_format,
            tools,
            output_schema=None,
            parallel=parallel,
            untagged_json=untagged_json,
            reasoning=reasoning,
            special_token=special_token,
        )
    # A region the model opened follows its own JSON layout (compact or pretty-printed).
    builder = _CALL_SYNTAXES.get(tool_format)
    syntax = builder(tools, special_token, compact=False) if builder else None
    triggers: list[Trigger] = []
    if syntax is not None:
        for marker, one, many in syntax.openers:
            region = many if parallel else one
            grammar = "\n".join([f"start: {region}", *syntax.rules])
            triggers.append(Trigger(re.compile(re.escape(marker.encode())), grammar))
        for pattern, one, many in syntax.untagged:
            grammar = "\n".join([f"start: {many if parallel else one}", *syntax.rules])
            triggers.append(Trigger(re.compile(pattern.encode()), grammar))
        for pattern, one, many in syntax.at_start:
            grammar = "\n".join([f"start: {many if parallel else one}", *syntax.rules])
            at_start = re.compile(rf"[ \t\r\n]*(?P<region>{pattern})".encode())
            triggers.append(Trigger(at_start, grammar, at_start=True))
    if untagged_json:
        triggers.extend(_untagged_json_triggers(tools, syntax.json_keys if syntax else ("arguments",)))
    return GrammarSet(triggers=tuple(triggers), reasoning=reasoning) if triggers else None


def answer_grammars(
    tool_format: str,
    tools: Sequence[ToolSchema],
    *,
    output_schema: Mapping[str, Any] | None,
    parallel: bool = True,
    untagged_json: bool,
    reasoning: ReasoningBlock | None,
    special_token: SpecialToken,
) -> GrammarSet | None:
    """The grammar of a whole answer: calls to `tools` (one, or several when `parallel`) in the
    format's syntax (a bare JSON call object for formats without a grammar that read untagged
    JSON), or one JSON value valid against `output_schema` (native output), then the end.

    The answer is written compactly (`{"a": 1, "b": [2]}`, as chat templates render calls).
    None when nothing can be constrained.
    """
    alternatives: list[str] = []
    rules: list[str] = []
    tools = [_closed(with_local_refs_as_defs(t)) for t in tools]
    if tools:
        builder = _CALL_SYNTAXES.get(tool_format)
        syntax = builder(tools, special_token, compact=True) if builder is not None else None
        if syntax is not None:
            rules += syntax.rules
            alternatives.append(syntax.many if parallel else syntax.one)
        elif untagged_json:
            rules += ["untagged_call: call_json", call_json_rule(tools, compact=True)]
            alternatives.append('untagged_call ("\\n" untagged_call)*' if parallel else "untagged_call")
    if output_schema is not None:
        alternatives.append("answer")
        rules.append(f"answer: %json {json_options(close_objects(output_schema), compact=True)}")
    if not alternatives:
        return None
    start = (
        f"start: {_LEAD} {alternatives[0]}"
        if len(alternatives) == 1
        else f"start: {_LEAD} ({' | '.join(alternatives)})"
    )
    return GrammarSet(answer="\n".join([start, *rules]), reasoning=reasoning)


def output_grammars(schema: Mapping[str, Any], *, reasoning: ReasoningBlock | None) -> GrammarSet:
    """The grammar of an answer that is one JSON value valid against `schema` (native output)."""
    found = answer_grammars(
        "auto",
        (),
        output_schema=schema,
        untagged_json=False,
        reasoning=reasoning,
        special_token=lambda _: None,
    )
    assert found is not None
    return found


def _closed(tool: ToolSchema) -> ToolSchema:
    """`tool` with its objects closed (`close_objects`): arguments hold declared keys only."""
    parameters = tool.parameters
    if not any(k in parameters for k in ("type", "$ref", "anyOf", "oneOf", "allOf")):
        parameters = {"type": "object", **parameters}  # arguments are an object, even when unsaid
    return ToolSchema(tool.name, close_objects(parameters))


def _either(*builders: CallSyntaxBuilder) -> CallSyntaxBuilder:
    """A format that writes its calls in any of several families' syntaxes (DeepSeek's V3.1
    sections or V3.2's DSML): any one of them, each with its own openers."""

    def build(
        tools: Sequence[ToolSchema], special_token: SpecialToken, *, compact: bool
    ) -> CallSyntax | None:
        found = [b(tools, special_token, compact=compact) for b in builders]
        syntaxes = [s for s in found if s is not None]
        if len(syntaxes) <= 1:
            return syntaxes[0] if syntaxes else None
        return CallSyntax(
            "(" + " | ".join(s.one for s in syntaxes) + ")",
            "(" + " | ".join(s.many for s in syntaxes) + ")",
            tuple(rule for s in syntaxes for rule in s.rules),
            tuple(opener for s in syntaxes for opener in s.openers),
            json_keys=syntaxes[0].json_keys,
            untagged=tuple(u for s in syntaxes for u in s.untagged),
            at_start=tuple(a for s in syntaxes for a in s.at_start),
        )

    return build


_CALL_SYNTAXES: dict[str, CallSyntaxBuilder] = {
    "auto": _xml_calls.auto,
    "hermes": _json_calls.hermes,
    "qwen3_coder": _xml_calls.qwen3_coder,
    "llama3_json": _json_calls.llama3_json,
    "mistral": _json_calls.mistral,
    "deepseek": _either(_json_calls.deepseek, _xml_calls.dsml),
    "kimi_k2": _either(_json_calls.kimi_k2, _xml_calls.xtml),
    "glm": _xml_calls.glm,
    "hy3": _xml_calls.hy3,
    "hy4": _xml_calls.hy4,
    "solar_open": _xml_calls.solar_open,
    "minimax_m2": _xml_calls.minimax_m2,
    "minicpm5": _xml_calls.minicpm5,
    "granite": _json_calls.granite,
    "granite_20b_fc": _json_calls.granite_20b_fc,
    "nemotron": _json_calls.nemotron,
    "phi4_mini": _json_calls.phi4_mini,
    "xlam": _json_calls.xlam,
    "seed_oss": _xml_calls.seed_oss,
    "harmony": _json_calls.harmony,
    "gemma4": _literal_calls.gemma4,
    "function_gemma": _literal_calls.function_gemma,
    "command": _json_calls.command,
    "apertus": _json_calls.apertus,
    "longcat": _xml_calls.longcat,
    "gigachat": _either(_json_calls.gigachat, _xml_calls.gcml),
    "pythonic": _literal_calls.pythonic,
    "ernie": _json_calls.hermes,
    "hunyuan": _json_calls.hunyuan,
    "apriel": _json_calls.hunyuan,
    "internlm2": _json_calls.internlm2,
    "jamba": _json_calls.jamba,
    "olmo3": _literal_calls.olmo3,
    "minicpm3": _literal_calls.minicpm3,
}
"""Each format's call grammar builder (the module of its family)."""

CALL_FORMATS = tuple(_CALL_SYNTAXES)
"""Formats whose own call syntax has a grammar (every format the parsers know)."""


def _untagged_json_triggers(tools: Sequence[ToolSchema], keys: Sequence[str]) -> list[Trigger]:
    """A call object (arguments under one of `keys`) after a ```json fence (closed by the fence)
    or bare (ended by its `}`).

    Like llama.cpp's pattern triggers, they fire only once the object names a declared tool:
    JSON that is not a call (an answer, an example) stays free.
    """
    names = "|".join(re.escape(t.name) for t in sorted(tools, key=lambda t: -len(t.name)))
    head = rf'\{{{_OPTIONAL_WS}"name"{_OPTIONAL_WS}:{_OPTIONAL_WS}"(?:{names})"'
    fence = r"```(?:json)?[ \t]{0,4}\n[ \t]{0,8}"
    call_json = call_json_rule(tools, compact=False, keys=keys)
    alone = STANDS_ALONE.encode()
    return [
        Trigger(
            re.compile((fence + head).encode()),
            "\n".join(['start: FENCE call_json "\\n"? "```"', f"FENCE: /{fence}/", call_json]),
        ),
        Trigger(
            re.compile(alone + b"(?P<region>" + head.encode() + b")"),
            "\n".join(["start: call_json LINE_END?", r"LINE_END: /[ \t]{0,4}\n/", call_json]),
        ),
    ]
