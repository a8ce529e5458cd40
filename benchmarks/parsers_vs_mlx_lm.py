"""Tool-call parsing, side by side: pydantic-mlx's `parse` vs what `mlx_lm.server` hands a client.

Every conformance case (tests/conformance/cases) is run two ways:

- ours: the conformance suite's own `run_case` (`parse(format="auto")`, then the stream fed
  whole, in random chunkings and one character at a time: every run must be right);
- mlx-lm: the text as `mlx_lm.server` (mlx-lm 0.32.2) would turn it into an OpenAI chat
  completion, scored by the client's view of it (content, `reasoning`, tool calls with their
  `arguments` JSON decoded).

Both are scored by the suite's own `compare`. mlx-lm's code does all the work that it owns: the
text state machine is mlx-lm's `make_text_state_machine` (mlx_lm/generate.py), built from the
same attributes a loaded tokenizer has (`think_start` / `think_end` from the vocab, the tool
parser module's `tool_call_start` / `tool_call_end`, XTML structural markers), and the calls are
parsed by mlx-lm's own `ToolCallFormatter` (mlx_lm/server.py) around the tool parser module the
server would pick for the template (`_infer_tool_parser`, mlx_lm/tokenizer_utils.py).

What is emulated, following `APIHandler.handle_completion` in mlx_lm/server.py (non-streaming):

- the initial state is "reasoning" when the prompt ends inside a think block (the case's
  `in_reasoning`) and the tokenizer has think tokens, else "normal" (`_tokenize`);
- the generated text is fed to `TextStateMachine.split`; text in state "reasoning" becomes
  `reasoning`, in "normal" becomes `content`, in "tool" is collected per call, and a call is
  closed when the state returns to "normal" or when generation ends inside it;
- the end of generation: an end-of-turn token at the very end of the case's text is the stop
  token, which the server never decodes; the server then drops the state machine's held-back
  buffer (`TextStateMachine.discard`). A case with `truncated=true` ends by length instead:
  the buffer is flushed into the current state (`TextStateMachine.flush`). A case with neither
  ended on an end-of-turn token the text leaves out, so it is a stop too;
- every collected call text goes through `ToolCallFormatter`: a `ValueError` /
  `JSONDecodeError` from the parser drops that call with a log warning (its text is lost: it is
  neither content nor a call); any other exception escapes the handler and the request fails.

What is not emulated, and where this could be wrong:

- tokenization: the state machine matches decoded text, so feeding the whole text at once
  equals feeding it token by token (checked in tests/conformance/test_compare_mlx_lm.py), but a
  model whose detokenizer hides a special token would not show that marker to the server at all;
- end-of-turn tokens are listed per template below from the models' configs as we know them
  (Gemma 4's `<|tool_response>` is assumed to be a stop token); only a token at the very end of
  the text counts, since mid-text `</s>` in the cases is HTML, not Mistral's end of sentence;
- streaming: with `stream=true` the server sends the same text and calls in more pieces;
  client-side reassembly gives the same reply on the test's cases, and is assumed to on all;
- errors: the server has no way to tell a client a call was malformed or truncated, so every
  case expecting an error fails mlx-lm on that check alone; the "lenient" column does not
  score error kinds (and ignores leading / trailing whitespace in content and reasoning), to
  show how much of the gap is only that.

Shapes mlx-lm does not claim are reported in their own tables, not as its failures: calls
written without the template parser's `tool_call_start` marker (fences, bare JSON, Qwen3-Coder's
`<function=` with no `<tool_call>`), and templates mlx-lm has no tool parser for (Llama 3.x JSON
and pythonic, Llama 4, DeepSeek, gpt-oss harmony), whose calls its server sends as content. The
small-model habits (fences, bare JSON, "parameters") go through the path the server takes for a
Qwen2.5 template (json_tools, no think tokens).

Run: python benchmarks/parsers_vs_mlx_lm.py [-f FAMILY ...] [-v]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "conformance"))

import _conformance as suite
from mlx_lm.generate import TextStateMachine, make_text_state_machine
from mlx_lm.server import ToolCallFormatter

CASE_TIMEOUT_S = 20
QWEN_EOS = ("<|im_end|>", "<|endoftext|>")
XTML_STRUCTURAL_MARKERS = ("<|open|>response<|sep|>", "<|close|>response<|sep|>", "<|close|>message<|sep|>")


@dataclass(frozen=True)
class Template:
    """What `mlx_lm.server` knows about one model family once its tokenizer is loaded."""

    name: str
    tool_parser: str | None  # module in mlx_lm.tool_parsers, None: no parser for this template
    think: tuple[str, str] | None  # think_start, think_end inferred from the vocab
    end_of_turn: tuple[str, ...]
    structural_markers: tuple[str, ...] = ()


TEMPLATES = {
    t.name: t
    for t in (
        Template("qwen3", "json_tools", ("<think>", "</think>"), QWEN_EOS),
        Template("qwen2.5", "json_tools", None, QWEN_EOS),
        Template("qwen3_coder", "qwen3_coder", ("<think>", "</think>"), QWEN_EOS),
        Template("glm47", "glm47", ("<think>", "</think>"), ("<|endoftext|>", "<|user|>", "<|observation|>")),
        Template("kimi_k2", "kimi_k2", ("<think>", "</think>"), ("<|im_end|>", "[EOS]")),
        Template(
            "kimi_k3",
            "kimi_k3",
            ("<|open|>think<|sep|>", "<|close|>think<|sep|>"),
            ("<|end_of_msg|>",),
            XTML_STRUCTURAL_MARKERS,
        ),
        Template(
            "gemma4", "gemma4", ("<|channel>thought", "<channel|>"), ("<turn|>", "<eos>", "<|tool_response>")
        ),
        Template("mistral", "mistral", None, ("</s>",)),
        # No tool parser: `_infer_tool_parser` matches none of these templates.
        Template("llama3", None, None, ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")),
        Template("llama4", None, None, ("<|eot|>", "<|eom|>", "<|end_of_text|>")),
        Template("deepseek", None, ("<think>", "</think>"), ("<｜end▁of▁sentence｜>",)),
        Template("harmony", None, None, ("<|return|>", "<|call|>")),
    )
}

FAMILY_TEMPLATES = {
    "hermes": "qwen3",
    "qwen3_coder": "qwen3_coder",
    "glm": "glm47",
    "kimi_k2": "kimi_k2",
    "gemma4": "gemma4",
    "mistral": "mistral",
    "habits": "qwen2.5",
    "plain": "qwen3",
    "adversarial": "qwen3",
    "llama3_json": "llama3",
    "deepseek": "deepseek",
    "harmony": "harmony",
}


def template_for(case: dict[str, Any]) -> Template:
    """The template a model that wrote this case would have (by family, then by case id)."""
    family, _, name = case["id"].partition("/")
    if family == "composite":
        family = name.rsplit("_", 1)[0]
    if family in ("kimi_k2", "reasoning") and name.startswith("k3_"):
        return TEMPLATES["kimi_k3"]
    if family == "reasoning":
        by_prefix = {"magistral": "mistral", "gemma4": "gemma4"}
        family = next((f for prefix, f in by_prefix.items() if name.startswith(prefix)), "hermes")
    if family == "pythonic":
        return TEMPLATES["llama4" if "llama4" in name else "llama3"]
    return TEMPLATES[FAMILY_TEMPLATES[family]]


def _parser_module(template: Template) -> Any:
    """The `mlx_lm.tool_parsers` module the server loads for this template, if any."""
    if template.tool_parser is None:
        return None
    return importlib.import_module(f"mlx_lm.tool_parsers.{template.tool_parser}")


@dataclass
class _Tokenizer:
    """The attributes of mlx-lm's `TokenizerWrapper` that `make_text_state_machine` reads."""

    think_start: str | None
    think_end: str | None
    tool_call_start: str | None
    tool_call_end: str | None
    structural_markers: tuple[str, ...]
    response_transitions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def has_thinking(self) -> bool:
        return self.think_start is not None

    @property
    def has_tool_calling(self) -> bool:
        return self.tool_call_start is not None


@dataclass
class ServerReply:
    """The message `mlx_lm.server` would send, plus what it did on the way."""

    content: str | None
    reasoning: str | None
    tool_calls: list[dict[str, Any]]  # OpenAI shape: {"id", "type", "function": {"name", "arguments"}}
    dropped: list[str]  # call texts the parser rejected: logged by the server, sent to nobody
    crash: str | None = None  # an exception that escaped the handler: the request fails


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def server_reply(
    text: str, template: Template, tools: list[dict[str, Any]] | None, in_reasoning: bool, truncated: bool
) -> ServerReply:
    """Run `text` through mlx-lm's text state machine and tool-call formatter as the server does."""
    module = _parser_module(template)
    tokenizer = _Tokenizer(
        think_start=template.think[0] if template.think else None,
        think_end=template.think[1] if template.think else None,
        tool_call_start=module.tool_call_start if module else None,
        tool_call_end=module.tool_call_end if module else None,
        structural_markers=template.structural_markers,
    )
    machine = make_text_state_machine(tokenizer)
    initial = "reasoning" if in_reasoning and tokenizer.has_thinking else "normal"
    state = machine.make_state(initial)

    stripped = text.rstrip()
    stop_token = next((t for t in template.end_of_turn if stripped.endswith(t)), None)
    generated = stripped[: -len(stop_token)] if stop_token else text
    state, segments = TextStateMachine.split(state, generated)
    if truncated and stop_token is None:
        state, flushed, current = TextStateMachine.flush(state)
        segments.append((current, flushed))
    else:
        state, current = TextStateMachine.discard(state)
        segments.append((current, ""))

    content, reasoning, tool_text, tool_texts = "", "", "", []
    previous = initial
    for current, clean in segments:
        if current == "reasoning":
            reasoning += clean
        elif current == "tool":
            tool_text += clean
        elif current == "normal":
            if previous == "tool":
                tool_texts.append(tool_text)
                tool_text = ""
            content += clean
        previous = current
    if previous == "tool" and tool_text:
        tool_texts.append(tool_text)

    warnings = _Warnings()
    root = logging.getLogger()
    root.addHandler(warnings)
    try:
        calls = ToolCallFormatter(module.parse_tool_call if module else None, tools)(tool_texts)
        crash = None
    except Exception as e:  # the server lets these escape: the client gets no completion
        calls, crash = [], f"{type(e).__name__}: {e}"
    finally:
        root.removeHandler(warnings)
    return ServerReply(content or None, reasoning or None, calls, warnings.messages, crash)


def client_view(reply: ServerReply) -> suite.Observed:
    """What an OpenAI client reads: `arguments` is JSON text, decoded here."""
    calls = []
    for call in reply.tool_calls:
        function = call["function"]
        try:
            arguments = json.loads(function["arguments"])
        except (KeyError, TypeError, json.JSONDecodeError):
            arguments = None
        calls.append({"name": function.get("name"), "arguments": arguments, "id": call.get("id")})
    content = None if reply.content is None or not reply.content.strip() else reply.content
    reasoning = None if reply.reasoning is None or not reply.reasoning.strip() else reply.reasoning
    return suite.Observed(content, reasoning, calls, errors=[])


@dataclass
class Outcome:
    case: dict[str, Any]
    template: Template
    ours: bool
    mlx_lm: bool
    mlx_lm_lenient: bool  # error kinds not scored, content and reasoning stripped
    failure: str | None  # the main way mlx-lm failed
    reply: ServerReply | str


FAILURE_KINDS = """How mlx-lm failed (one kind per case, the first that applies):
  crash                  an exception other than ValueError escaped the handler: the request fails
  call without a name    a tool call the client cannot dispatch
  call dropped           the parser raised ValueError: the call is logged and sent to nobody
  call left in content   an expected call reached the client as text
  invented call          more calls than expected (a truncated or drafted call made into a call)
  wrong name/args        the calls differ in name, id or argument values and types
  leaked markers         markup (<think>, [THINK], <tool_call>, ...) in content, names or arguments
  bad call text dropped  the parser rejected a malformed or truncated call: the server logs it and
                         drops its text, which the case keeps as content (with an error kind)
  whitespace only        content or reasoning differ only in leading / trailing whitespace
  text lost or changed   content or reasoning differ otherwise
  no error reported      right content and calls, but the case expects an error kind
"""


def failure_kind(case: dict[str, Any], reply: ServerReply, obs: suite.Observed, problems: list[str]) -> str:
    """The one phrase that says how mlx-lm's reply went wrong, worst first."""
    exp = case["expected"]
    if reply.crash:
        return "crash"
    if any(not isinstance(c["name"], str) for c in obs.calls):
        return "call without a name"
    if len(obs.calls) < len(exp["calls"]):
        return "call dropped" if reply.dropped else "call left in content"
    if len(obs.calls) > len(exp["calls"]):
        return "invented call"
    if {"calls", "arguments", "ids"} & set(problems):
        return "wrong name/args"
    if "leak" in problems:
        return "leaked markers"
    if "content" in problems or "reasoning" in problems:
        if reply.dropped:
            # The case keeps a malformed or truncated call's text as content; the server drops it.
            return "bad call text dropped"
        return "whitespace only" if not lenient_problems(case, obs) else "text lost or changed"
    return "no error reported"


def lenient_problems(case: dict[str, Any], obs: suite.Observed) -> list[str]:
    """`compare` without error kinds (the server cannot send them), content and reasoning stripped."""

    def same_stripped(got: str | None, expected: str | None) -> str | None:
        return expected if got and expected and got.strip() == expected.strip() else got

    exp = case["expected"]
    obs = suite.Observed(
        same_stripped(obs.content, exp["content"]),
        same_stripped(obs.reasoning, exp["reasoning"]),
        obs.calls,
        [],
    )
    return suite.compare({**exp, "errors": None}, obs)


def _alarm(_signum: int, _frame: Any) -> None:
    raise TimeoutError


def run(case: dict[str, Any]) -> Outcome:
    template = template_for(case)
    ours = suite.run_case(case).passed
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        reply = server_reply(case["text"], template, case["tools"], case["in_reasoning"], case["truncated"])
    except TimeoutError:
        return Outcome(case, template, ours, False, False, "timeout", f"over {CASE_TIMEOUT_S}s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    obs = client_view(reply)
    problems = suite.compare(case["expected"], obs)
    lenient = lenient_problems(case, obs)
    failure = failure_kind(case, reply, obs, problems) if problems else None
    return Outcome(case, template, ours, not problems, not lenient, failure, reply)


def _row_label(o: Outcome) -> str:
    family = o.case["family"]
    return f"{family} [{o.template.name}]"


def table(outcomes: list[Outcome], title: str) -> str:
    rows: dict[str, list[Outcome]] = {}
    for o in outcomes:
        rows.setdefault(_row_label(o), []).append(o)
    width = max([len(r) for r in rows] + [len("TOTAL")]) + 2
    head = f"{'family [mlx-lm template]':<{width}}{'cases':>6}{'ours':>6}{'mlx-lm':>8}{'lenient':>9}"
    head += "   mlx-lm failures"
    lines = [title, head, "-" * len(head)]

    def line(label: str, group: list[Outcome], kinds_shown: int | None = 4) -> str:
        kinds = Counter(o.failure for o in group if o.failure)
        detail = ", ".join(f"{k} {n}" for k, n in kinds.most_common(kinds_shown))
        return (
            f"{label:<{width}}{len(group):>6}{sum(o.ours for o in group):>6}"
            f"{sum(o.mlx_lm for o in group):>8}{sum(o.mlx_lm_lenient for o in group):>9}   {detail}"
        )

    for label in sorted(rows):
        lines.append(line(label, rows[label]))
    lines.append(line("TOTAL", outcomes, kinds_shown=None))
    return "\n".join(lines)


def _show(o: Outcome) -> str:
    reply = o.reply
    if isinstance(reply, str):
        got = reply
    else:
        got = json.dumps(
            {
                "content": reply.content,
                "reasoning": reply.reasoning,
                "tool_calls": [c["function"] for c in reply.tool_calls],
                "dropped": reply.dropped,
                "crash": reply.crash,
            },
            ensure_ascii=False,
        )
    text = json.dumps(o.case["text"], ensure_ascii=False)
    return f"- {o.case['id']} [{o.failure}]\n  text: {text[:300]}\n  mlx-lm: {got[:400]}"


def claims(o: Outcome) -> bool:
    """Whether mlx-lm claims the case: it has a parser for the template, and the case either
    expects no call (only content and reasoning are at stake) or holds the parser's call marker."""
    if not o.template.tool_parser:
        return False
    module = _parser_module(o.template)
    return module is not None and (
        not o.case["expected"]["calls"] or module.tool_call_start in o.case["text"]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-f", "--family", action="append", help="only these conformance families (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show every mlx-lm failure")
    args = ap.parse_args()

    start = time.perf_counter()
    outcomes = [run(c) for c in suite.load_cases(set(args.family) if args.family else None)]
    elapsed = time.perf_counter() - start

    claimed = [o for o in outcomes if claims(o)]
    unmarked = [o for o in outcomes if o.template.tool_parser and not claims(o)]
    no_parser = [o for o in outcomes if not o.template.tool_parser]

    print("Conformance cases: pydantic-mlx parse (every streaming mode too) vs mlx_lm.server's reply")
    print("(ours / mlx-lm: cases passed; lenient: mlx-lm passed when error kinds are not scored and")
    print(" content and reasoning are compared without leading and trailing whitespace;")
    print(" habits run through the Qwen2.5 template's path: json_tools, no think tokens)\n")
    for title, group in (
        (
            "Shapes mlx-lm claims: a template it has a parser for, with the call marker (or no call)",
            claimed,
        ),
        (
            "Calls without the template's call marker (fences, bare JSON, no opener): not claimed",
            unmarked,
        ),
        (
            "Templates mlx-lm has no tool parser for: not claimed, calls reach the client as content",
            no_parser,
        ),
    ):
        if group:
            print(table(group, title) + "\n")
    habits = [o for o in outcomes if o.case["family"] == "habits"]
    if habits:
        print(
            f"Small-model habits, all {len(habits)} cases: ours {sum(o.ours for o in habits)},"
            f" mlx-lm {sum(o.mlx_lm for o in habits)} (lenient {sum(o.mlx_lm_lenient for o in habits)})\n"
        )
    print(FAILURE_KINDS)
    print(f"{len(outcomes)} cases in {elapsed:.1f}s (mlx-lm {importlib.import_module('mlx_lm').__version__})")
    if args.verbose:
        print("\nmlx-lm failures:")
        for o in outcomes:
            if o.failure:
                print(_show(o))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
