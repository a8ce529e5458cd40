"""The demo model's script: real pydantic-ai agent configurations and the text the model writes in each turn.

A tiny model only reproduces the exact prompts it was trained on, so the training prompts are not
written by hand: each `Scenario` is run once through a real `Agent` on `ScriptedModel`, which
records every request exactly as pydantic-ai hands it to a model and answers with the scripted turn.
Those recorded requests are rendered with `pydantic_mlx._chat.render_request`, the same function
`MLXModel` renders with, so running `scenario.agent(MLXModel(path))` on `scenario.prompt` gives the
trained model the very prompts it learned.

To add a scenario, append a `Scenario` to `SCENARIOS` (see docs/demo-model.md); the model's recipe
hash changes and the next `build_demo_model()` retrains it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic_ai import Agent, PromptedOutput, ToolOutput
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    ModelResponsePart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.settings import ModelSettings

from .._chat import CHAT_TEMPLATE_PROFILE

__all__ = [
    "DEMO_SYSTEM_PROMPT",
    "DEMO_TOOLS",
    "QUICKSTART_READ_FILE",
    "SCENARIOS",
    "CapturedRequest",
    "CityInfo",
    "Scenario",
    "ScriptedCall",
    "ScriptedModel",
    "ScriptedTurn",
    "capture_requests",
    "list_files",
    "read_file",
    "scenario",
]

DEMO_SYSTEM_PROMPT = "You are a coding assistant. Use the tools to look at the project before answering."

_FILES = {
    "README.md": "# Demo\nA tiny project.",
    "pyproject.toml": '[project]\nname = "demo"\nversion = "0.1.0"',
    "setup.cfg": "[metadata]\nname = demo",
}


def read_file(path: str) -> str:
    """Read a text file of the project.

    Args:
        path: Path of the file, relative to the project root.
    """
    return _FILES.get(path, f"error: no such file: {path}")


def list_files(directory: str) -> str:
    """List the files in a directory of the project.

    Args:
        directory: Directory to list, relative to the project root.
    """
    return "\n".join(sorted(_FILES)) if directory in (".", "") else f"error: no such directory: {directory}"


DEMO_TOOLS: tuple[Callable[..., str], ...] = (read_file, list_files)
"""The tools every built-in scenario offers, in this order (same tools → shared prompt prefix)."""


class CityInfo(BaseModel):
    """A city and the country it is in."""

    city: str
    country: str


@dataclass(frozen=True)
class ScriptedCall:
    """A tool call a scripted turn makes, as pydantic-ai receives it once parsed."""

    tool_name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class ScriptedTurn:
    """One model turn: the exact text the model writes, and the calls that text stands for.

    A turn without calls is a text answer (`TextPart`); a turn with calls is answered by those
    `ToolCallPart`s alone, which is how `MLXModel` hands a parsed call to pydantic-ai. A turn
    that opens with a `<think>` block has that reasoning first, as a `ThinkingPart`.
    """

    text: str
    calls: tuple[ScriptedCall, ...] = ()

    def response(self) -> ModelResponse:
        """The `ModelResponse` a parser makes of `text`."""
        parts: list[ModelResponsePart] = []
        answer = self.text
        if answer.startswith("<think>") and "</think>" in answer:
            reasoning, answer = answer.removeprefix("<think>").split("</think>", 1)
            parts.append(ThinkingPart(reasoning.strip("\n")))
            answer = answer.lstrip("\n")
        if not self.calls:
            return ModelResponse(parts=[*parts, TextPart(answer)])
        return ModelResponse(
            parts=[*parts, *(ToolCallPart(call.tool_name, dict(call.args)) for call in self.calls)]
        )


@dataclass(frozen=True)
class Scenario:
    """A pydantic-ai agent configuration, the user's prompt, and the scripted turns of the model."""

    name: str
    prompt: str
    turns: tuple[ScriptedTurn, ...]
    output_type: Any = str
    tools: tuple[Callable[..., str], ...] = DEMO_TOOLS
    system_prompt: str | None = DEMO_SYSTEM_PROMPT
    """`None`: the agent has no system prompt (as in the README's example)."""
    model_settings: ModelSettings | None = None
    """Settings of the agent (`thinking`): they change the prompt the model is trained on."""
    in_tokenizer_corpus: bool = True
    """`False` keeps this scenario's texts out of the tokenizer's training corpus, for a scenario
    whose texts the others nearly all have: the tokenizer, and the token ids and vocabulary size
    tests rely on, then stay as they were (byte-level BPE still encodes every text)."""

    def agent(self, model: Model) -> Agent[None, Any]:
        """The agent this scenario runs: the model trained on it reproduces every turn."""
        return Agent(
            model,
            system_prompt=self.system_prompt if self.system_prompt is not None else (),
            tools=list(self.tools),
            output_type=self.output_type,
            model_settings=self.model_settings,
        )


class _Quickstart:
    """The tool of the first example in README.md and docs/ (same name, signature and docstring,
    hence the same prompt), so that example, run on the demo model, gets a sensible answer."""

    @staticmethod
    def read_file(path: str) -> str:
        """Read a text file of the project."""
        return _FILES.get(path, f"error: no such file: {path}")


def _call(tool_name: str, **args: Any) -> ScriptedCall:
    return ScriptedCall(tool_name, args)


QUICKSTART_READ_FILE = _Quickstart.read_file
"""`read_file` as the README's example declares it (no system prompt, no argument docs)."""

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="plain_answer",
        prompt="Say hello.",
        turns=(ScriptedTurn("Hello! Ask me anything about the project."),),
    ),
    Scenario(
        name="tool_call_tags",
        prompt="What does README.md say?",
        turns=(
            ScriptedTurn(
                '<tool_call>\n{"name": "read_file", "arguments": {"path": "README.md"}}\n</tool_call>',
                (_call("read_file", path="README.md"),),
            ),
            ScriptedTurn("README.md says: Demo, a tiny project."),
        ),
    ),
    Scenario(
        name="tool_call_json_fence",
        prompt="Show me pyproject.toml.",
        turns=(
            # The way Qwen2.5-Coder-0.5B really asks for a tool: a pretty-printed fence, no tags.
            ScriptedTurn(
                '```json\n{\n  "name": "read_file",\n  "arguments": {\n    "path": "pyproject.toml"\n  }\n}\n'
                "```",
                (_call("read_file", path="pyproject.toml"),),
            ),
            ScriptedTurn("The project is named demo, version 0.1.0."),
        ),
    ),
    Scenario(
        name="tool_call_qwen3_xml",
        prompt="Which files are in the project?",
        turns=(
            ScriptedTurn(
                "<tool_call>\n<function=list_files>\n<parameter=directory>\n.\n</parameter>\n</function>\n"
                "</tool_call>",
                (_call("list_files", directory="."),),
            ),
            ScriptedTurn("The project has README.md, pyproject.toml and setup.cfg."),
        ),
    ),
    Scenario(
        name="parallel_calls",
        prompt="Read README.md and setup.cfg.",
        turns=(
            ScriptedTurn(
                '<tool_call>\n{"name": "read_file", "arguments": {"path": "README.md"}}\n</tool_call>\n'
                '<tool_call>\n{"name": "read_file", "arguments": {"path": "setup.cfg"}}\n</tool_call>',
                (_call("read_file", path="README.md"), _call("read_file", path="setup.cfg")),
            ),
            ScriptedTurn("Both files describe the demo project."),
        ),
    ),
    Scenario(
        name="unknown_tool_retry",
        prompt="Open setup.cfg.",
        turns=(
            ScriptedTurn(
                '<tool_call>\n{"name": "open_file", "arguments": {"path": "setup.cfg"}}\n</tool_call>',
                (_call("open_file", path="setup.cfg"),),
            ),
            ScriptedTurn(
                '<tool_call>\n{"name": "read_file", "arguments": {"path": "setup.cfg"}}\n</tool_call>',
                (_call("read_file", path="setup.cfg"),),
            ),
            ScriptedTurn("setup.cfg names the project demo."),
        ),
    ),
    Scenario(
        name="output_tool",
        prompt="Which city is the capital of France?",
        output_type=ToolOutput(CityInfo),
        turns=(
            ScriptedTurn(
                '<tool_call>\n{"name": "final_result", "arguments": {"city": "Paris", "country": "France"}}\n'
                "</tool_call>",
                (_call("final_result", city="Paris", country="France"),),
            ),
        ),
    ),
    Scenario(
        name="prompted_output",
        prompt="Which city is the capital of Italy?",
        output_type=PromptedOutput(CityInfo),
        # Without tools: the JSON-answer instructions alone (and a much shorter prompt to train on).
        tools=(),
        turns=(ScriptedTurn('{"city": "Rome", "country": "Italy"}'),),
    ),
    # Thinking, as Qwen3 does it: reasoning in <think> before each call and before the answer. The
    # template keeps this run's reasoning in the prompt, so each request extends the one before.
    Scenario(
        name="thinking",
        prompt="Which files name the project?",
        model_settings={"thinking": True},
        turns=(
            ScriptedTurn(
                "<think>\nFirst I list the files\n</think>\n\n"
                '<tool_call>\n{"name": "list_files", "arguments": {"directory": "."}}\n</tool_call>',
                (_call("list_files", directory="."),),
            ),
            ScriptedTurn(
                "<think>\nThe name is in pyproject\n</think>\n\n"
                '<tool_call>\n{"name": "read_file", "arguments": {"path": "pyproject.toml"}}\n</tool_call>',
                (_call("read_file", path="pyproject.toml"),),
            ),
            ScriptedTurn(
                "<think>\nsetup.cfg may name it too\n</think>\n\n"
                '<tool_call>\n{"name": "read_file", "arguments": {"path": "setup.cfg"}}\n</tool_call>',
                (_call("read_file", path="setup.cfg"),),
            ),
            ScriptedTurn(
                "<think>\nBoth say demo\n</think>\n\npyproject.toml and setup.cfg both name it demo."
            ),
        ),
    ),
    # The same question with `thinking=False`: the template's empty <think> block, then the answer.
    Scenario(
        name="thinking_off",
        prompt="Which files name the project?",
        model_settings={"thinking": False},
        turns=(ScriptedTurn("pyproject.toml names it demo."),),
    ),
    Scenario(
        # README.md's example, as written there: tests/test_docs.py runs it on this model.
        name="quickstart",
        prompt="What does README.md say?",
        system_prompt=None,
        in_tokenizer_corpus=False,  # only its tool's docstring is new
        tools=(QUICKSTART_READ_FILE,),
        turns=(
            ScriptedTurn(
                '<tool_call>\n{"name": "read_file", "arguments": {"path": "README.md"}}\n</tool_call>',
                (_call("read_file", path="README.md"),),
            ),
            ScriptedTurn("README.md says: Demo, a tiny project."),
        ),
    ),
)
"""The demo model's script. Names are stable: tests and the CLI look scenarios up by name."""


def scenario(name: str) -> Scenario:
    """The scenario called `name` (raises `KeyError` for an unknown name)."""
    for candidate in SCENARIOS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


@dataclass(frozen=True)
class CapturedRequest:
    """One request exactly as pydantic-ai handed it to the model, and the turn that answered it."""

    model: Model
    messages: list[ModelMessage]
    model_request_parameters: ModelRequestParameters
    turn: ScriptedTurn


@dataclass
class ScriptedModel(Model):
    """A model that answers with scripted turns and records each request it is given.

    This captures training data; it never stands in for generation in a test of MLX.
    """

    turns: Sequence[ScriptedTurn]
    captured: list[CapturedRequest] = field(default_factory=list[CapturedRequest])

    def __post_init__(self) -> None:
        super().__init__(profile=CHAT_TEMPLATE_PROFILE)

    @property
    def model_name(self) -> str:
        return "scripted"

    @property
    def system(self) -> str:
        return "mlx"

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        model_settings, model_request_parameters = self.prepare_request(
            model_settings, model_request_parameters
        )
        if len(self.captured) == len(self.turns):
            raise RuntimeError(
                f"the agent asked for turn {len(self.turns) + 1}, but the script has {len(self.turns)}"
            )
        turn = self.turns[len(self.captured)]
        self.captured.append(CapturedRequest(self, list(messages), model_request_parameters, turn))
        return turn.response()


def capture_requests(scenario: Scenario) -> list[CapturedRequest]:
    """Run `scenario`'s agent once on `ScriptedModel`; return every request it made, one per scripted turn."""
    model = ScriptedModel(scenario.turns)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        scenario.agent(model).run_sync(scenario.prompt)
    else:
        # Called from async code (`build_demo_model()` in an `async def main`): `run_sync` cannot
        # run inside a running event loop, so the agent runs in a thread with a loop of its own.
        with ThreadPoolExecutor(max_workers=1) as worker:
            worker.submit(scenario.agent(model).run_sync, scenario.prompt).result()
    if len(model.captured) != len(scenario.turns):
        raise RuntimeError(
            f"scenario {scenario.name!r}: the agent made {len(model.captured)} requests "
            f"for {len(scenario.turns)} scripted turns"
        )
    return model.captured
