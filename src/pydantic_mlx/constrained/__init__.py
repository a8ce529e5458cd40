"""Grammar-constrained decoding with llguidance: tool calls and JSON output that are always valid.

llguidance is a dependency of pydantic-mlx; `MLXModel` uses this module unless
`constrained=False`; the pieces here are usable on their own with `mlx_lm.generate`/`stream_generate`:

    from pydantic_mlx.constrained import tool_call_processor

    processor = tool_call_processor(tokenizer, "hermes", tools)
    text = mlx_lm.generate(model, tokenizer, prompt, logits_processors=[processor])

- `tool_call_processor(..., required=False)` is lazy: text is free until the model opens a call
  (the format's marker — `<tool_call>`, `[TOOL_CALLS]`, `<|python_tag|>`, `<｜DSML｜tool_calls>`,
  ... — a ```json fence or a bare `{"name": "<declared tool>"`, or where the answer begins a bare
  call the parser reads only there: gpt-oss's `to=functions.`, Gemma 4's `call:NAME{`), the call
  is then constrained to one declared tool with arguments valid against its schema, and text is
  free again after it.
- `tool_call_processor(..., required=True)`: the answer is one or more calls.
- `output_processor(tokenizer, schema)`: the answer is JSON valid against `schema`.

A reasoning block (`<think>`…`</think>`) is never constrained; with `in_reasoning=True` (the
prompt opened it) the constraint starts after its closer.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._install import install_hint
from ..parsers._tools import tool_set
from ..parsers.formats import get_format, reasoning_enders, reasoning_pairs
from ._grammars import (
    GrammarSet,
    ReasoningBlock,
    SpecialToken,
    ToolSchema,
    answer_grammars,
    tool_call_grammars,
)

if TYPE_CHECKING:
    from ._decoding import GrammarLogitsProcessor, GrammarTokenizer

__all__ = [
    "GrammarSet",
    "ToolSchema",
    "is_available",
    "output_processor",
    "tool_call_processor",
]

_GRAMMAR_SETS = 64
"""Grammar sets kept per tokenizer (one per distinct tools / output schema / mode)."""


def is_available() -> bool:
    """Whether llguidance is installed (a dependency: missing only where pydantic-mlx was installed
    without its dependencies)."""
    return importlib.util.find_spec("llguidance") is not None


def tool_call_processor(
    tokenizer: Any,
    tool_format: str,
    tools: Iterable[Any],
    *,
    required: bool = False,
    parallel: bool = True,
    in_reasoning: bool = False,
    reasoning_allowed: bool = True,
) -> GrammarLogitsProcessor:
    """A logits processor that keeps every tool call the model writes valid.

    `tools`: pydantic-ai `ToolDefinition`s, OpenAI-style dicts or `ToolSchema`s. `tool_format`:
    the parser format the output is read with. Calls are constrained in the format's own syntax
    for every format (`_grammars.CALL_FORMATS`); for every format that reads untagged JSON calls
    (hermes, llama3_json, mistral, pythonic, auto) a ```json fence or a bare `{"name": "<tool>"`
    is constrained too. With `parallel=False` a section of calls the model opens holds one call.
    With nothing to constrain the processor leaves the logits alone. `reasoning_allowed=False`
    (thinking turned off) admits no reasoning block before the answer.
    """
    schemas = _tool_schemas(tools)
    untagged, reasoning = _format_facts(tool_format)
    reasoning = reasoning if reasoning_allowed else None
    key = ("calls", tool_format, required, parallel, reasoning, _schemas_key(schemas))
    return _processor(
        tokenizer,
        key,
        lambda special_token: tool_call_grammars(
            tool_format,
            schemas,
            required=required,
            parallel=parallel,
            untagged_json=untagged,
            reasoning=reasoning,
            special_token=special_token,
        ),
        in_reasoning=in_reasoning,
    )


def output_processor(
    tokenizer: Any,
    schema: Mapping[str, Any],
    *,
    tool_format: str = "auto",
    tools: Iterable[Any] = (),
    parallel: bool = True,
    in_reasoning: bool = False,
    reasoning_allowed: bool = True,
) -> GrammarLogitsProcessor:
    """A logits processor that makes the answer one JSON value valid against `schema` (after any
    reasoning block of `tool_format`, unless `reasoning_allowed=False`), then ends it. With
    `tools`, the answer may instead be calls to them (in `tool_format`'s syntax), as an agent with
    tools and native output needs."""
    schemas = _tool_schemas(tools)
    untagged, reasoning = _format_facts(tool_format)
    reasoning = reasoning if reasoning_allowed else None
    key = (
        "output",
        tool_format,
        parallel,
        reasoning,
        json.dumps(schema, sort_keys=True),
        _schemas_key(schemas),
    )
    return _processor(
        tokenizer,
        key,
        lambda special_token: answer_grammars(
            tool_format,
            schemas,
            output_schema=schema,
            parallel=parallel,
            untagged_json=untagged,
            reasoning=reasoning,
            special_token=special_token,
        ),
        in_reasoning=in_reasoning,
    )


def _processor(
    tokenizer: Any,
    key: Hashable,
    grammars: Callable[[SpecialToken], GrammarSet | None],
    *,
    in_reasoning: bool,
) -> GrammarLogitsProcessor:
    """The processor for the grammars `grammars` makes, built once per tokenizer and `key`."""
    if not is_available():
        raise ImportError(f"constrained decoding needs llguidance: {install_hint('constrained')}")
    from ._decoding import GrammarLogitsProcessor

    def build(grammar_tokenizer: GrammarTokenizer) -> GrammarSet | None:
        sets = grammar_tokenizer.grammar_sets
        if key not in sets:
            if len(sets) >= _GRAMMAR_SETS:
                sets.pop(next(iter(sets)))
            sets[key] = grammars(grammar_tokenizer.special_token)
        return sets[key]

    return GrammarLogitsProcessor(tokenizer, build, in_reasoning=in_reasoning)


def _schemas_key(schemas: Sequence[ToolSchema]) -> str:
    return json.dumps([(t.name, t.parameters) for t in schemas])


def _format_facts(tool_format: str) -> tuple[bool, ReasoningBlock | None]:
    """Whether `tool_format` reads untagged JSON calls, and its reasoning block's markers."""
    untagged = tool_format == "auto" or "json" in get_format(tool_format).UNTAGGED
    return untagged, _reasoning(tool_format)


def _tool_schemas(tools: Iterable[Any]) -> list[ToolSchema]:
    given = list(tools)
    if all(isinstance(t, ToolSchema) for t in given):
        return given
    return [ToolSchema(name, dict(schema)) for name, schema in tool_set(given).schemas.items()]


def _reasoning(tool_format: str) -> ReasoningBlock | None:
    pairs = reasoning_pairs(tool_format)
    if not pairs:
        return None
    enders, prompt_enders = reasoning_enders(tool_format)
    return ReasoningBlock(pairs, enders=enders, prompt_enders=prompt_enders)
