"""Structured output from a local MLX model: a pydantic model filled in by the model.

    python examples/structured_output.py "Tell me about Lyon."
    python examples/structured_output.py "..." --prompted   # ask for JSON in the prompt instead of a tool
    python examples/structured_output.py --demo [--prompted]  # offline, on the tiny demo model

`ToolOutput` (the default) has the model call a `final_result` tool whose arguments are validated
against the schema; `PromptedOutput` puts the schema in the instructions and validates the JSON
answer. Either way pydantic-ai asks the model again when validation fails. (`NativeOutput` needs
constrained decoding: `MLXModel(..., constrained=True)`, see docs/constrained.md.)

The default model (`Qwen2.5-Coder-1.5B`) is downloaded from Hugging Face on first use. `--demo`
needs no download: the tiny demo model fills in a smaller schema (a city and its country) for the
one question it learned each way (docs/demo-model.md). A real model answers your prompt.
"""

from __future__ import annotations

import argparse

from pydantic import BaseModel, Field
from pydantic_ai import Agent, PromptedOutput, ToolOutput, UserError

from pydantic_mlx import MLXModel

DEFAULT_MODEL = "Qwen2.5-Coder-1.5B"  # the mlx-community 4-bit instruct build (MLXModel.list_aliases())


class City(BaseModel):
    """Facts about a city."""

    name: str
    country: str
    population_millions: float = Field(description="Approximate population, in millions")
    famous_for: list[str] = Field(description="Two or three things the city is known for")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("prompt", nargs="?")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="short name, HF id or local MLX model folder")
    parser.add_argument("--prompted", action="store_true", help="use PromptedOutput instead of ToolOutput")
    parser.add_argument(
        "--demo", action="store_true", help="run offline on the tiny demo model (its own prompt)"
    )
    args = parser.parse_args()

    if args.demo:
        from pydantic_mlx.demo import build_demo_model, scenario

        case = scenario("prompted_output" if args.prompted else "output_tool")
        print(f"[demo model] {case.prompt}")
        answer: BaseModel = case.agent(MLXModel(build_demo_model())).run_sync(case.prompt).output
    elif args.prompt is None:
        parser.error("give a prompt, or --demo")
    else:
        output_type = PromptedOutput(City) if args.prompted else ToolOutput(City)
        agent = Agent(MLXModel(args.model), output_type=output_type, model_settings={"max_tokens": 512})
        answer = agent.run_sync(args.prompt).output
    print(answer.model_dump_json(indent=2))


if __name__ == "__main__":
    try:
        main()
    except UserError as error:  # a model name, folder or download you can fix: the sentence, no traceback
        raise SystemExit(f"error: {error}") from None
