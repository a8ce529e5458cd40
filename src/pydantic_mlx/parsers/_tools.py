"""The declared tools, reduced to what the parsers need: names and JSON schemas.

`tools=None` means "unknown" (any name may be called); `tools=[]` means nothing may be called.
Both OpenAI-style dicts and pydantic-ai `ToolDefinition`s (or anything with `name` and
`parameters_json_schema` attributes) are accepted, so the parsers never import pydantic-ai.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

__all__ = ["ToolSet", "ToolsArg", "tool_set"]

ToolsArg = Iterable[Any] | None


@dataclass(frozen=True)
class ToolSet:
    """Declared tool names and their parameter schemas; `known=False` when tools were not given."""

    schemas: Mapping[str, Mapping[str, Any]]
    known: bool

    def allows(self, name: str) -> bool:
        """Whether an untagged call to `name` may count as a call."""
        return not self.known or name in self.schemas

    def schema(self, name: str) -> Mapping[str, Any] | None:
        """The JSON schema of `name`'s parameters, if declared."""
        return self.schemas.get(name)

    @cached_property
    def longest_name(self) -> int:
        """Length of the longest declared name (bounds look-ahead when tools are known)."""
        return max((len(n) for n in self.schemas), default=0)


UNKNOWN_TOOLS = ToolSet({}, known=False)


def tool_set(tools: ToolsArg | ToolSet) -> ToolSet:
    """Normalise the `tools` argument of `parse` / `StreamParser`. Raises `TypeError` for an
    entry that is neither an OpenAI-style dict nor a tool definition."""
    if tools is None:
        return UNKNOWN_TOOLS
    if isinstance(tools, ToolSet):
        return tools
    schemas: dict[str, Mapping[str, Any]] = {}
    for tool in tools:
        name, schema = _name_and_schema(tool)
        schemas[name] = schema
    return ToolSet(schemas, known=True)


def _name_and_schema(tool: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(tool, Mapping):
        spec: Any = tool.get("function", tool)
        name = spec.get("name") if isinstance(spec, Mapping) else None
        if isinstance(name, str):
            schema = spec.get("parameters") or spec.get("input_schema") or {}
            return name, schema if isinstance(schema, Mapping) else {}
    else:
        name = getattr(tool, "name", None)
        if isinstance(name, str):
            schema = getattr(tool, "parameters_json_schema", None) or {}
            return name, schema if isinstance(schema, Mapping) else {}
    raise TypeError(
        f"tools must be OpenAI-style dicts ({{'type': 'function', 'function': {{'name': ..., "
        f"'parameters': ...}}}}) or pydantic-ai ToolDefinitions, got {tool!r}"
    )
