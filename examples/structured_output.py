"""Structured output from a local MLX model: a pydantic model filled in by the model.

    python examples/structured_output.py "Tell me about Lyon."
    python examples/structured_output.py "..." --prompted   # ask for JSON in the prompt instead of a tool

`ToolOutput` (the default) has the model call a `final_result` tool whose arguments are validated
against the schema; `PromptedOutput` puts the schema in the instructions and validates the JSON
answer. Either way pydantic-ai asks the model again when validation fails. (`NativeOutput` needs
constrained decoding and is refused with a clear error for now.)
"""

from __future__ import annotations

import argparse

from pydantic import BaseModel, Field
from pydantic_ai import Agent, PromptedOutput, ToolOutput

from pydantic_mlx import MLXModel

DEFAULT_MODEL = "mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit"


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
    parser.add_argument("prompt")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="HF id or local MLX model folder")
    parser.add_argument("--prompted", action="store_true", help="use PromptedOutput instead of ToolOutput")
    args = parser.parse_args()

    output_type = PromptedOutput(City) if args.prompted else ToolOutput(City)
    agent = Agent(MLXModel(args.model), output_type=output_type, model_settings={"max_tokens": 512})
    city = agent.run_sync(args.prompt).output
    print(city.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
