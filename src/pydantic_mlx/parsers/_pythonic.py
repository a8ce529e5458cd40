"""Pythonic tool calls, `[get_weather(city="Paris"), get_time()]`, read with `ast` (never `eval`).

Llama 3.2 / Llama 4, LFM2 and some small models write calls as a Python list of calls. Only
literal values are accepted (strings, numbers, booleans, None, and lists/tuples/dicts of them),
with JSON's `true`/`false`/`null` as aliases because chat templates often render nested values
as JSON. Arguments must be keywords: a positional argument, `**kwargs`, a variable or an
expression (`1 + 2`, `f()`) makes the text "not a call", so code that merely looks like a call
is never taken for one.
"""

from __future__ import annotations

import ast
import io
import keyword
import math
import re
import tokenize
from typing import Any

from ._types import CallSyntaxError

__all__ = ["parse_pythonic_calls", "render_pythonic_calls", "render_pythonic_value"]

_JSON_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}
# Stand-in prefix for keyword-named arguments (`from=`, `class=`), which `ast` cannot parse.
_KEYWORD_ALIAS = "_pydantic_mlx_kw_"
# A keyword right after `(` or `,` and before `=` (spaces and line continuations between): the
# only text `_alias_keyword_arguments` changes. Checked first, because tokenizing in pure Python
# costs far more than `ast.parse`, and most text that fails to parse has no such argument.
_SPACE = r"(?:[ \t\f]|\\\r?\n)*"
_MAYBE_KEYWORD_ARGUMENT = re.compile(rf"[(,]{_SPACE}(?:{'|'.join(keyword.kwlist)}){_SPACE}=")


def parse_pythonic_calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The calls in `text`: a list of calls (`[f(a=1), g()]`) or one call (`f(a=1)`).

    Returns `(name, arguments)` pairs in order; dotted names (`browser.search`) are kept whole.
    Raises `CallSyntaxError` for anything else: text that is not one Python expression, an
    empty list, a list holding anything but calls, positional arguments, or non-literal values.
    """
    source = text.strip()
    if not source:
        raise CallSyntaxError("empty pythonic call")
    try:
        tree = _parse_expression(source)
    except CallSyntaxError:
        raise
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as error:
        raise CallSyntaxError(f"not a pythonic call: {error.__class__.__name__}") from None
    if isinstance(tree, ast.List):
        if not tree.elts:
            raise CallSyntaxError("empty list of calls")
        nodes = tree.elts
    else:
        nodes = [tree]
    try:
        return [_call(node) for node in nodes]
    except RecursionError:
        raise CallSyntaxError("arguments nested too deeply") from None


def _parse_expression(source: str) -> ast.expr:
    try:
        return ast.parse(source, mode="eval").body
    except SyntaxError:
        aliased = _alias_keyword_arguments(source)
        if aliased is None:
            raise
        return ast.parse(aliased, mode="eval").body


def _alias_keyword_arguments(source: str) -> str | None:
    """`source` with Python keywords used as argument names (`f(from="a")`) renamed so `ast` can
    read them, or None when there are none. Tools do have parameters called `from` or `class`."""
    if _MAYBE_KEYWORD_ARGUMENT.search(source) is None:
        return None
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    changed = False
    for i in range(1, len(tokens) - 1):
        tok = tokens[i]
        if (
            tok.type == tokenize.NAME
            and keyword.iskeyword(tok.string)
            and tokens[i - 1].string in ("(", ",")
            and tokens[i + 1].string == "="
        ):
            tokens[i] = tok._replace(string=_KEYWORD_ALIAS + tok.string)
            changed = True
    if not changed:
        return None
    return tokenize.untokenize(tokens)


def _call(node: ast.expr) -> tuple[str, dict[str, Any]]:
    if not isinstance(node, ast.Call):
        raise CallSyntaxError("expected a function call")
    name = _dotted_name(node.func)
    if node.args:
        raise CallSyntaxError(f"{name}: positional arguments are not tool arguments")
    arguments: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise CallSyntaxError(f"{name}: **kwargs are not tool arguments")
        key = kw.arg.removeprefix(_KEYWORD_ALIAS)
        if key in arguments:  # `ast` leaves repeated keywords to the compiler
            raise CallSyntaxError(f"{name}: argument {key!r} given twice")
        arguments[key] = _literal(kw.value)
    return name, arguments


def _dotted_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted_name(node.value)}.{node.attr}"
    raise CallSyntaxError("the called object is not a plain name")


def _literal(node: ast.expr) -> Any:
    """The JSON value a literal node stands for; CallSyntaxError for anything computed."""
    if isinstance(node, ast.Constant):
        value = node.value
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        raise CallSyntaxError(f"unsupported literal {type(value).__name__}")
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = node.operand
        if isinstance(operand, ast.Constant) and isinstance(operand.value, int | float):
            if isinstance(operand.value, bool):
                raise CallSyntaxError("sign applied to a boolean")
            value = -operand.value if isinstance(node.op, ast.USub) else operand.value
            if isinstance(value, float) and not math.isfinite(value):
                raise CallSyntaxError("non-finite number")
            return value
        raise CallSyntaxError("sign applied to a non-number")
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        result: dict[str, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise CallSyntaxError("dict keys must be strings")
            if key.value in result:
                raise CallSyntaxError(f"key {key.value!r} given twice")
            result[key.value] = _literal(value)
        return result
    raise CallSyntaxError(f"not a literal value: {type(node).__name__}")


def render_pythonic_value(value: Any) -> str:
    """`value` (a JSON value) as a Python literal, as Llama-style models write it."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float | str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(render_pythonic_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{key!r}: {render_pythonic_value(item)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def render_pythonic_calls(calls: list[tuple[str, dict[str, Any]]]) -> str:
    """`[name(key=value, ...), ...]`. Argument names must be identifiers (keywords are fine)."""
    rendered = (
        f"{name}({', '.join(f'{key}={render_pythonic_value(value)}' for key, value in arguments.items())})"
        for name, arguments in calls
    )
    return "[" + ", ".join(rendered) + "]"
