"""The conformance suite: load the cases, run each through `parse` and `StreamParser`, score.

A case passes only when every way of feeding it gives the expected result:

- `parse(text, format="auto", ...)`;
- `StreamParser(format="auto", ...)` fed the whole text at once, in six seeded random
  chunkings and one character at a time, then `close(truncated=...)`. For the stream, the
  result is rebuilt from the events alone (TextDelta / ThinkingDelta / ToolCallDelta), and
  `result()` must agree with it.

Scoring (see docs/conformance.md):

- content and reasoning compare exactly (whitespace-only counts as None);
- calls compare in order by name and arguments, with JSON types: a string is never a number,
  a bool is never a number, but `3` equals `3.0` (JSON has one number type); an `id` is
  compared only when the case gives one;
- errors compare as a multiset of kinds (`malformed_call`, `truncated_call`, `unknown_tool`),
  unless the case sets `errors` to null (kind not scored);
- leakage: a marker (`<|`, `<tool_call`, `[TOOL_CALLS]`, `<function=`, `｜`, ...) appearing
  in content, reasoning, names or arguments more often than in the expected value.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CASES_DIR = Path(__file__).parent / "cases"
# More seeds find more chunking bugs; CONFORMANCE_SEEDS=50 for a deep run.
SEEDS = tuple(range(1, int(os.environ.get("CONFORMANCE_SEEDS", "6")) + 1))
CASE_TIMEOUT_S = 10  # plus one second per 100 kB of text: linear work, generous on a loaded machine

MARKERS = (
    "<|",
    "|>",
    "<tool_call",
    "</tool_call",
    "<tool_call|>",
    "[TOOL_CALLS]",
    "[ARGS]",
    "[THINK]",
    "[/THINK]",
    "<function=",
    "</function>",
    "<parameter=",
    "</parameter>",
    "<arg_key>",
    "<arg_value>",
    "<think>",
    "</think>",
    "<|channel>",
    "<channel|>",
    "<turn|>",
    "｜",
    "▁",
    "```",
)


@dataclass(frozen=True)
class Observed:
    """What one run produced, reduced to what is scored."""

    content: str | None
    reasoning: str | None
    calls: list[dict[str, Any]]
    errors: list[str]


@dataclass
class CaseResult:
    case: dict[str, Any]
    problems: dict[str, list[str]] = field(default_factory=dict)  # mode -> problems
    observed: dict[str, Observed | str] = field(default_factory=dict)  # mode -> observation or crash
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


def load_cases(families: set[str] | None = None) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in sorted(CASES_DIR.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                case = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path.name}:{n}: {e}") from e
            if families is None or case["family"] in families:
                cases.append(_expand(case))
    ids = Counter(c["id"] for c in cases)
    dupes = [i for i, k in ids.items() if k > 1]
    if dupes:
        raise ValueError(f"duplicate case ids: {dupes}")
    return cases


def _expand(case: dict[str, Any]) -> dict[str, Any]:
    """Apply `expand` ([placeholder, unit, times] triples): big inputs, small files."""
    rules = case.get("expand")
    if not rules:
        return case

    def sub(value: Any) -> Any:
        if isinstance(value, str):
            for placeholder, unit, times in rules:
                value = value.replace(placeholder, unit * times)
            return value
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        return value

    out = dict(case)
    out["text"] = sub(case["text"])
    out["expected"] = sub(case["expected"])
    return out


# --- comparing ------------------------------------------------------------------------------


def json_equal(a: Any, b: Any) -> bool:
    """Equality with JSON types: bool, number, string, null, array, object never mix."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return False


def _blank_none(text: str | None) -> str | None:
    return None if text is None or text.strip() == "" else text


def _leaks(got: str | None, expected: str | None) -> list[str]:
    got, expected = got or "", expected or ""
    return [m for m in MARKERS if got.count(m) > expected.count(m)]


def compare(expected: dict[str, Any], obs: Observed) -> list[str]:
    problems: list[str] = []
    if obs.content != expected["content"]:
        problems.append("content")
    if obs.reasoning != expected["reasoning"]:
        problems.append("reasoning")
    exp_calls = expected["calls"]
    if len(obs.calls) != len(exp_calls):
        problems.append("calls")
    else:
        for got, exp in zip(obs.calls, exp_calls, strict=True):
            if got["name"] != exp["name"]:
                problems.append("calls")
                break
            if not json_equal(got["arguments"], exp["arguments"]):
                problems.append("arguments" if _same_shape(got["arguments"], exp["arguments"]) else "calls")
                break
            if "id" in exp and got.get("id") != exp["id"]:
                problems.append("ids")
                break
    if expected["errors"] is not None and Counter(obs.errors) != Counter(expected["errors"]):
        problems.append("errors")
    leaked = _leaks(obs.content, expected["content"]) + _leaks(obs.reasoning, expected["reasoning"])
    exp_args = json.dumps([c["arguments"] for c in exp_calls], ensure_ascii=False)
    got_args = json.dumps([c["arguments"] for c in obs.calls], ensure_ascii=False)
    leaked += _leaks(got_args, exp_args)
    leaked += [m for c in obs.calls for m in MARKERS if m in c["name"]]
    if leaked:
        problems.append("leak")
    return problems


def _same_shape(a: Any, b: Any) -> bool:
    """Same keys, different values: an argument-typing problem rather than a wrong call."""
    return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()


# --- running --------------------------------------------------------------------------------


def observe_result(result: Any) -> Observed:
    return Observed(
        content=_blank_none(result.content),
        reasoning=_blank_none(result.reasoning),
        calls=[_call_dict(c.name, c.arguments, c.id) for c in result.calls],
        errors=[e.kind for e in result.errors],
    )


def _call_dict(name: str, arguments: Any, call_id: str | None) -> dict[str, Any]:
    return {"name": name, "arguments": arguments, "id": call_id}


def observe_events(events: list[Any]) -> tuple[Observed, list[str]]:
    """Rebuild a result from stream events alone; also check the event invariants."""
    from pydantic_mlx.parsers import TextDelta, ThinkingDelta, ToolCallDelta, UnreadCall

    content, reasoning, problems = [], [], []
    names: dict[int, str] = {}
    ids: dict[int, str | None] = {}
    args: dict[int, list[str]] = {}
    for ev in events:
        if isinstance(ev, TextDelta):
            content.append(ev.content)
        elif isinstance(ev, ThinkingDelta):
            reasoning.append(ev.content)
        elif isinstance(ev, ToolCallDelta):
            if ev.index not in names:
                if ev.index != len(names):
                    problems.append(f"events: call index {ev.index} out of order")
                if not ev.name:
                    problems.append(f"events: first delta of call {ev.index} has no name")
                names[ev.index] = ev.name or ""
                ids[ev.index] = ev.id
                args[ev.index] = []
            elif ev.name is not None and ev.name != names[ev.index]:
                problems.append(f"events: call {ev.index} renamed")
            args[ev.index].append(ev.args_delta)
        elif isinstance(ev, UnreadCall):
            continue  # a call the parser could not read: neither content nor a call
        else:
            problems.append(f"events: unknown event {type(ev).__name__}")
    calls = []
    for i in sorted(names):
        text = "".join(args[i])
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            problems.append(f"events: call {i} args_delta do not join to JSON: {text[:80]!r}")
            parsed = None
        if not isinstance(parsed, dict):
            problems.append(f"events: call {i} arguments are not a JSON object")
        calls.append(_call_dict(names[i], parsed, ids[i]))
    obs = Observed(_blank_none("".join(content)), _blank_none("".join(reasoning)), calls, [])
    return obs, problems


def chunkings(case: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """The ways a case is streamed; a case may limit them with `modes` (its huge inputs)."""
    modes = case.get("modes")
    for mode, pieces in _all_chunkings(case):
        if modes is None or mode in modes:
            yield mode, pieces


def _all_chunkings(case: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    text = case["text"]
    yield "stream:whole", [text]
    for seed in SEEDS:
        rng = random.Random(zlib.crc32(case["id"].encode()) * 31 + seed)
        pieces, i = [], 0
        while i < len(text):
            n = rng.choice((1, 1, 2, 3, 4, 7, 11, 19, 64))
            pieces.append(text[i : i + n])
            i += n
        yield f"stream:random{seed}", pieces
    yield "stream:1char", list(text)


class _Timeout(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise _Timeout


def run_case(case: dict[str, Any]) -> CaseResult:
    from pydantic_mlx.parsers import StreamParser, parse

    res = CaseResult(case)
    exp = case["expected"]
    kwargs = {"format": "auto", "tools": case["tools"], "in_reasoning": case["in_reasoning"]}
    start = time.perf_counter()
    old = signal.signal(signal.SIGALRM, _alarm)
    # The budget grows with the input and with the number of runs (CONFORMANCE_SEEDS).
    runs = 3 + len(SEEDS)
    timeout = (CASE_TIMEOUT_S + len(case["text"]) // 100_000) * max(1, runs // 9)
    signal.alarm(timeout)
    try:
        try:
            parsed = observe_result(parse(case["text"], truncated=case["truncated"], **kwargs))
            res.observed["parse"] = parsed
            problems = compare(exp, parsed)
            if problems:
                res.problems["parse"] = problems
        except _Timeout:
            raise
        except Exception as e:  # any crash is a failure of the case, never of the suite
            res.observed["parse"] = f"crash: {type(e).__name__}: {e}"
            res.problems["parse"] = ["crash"]
            parsed = None
        for mode, pieces in chunkings(case):
            try:
                p = StreamParser(**kwargs)
                events = []
                for piece in pieces:
                    events += p.feed(piece)
                events += p.close(truncated=case["truncated"])
                obs, problems = observe_events(events)
                final = observe_result(p.result())
                obs = Observed(obs.content, obs.reasoning, obs.calls, final.errors)
                res.observed[mode] = obs
                problems = compare(exp, obs) + problems
                if (final.content, final.reasoning) != (obs.content, obs.reasoning) or not _same_calls(
                    final.calls, obs.calls
                ):
                    problems.append("stream: result() disagrees with the events")
                if parsed is not None and final != parsed and not compare(exp, parsed):
                    problems.append("stream: result() differs from parse()")
                if problems:
                    res.problems[mode] = problems
            except _Timeout:
                raise
            except Exception as e:
                res.observed[mode] = f"crash: {type(e).__name__}: {e}"
                res.problems[mode] = ["crash"]
    except _Timeout:
        res.problems["timeout"] = [f"over {timeout}s"]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    res.seconds = time.perf_counter() - start
    return res


def _same_calls(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    return len(a) == len(b) and all(
        x["name"] == y["name"] and json_equal(x["arguments"], y["arguments"]) and x["id"] == y["id"]
        for x, y in zip(a, b, strict=True)
    )


def run_all(families: set[str] | None = None) -> list[CaseResult]:
    return [run_case(c) for c in load_cases(families)]


# --- reporting ------------------------------------------------------------------------------


def score_table(results: list[CaseResult]) -> str:
    fams: dict[str, list[CaseResult]] = {}
    for r in results:
        fams.setdefault(r.case["family"], []).append(r)
    lines = [f"{'family':<14}{'cases':>7}{'passed':>8}{'rate':>9}   failing checks"]
    for fam in sorted(fams):
        rs = fams[fam]
        ok = sum(r.passed for r in rs)
        kinds = Counter(p.split(":")[0] for r in rs for ps in r.problems.values() for p in set(ps))
        detail = ", ".join(f"{k} {n}" for k, n in kinds.most_common())
        lines.append(f"{fam:<14}{len(rs):>7}{ok:>8}{ok / len(rs):>9.1%}   {detail}")
    ok = sum(r.passed for r in results)
    total = len(results) or 1
    lines.append(f"{'TOTAL':<14}{len(results):>7}{ok:>8}{ok / total:>9.1%}")
    return "\n".join(lines)


def pass_rate(results: list[CaseResult]) -> float:
    return sum(r.passed for r in results) / (len(results) or 1)


def describe_failure(r: CaseResult, limit: int = 400) -> str:
    c = r.case
    modes = ", ".join(f"{m}: {'/'.join(dict.fromkeys(ps))}" for m, ps in r.problems.items())
    got = r.observed.get("parse")
    if "parse" not in r.problems:
        got = next((r.observed[m] for m in r.problems if m in r.observed), got)
    return "\n".join(
        [
            f"- {c['id']}  [{modes}]",
            f"  input ({'truncated, ' if c['truncated'] else ''}{'in_reasoning, ' if c['in_reasoning'] else ''}"
            f"tools={'None' if c['tools'] is None else [t['function']['name'] for t in c['tools']]}): "
            f"{_clip(json.dumps(c['text'], ensure_ascii=False), limit)}",
            f"  expected: {_clip(json.dumps(c['expected'], ensure_ascii=False), limit)}",
            f"  got:      {_clip(_show(got), limit)}",
        ]
    )


def _show(obs: Observed | str | None) -> str:
    if obs is None or isinstance(obs, str):
        return str(obs)
    return json.dumps(
        {"content": obs.content, "reasoning": obs.reasoning, "calls": obs.calls, "errors": obs.errors},
        ensure_ascii=False,
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 20] + f"... (+{len(text) - limit + 20} chars)"
