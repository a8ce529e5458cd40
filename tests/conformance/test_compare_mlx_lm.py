"""benchmarks/parsers_vs_mlx_lm.py's emulation of `mlx_lm.server` agrees with the server's own handler.

Each hand-written output is fed, a few characters per step as tokens would be, through mlx-lm's
real `APIHandler.handle_completion` (non-streaming and streaming), with a response generator that
replays the text instead of running a model; what the handler writes is compared with
`server_reply`, the benchmark's whole-text emulation. No model runs here: this checks the
emulation of the server's splitting and formatting, not MLX generation.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "parsers_vs_mlx_lm.py"
_spec = importlib.util.spec_from_file_location("parsers_vs_mlx_lm", BENCHMARK)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["parsers_vs_mlx_lm"] = bench  # dataclasses look their module up while the body runs
_spec.loader.exec_module(bench)

from mlx_lm.generate import make_text_state_machine  # noqa: E402
from mlx_lm.server import APIHandler  # noqa: E402

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]
CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'

# The request settings `handle_completion` reads; replayed generation ignores their values.
REQUEST_SETTINGS = (
    "requested_model",
    "requested_draft_model",
    "adapter",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "xtc_probability",
    "xtc_threshold",
    "logit_bias",
    "repetition_penalty",
    "repetition_context_size",
    "presence_penalty",
    "presence_context_size",
    "frequency_penalty",
    "frequency_context_size",
    "max_tokens",
    "num_draft_tokens",
    "seed",
    "chat_template_kwargs",
    "stream_options",
)

# (template, text the model generated, how generation ended, what the handler must send)
CASES = [
    pytest.param(
        "qwen3",
        f"<think>plan</think>Sure.\n<tool_call>\n{CALL}\n</tool_call>",
        "stop",
        {"content": "Sure.\n", "reasoning": "plan", "calls": [("get_weather", {"city": "Paris"})]},
        id="think-text-call",
    ),
    pytest.param(
        "qwen3",
        f'<tool_call>\n{{"name": "get_weather", "arguments": {{"city": }}\n</tool_call>\n<tool_call>\n{CALL}\n</tool_call>',
        "stop",
        {"content": "\n", "reasoning": None, "calls": [("get_weather", {"city": "Paris"})]},
        id="malformed-call-dropped",
    ),
    pytest.param(
        "qwen3",
        f"Done.\n<tool_call>\n{CALL}\n",
        "length",
        {"content": "Done.\n", "reasoning": None, "calls": [("get_weather", {"city": "Paris"})]},
        id="unclosed-call-at-length",
    ),
    pytest.param(
        "qwen3",
        "The tag starts with <tool",
        "stop",
        {"content": "The tag starts with ", "reasoning": None, "calls": []},
        id="held-back-prefix-discarded",
    ),
    pytest.param(
        "mistral",
        "[TOOL_CALLS]get_time[ARGS]{} Done.",
        "stop",
        {"content": None, "reasoning": None, "calls": [("get_time", {})]},
        id="mistral-text-after-call",
    ),
]


def _handler_reply(template_name: str, text: str, finish: str, stream: bool) -> dict[str, Any]:
    """What mlx-lm's `handle_completion` writes for `text`, fed 3 characters per token."""
    template = bench.TEMPLATES[template_name]
    module = bench._parser_module(template)
    tokenizer = bench._Tokenizer(
        think_start=template.think[0] if template.think else None,
        think_end=template.think[1] if template.think else None,
        tool_call_start=module.tool_call_start,
        tool_call_end=module.tool_call_end,
        structural_markers=template.structural_markers,
    )
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    steps = [SimpleNamespace(text=p, token=0, finish_reason=None, logprob=0.0, top_tokens=()) for p in pieces]
    if finish == "stop":
        steps.append(
            SimpleNamespace(text=template.end_of_turn[0], token=0, finish_reason="stop", logprob=0.0)
        )
    else:
        steps[-1].finish_reason = "length"
    ctx = SimpleNamespace(
        tool_parser=module.parse_tool_call,
        text_sm=make_text_state_machine(tokenizer),
        initial_state="normal",
        prompt=[0],
        prompt_cache_count=0,
        stop=lambda: None,
    )

    handler = object.__new__(APIHandler)
    handler.__dict__.update(dict.fromkeys(REQUEST_SETTINGS), logprobs=False, top_logprobs=-1, stream=stream)
    handler.__dict__.update(request_id="x", system_fingerprint="x", object_type="chat.completion", created=0)
    handler.response_generator = SimpleNamespace(generate=lambda *a, **k: (ctx, iter(steps)))
    handler.wfile = io.BytesIO()
    handler._set_completion_headers = handler._set_stream_headers = lambda *a: None
    handler.send_header = lambda *a: None
    handler.end_headers = lambda: None
    handler.handle_completion(SimpleNamespace(tools=TOOLS), [])

    body = handler.wfile.getvalue().decode()
    if not stream:
        message = json.loads(body)["choices"][0]["message"]
        return {**message, "tool_calls": message.get("tool_calls", [])}
    content, reasoning, calls = "", "", []
    for line in body.splitlines():
        if line.startswith("data: {"):
            delta = json.loads(line[len("data: ") :])["choices"][0]["delta"]
            content += delta.get("content", "")
            reasoning += delta.get("reasoning", "")
            calls += delta.get("tool_calls", [])
    return {"content": content or None, "reasoning": reasoning or None, "tool_calls": calls}


def _calls(tool_calls: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in tool_calls]


@pytest.mark.parametrize("template_name, text, finish, expected", CASES)
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_emulation_matches_handler(
    template_name: str, text: str, finish: str, expected: dict[str, Any], stream: bool
) -> None:
    handler = _handler_reply(template_name, text, finish, stream)
    emulated = bench.server_reply(
        text + (bench.TEMPLATES[template_name].end_of_turn[0] if finish == "stop" else ""),
        bench.TEMPLATES[template_name],
        TOOLS,
        in_reasoning=False,
        truncated=finish == "length",
    )
    assert emulated.crash is None
    got = {
        "content": handler["content"],
        "reasoning": handler.get("reasoning"),
        "calls": _calls(handler["tool_calls"]),
    }
    assert got == expected
    assert (emulated.content, emulated.reasoning, _calls(emulated.tool_calls)) == (
        expected["content"],
        expected["reasoning"],
        expected["calls"],
    )


def test_an_escaping_parser_error_fails_the_request_in_both() -> None:
    """A call without "arguments" raises KeyError in `ToolCallFormatter`: the handler lets it out."""
    text = '<tool_call>\n{"name": "get_weather", "parameters": {"city": "Paris"}}\n</tool_call>'
    with pytest.raises(KeyError):
        _handler_reply("qwen2.5", text, "stop", stream=False)
    reply = bench.server_reply(text, bench.TEMPLATES["qwen2.5"], TOOLS, in_reasoning=False, truncated=False)
    assert reply.crash is not None and reply.crash.startswith("KeyError")
