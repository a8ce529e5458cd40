"""Traces to `mlx_lm.lora` training data (its `tools`/`chat` JSONL), and the round-trip check.

A record is `{"messages": [...], "tools": [...]}`: OpenAI-style chat dicts made from the trace's
message history by the same function `MLXModel` renders prompts with (`_chat.chat_messages`), so
tool calls are structured `tool_calls` that the model's own template writes in its own syntax, and
tool results are `tool` messages. With a tokenizer, each record is also checked: the template's
tokens for the record (`apply_chat_template`, as `mlx_lm.lora` computes them) must start with
exactly the prompt `MLXModel` renders before each response, so training sees the text the model
is asked to continue.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryFeedbackPart,
    RetryPromptPart,  # pyright: ignore[reportDeprecated]
    ToolCallPart,
    ToolReturnPart,
)

from .._chat import ChatTokenizer, chat_messages, render_prompt, template_conversation, tool_schemas
from ._trace import Trace

__all__ = [
    "DropReason",
    "DroppedStep",
    "ExportSummary",
    "export_traces",
    "round_trip_problems",
    "training_records",
]

Record = dict[str, Any]

DropReason = Literal["sent back for a retry", "answers a retry", "repeats a call"]
"""Why a model response is not trained: it was sent back to the model for a retry (a wrong call or
answer); it is the model's answer to such a retry (`clean_steps` only); or it makes a call the run
already made, same tool and same arguments (`clean_steps` only)."""


@dataclass(frozen=True)
class DroppedStep:
    """A model response of an exported trace that no record trains, and why."""

    trace: str
    """The trace's name."""
    response: int
    """Which response of the trace, counting from 1."""
    reason: DropReason


def _responses(messages: Sequence[ModelMessage]) -> list[int]:
    return [i for i, message in enumerate(messages) if isinstance(message, ModelResponse)]


def _carries_retry(message: ModelMessage | None) -> bool:
    """Whether `message` is a request that sends a response back for a retry (a wrong call or answer)."""
    return isinstance(message, ModelRequest) and any(
        isinstance(part, RetryFeedbackPart | RetryPromptPart)  # pyright: ignore[reportDeprecated]
        or (isinstance(part, ToolReturnPart) and part.outcome == "retried")
        for part in message.parts
    )


def _call_key(part: ToolCallPart) -> str:
    """A call as a loop repeats it: its tool and its arguments, however the model spaced or ordered them."""
    return json.dumps([part.tool_name, part.args_as_dict()], sort_keys=True, ensure_ascii=False, default=str)


def _drop_reasons(messages: Sequence[ModelMessage], *, clean_steps: bool) -> list[DropReason | None]:
    """For each response of `messages`, in order, why it is not trained (`None`: it is).

    Always: a response sent back for a retry. With `clean_steps`, also a response whose request
    carries a retry (the model's answer to its failed call or answer, an echo of the retry prompt
    included) and one that makes a call already made in the run (same tool, same arguments: a
    call loop, within one response or across responses; the first of them is kept)."""
    made: set[str] = set()
    reasons: list[DropReason | None] = []
    for index, response in enumerate(messages):
        if not isinstance(response, ModelResponse):
            continue
        repeats = False
        for part in response.parts:
            if isinstance(part, ToolCallPart):
                key = _call_key(part)
                repeats |= key in made
                made.add(key)
        following = messages[index + 1] if index + 1 < len(messages) else None
        if _carries_retry(following):
            reasons.append("sent back for a retry")
        elif clean_steps and index > 0 and _carries_retry(messages[index - 1]):
            reasons.append("answers a retry")
        elif clean_steps and repeats:
            reasons.append("repeats a call")
        else:
            reasons.append(None)
    return reasons


def _conversation(trace: Trace, tokenizer: ChatTokenizer | None) -> tuple[list[Record], list[Record]]:
    if tokenizer is None:
        return chat_messages(trace.messages, trace.instructions), tool_schemas(trace.tools)
    return template_conversation(tokenizer, trace.messages, trace.tools, instructions=trace.instructions)


def _assistant_positions(chat: list[Record]) -> list[int]:
    # `chat_messages` gives each ModelResponse exactly one assistant message, in order.
    return [i for i, message in enumerate(chat) if message["role"] == "assistant"]


def _record(chat: list[Record], tools: list[Record]) -> Record:
    """A record whose last message, the response it trains, does not open with line breaks: the
    template writes a response's text right after the generation prompt (`...assistant\n`), and
    tokenized whole, as `mlx_lm.lora` tokenizes a record, the two would merge into one token
    (`"\n\n"`) inside the masked prompt, a prompt the model is never given."""
    last = chat[-1]
    content = last.get("content")
    if isinstance(content, str) and content[:1] in ("\n", "\r"):
        chat = [*chat[:-1], {**last, "content": content.lstrip("\r\n")}]
    return {"messages": chat, "tools": tools} if tools else {"messages": chat}


def training_records(
    trace: Trace,
    *,
    per_request: bool = False,
    clean_steps: bool = False,
    include_retried: bool = False,
    tokenizer: ChatTokenizer | None = None,
) -> list[Record]:
    """The `mlx_lm.lora` records of one trace.

    By default one record: the whole conversation up to its last response (requests after it, as in
    a run that failed, have no answer to learn). With `per_request`, one record per response: the
    conversation up to and including it, so `mlx_lm.lora --mask-prompt` trains each response once,
    on exactly its prompt; responses the agent sent back for a retry are left out unless
    `include_retried`. `clean_steps` (records per response, as `per_request`) keeps only the
    clean responses: it also leaves out the answers to a retry and the responses that repeat a
    call the run already made (see `DropReason`); the records' prompts stay the conversation as
    the model saw it. With `tokenizer`, the chat is fitted to its template as `MLXModel` fits it
    (tool-call ids of the length it checks, later system messages as user turns if it refuses them).
    Raises `UserError` for `clean_steps` with `include_retried`, which would keep every response.
    """
    if clean_steps and include_retried:
        raise UserError("clean_steps leaves out retried responses; include_retried keeps them: choose one")
    chat, tools = _conversation(trace, tokenizer)
    positions = _assistant_positions(chat)
    if not positions:
        return []
    if not (per_request or clean_steps):
        return [_record(chat[: positions[-1] + 1], tools)]
    reasons = _drop_reasons(trace.messages, clean_steps=clean_steps)
    return [
        _record(chat[: position + 1], tools)
        for position, reason in zip(positions, reasons, strict=True)
        if include_retried or reason is None
    ]


def round_trip_problems(trace: Trace, tokenizer: ChatTokenizer, *, per_request: bool = False) -> list[str]:
    """What differs between training on the trace's records and the run: empty when, for every
    record and every response it trains, the template's tokens of the record (`apply_chat_template`,
    as `mlx_lm.lora` tokenizes it) start with exactly the prompt `MLXModel` renders before that
    response, and the prompt alone (`--mask-prompt`'s offset) is that prompt too. A conversation
    record trains every response in it; a `per_request` record (trained with `--mask-prompt`) its
    last one, the earlier ones being its prompt, as the model saw them."""
    problems: list[str] = []
    responses = _responses(trace.messages)
    try:
        records = training_records(trace, per_request=per_request, include_retried=True, tokenizer=tokenizer)
    except UserError as exc:
        return [str(exc)]
    for number, record in enumerate(records, 1):
        chat, tools = record["messages"], record.get("tools")
        whole = list(tokenizer.apply_chat_template(chat, tools=tools, return_dict=False))
        positions = list(enumerate(_assistant_positions(chat)))
        for turn, position in positions[-1:] if per_request else positions:
            ours = render_prompt(
                tokenizer, trace.messages[: responses[turn]], trace.tools, instructions=trace.instructions
            )
            alone = list(
                tokenizer.apply_chat_template(
                    chat[:position], tools=tools, add_generation_prompt=True, return_dict=False
                )
            )
            where = f"record {number}, response {turn + 1}"
            if alone != ours:
                problems.append(f"{where}: the template renders the prompt {_first_difference(alone, ours)}")
            elif whole[: len(ours)] != ours:
                problems.append(f"{where}: the record's tokens {_first_difference(whole, ours)}")
    return problems


def _first_difference(theirs: list[int], ours: list[int]) -> str:
    at = next((i for i, (a, b) in enumerate(zip(theirs, ours, strict=False)) if a != b), None)
    if at is None:
        return f"differently: {len(theirs)} tokens where MLXModel rendered {len(ours)}"
    return (
        f"differently from token {at} of {len(ours)} that MLXModel rendered (ids {theirs[at]} vs {ours[at]})"
    )


@dataclass(frozen=True)
class ExportSummary:
    """What `export_traces` read and wrote."""

    traces: int
    """Traces given."""
    exported: int
    """Traces whose records were written (after `only_passed` and the round-trip check)."""
    train_path: Path
    train_records: int
    valid_path: Path | None
    valid_records: int
    skipped: list[str] = field(default_factory=list[str])
    """One line per trace left out, and why."""
    checked: bool = False
    """Whether every written record passed the round-trip check against a tokenizer."""
    dropped: list[DroppedStep] = field(default_factory=list[DroppedStep])
    """Every response of the traces read for records (passed ones, with `only_passed`, that the
    round trip kept) that no record trains, and why. Only per-response records drop responses."""

    def dropped_counts(self) -> dict[DropReason, int]:
        """How many responses were dropped for each reason, in `DropReason`'s order (reasons that
        dropped none are absent)."""
        counts = {
            reason: sum(step.reason == reason for step in self.dropped) for reason in get_args(DropReason)
        }
        return {reason: count for reason, count in counts.items() if count}


def export_traces(
    traces: Sequence[Trace],
    out: Path,
    *,
    only_passed: bool = False,
    split: float | None = None,
    per_request: bool = False,
    clean_steps: bool = False,
    tokenizer: ChatTokenizer | None = None,
    seed: int = 0,
) -> ExportSummary:
    """Write the traces' training records to `out` (JSON lines), ready for `mlx_lm.lora --data`.

    `only_passed` keeps the traces whose verdict is a pass. With `split` (a share between 0 and 1),
    that share of the traces, shuffled with `seed`, goes to `out` and the rest to `valid.jsonl`
    beside it (whole traces, so no conversation is on both sides; at least one on each side
    when there are two or more). Traces of the same eval case (`metadata["case"]`: its repeats,
    its configurations) go to the same side, so validation never sees a prompt trained on. With
    `tokenizer`, a trace whose records fail the round-trip check (`round_trip_problems`) is left
    out and listed in `skipped`. `per_request` and `clean_steps` are `training_records`'; every
    response they leave out is listed in the summary's `dropped`. Raises `UserError` for a bad
    `split` or an `out` named valid.jsonl while splitting.
    """
    if split is not None and not 0 < split <= 1:
        raise UserError(f"split must be above 0 and at most 1, not {split}")
    valid_path = out.with_name("valid.jsonl") if split is not None else None
    if valid_path is not None and out.name == valid_path.name:
        raise UserError(f"{out}: the validation records go to valid.jsonl beside --out; name --out otherwise")
    per_request = per_request or clean_steps
    skipped: list[str] = []
    dropped: list[DroppedStep] = []
    kept: list[list[Record]] = []
    groups: list[str] = []  # each kept trace's case, which decides its side of the split
    for trace in traces:
        if only_passed and trace.passed is not True:
            continue
        if tokenizer is not None and (
            problems := round_trip_problems(trace, tokenizer, per_request=per_request)
        ):
            skipped.append(f"{trace.name}: {problems[0]}")
            continue
        records = training_records(
            trace, per_request=per_request, clean_steps=clean_steps, tokenizer=tokenizer
        )
        if per_request:
            reasons = _drop_reasons(trace.messages, clean_steps=clean_steps)
            dropped.extend(
                DroppedStep(trace.name, number, reason)
                for number, reason in enumerate(reasons, 1)
                if reason is not None
            )
        if not records:
            left = "every response dropped" if _responses(trace.messages) else "no model response to learn"
            skipped.append(f"{trace.name}: {left}")
            continue
        kept.append(records)
        case = trace.metadata.get("case")
        groups.append(f"case:{case}" if isinstance(case, str) else f"trace:{trace.name}:{len(kept)}")
    train, valid = kept, []
    if split is not None and split < 1:
        members: dict[str, list[list[Record]]] = {}
        for records, group in zip(kept, groups, strict=True):
            members.setdefault(group, []).append(records)
        order = list(members)
        random.Random(seed).shuffle(order)
        cut = round(len(order) * split)
        if len(order) >= 2:
            cut = min(max(cut, 1), len(order) - 1)
        train = [records for group in order[:cut] for records in members[group]]
        valid = [records for group in order[cut:] for records in members[group]]
    train_count = _write(out, train)
    valid_count = _write(valid_path, valid) if valid_path is not None else 0
    return ExportSummary(
        traces=len(traces),
        exported=len(kept),
        train_path=out,
        train_records=train_count,
        valid_path=valid_path,
        valid_records=valid_count,
        skipped=skipped,
        checked=tokenizer is not None,
        dropped=dropped,
    )


def _write(path: Path, groups: list[list[Record]]) -> int:
    lines = [json.dumps(record, ensure_ascii=False) for records in groups for record in records]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)
