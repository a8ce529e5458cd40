"""Pythonic tool calls, `[get_weather(city="Paris"), get_time()]`, read with `ast` (never `eval`).

Llama 3.2 / Llama 4, LFM2 and some small models write calls as a Python list of calls. Only
literal values are accepted (strings, numbers, booleans, None, and lists/tuples/dicts/sets of
them; a set is a JSON array), with JSON's `true`/`false`/`null` as aliases because chat
templates often render nested values as JSON. Two slips Python rejects but whose meaning is
plain are read (LFM2 makes them): a raw line break or NUL inside a one-line string (the
character itself, as if escaped), and an integer with leading zeros (`month=07` is 7).
Arguments must be keywords: a positional argument, `**kwargs`, a variable or an
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
    except (SyntaxError, ValueError):  # ValueError: a NUL byte in the source
        repaired = _repair_literals(source)
        if repaired is not None:
            source = repaired
            try:
                return ast.parse(source, mode="eval").body
            except (SyntaxError, ValueError):
                pass
        aliased = _alias_keyword_arguments(source)
        if aliased is None:
            raise CallSyntaxError("not a pythonic call: SyntaxError") from None
        return ast.parse(aliased, mode="eval").body


# A run of leading zeros before a digit, in an integer literal standing alone (`07`, not `0.7`,
# `x07`, `07.5` or `0x7`).
_LEADING_ZEROS = re.compile(r"(?<![\w.])0+(?=\d)(\d+)(?![\w.])")
_RAW_IN_STRING = {"\n": "\\n", "\r": "\\r", "\x00": "\\x00"}


def _repair_literals(source: str) -> str | None:
    """`source` with the two slips `ast` rejects made readable, or None when it has neither: raw
    newlines and NULs inside one-line strings are escaped, and leading zeros outside strings are
    dropped from integers. One pass over the text, walking in and out of strings."""
    out: list[str] = []
    changed = False
    i = code_start = 0
    while i < len(source):
        quote_char = source[i]
        if quote_char not in "'\"":
            i += 1
            continue
        code = source[code_start:i]
        fixed = _LEADING_ZEROS.sub(r"\1", code)
        changed = changed or fixed != code
        out.append(fixed)
        quote = quote_char * 3 if source.startswith(quote_char * 3, i) else quote_char
        j = i + len(quote)
        out.append(quote)
        while j < len(source) and not source.startswith(quote, j):
            ch = source[j]
            if ch == "\\" and j + 1 < len(source):
                out.append(source[j : j + 2])
                j += 2
                continue
            if ch in _RAW_IN_STRING and (len(quote) == 1 or ch == "\x00"):
                out.append(_RAW_IN_STRING[ch])
                changed = True
            else:
                out.append(ch)
            j += 1
        out.append(source[j : j + len(quote)])
        i = code_start = j + len(quote)
    code = source[code_start:]
    fixed = _LEADING_ZEROS.sub(r"\1", code)
    out.append(fixed)
    changed = changed or fixed != code
    return "".join(out) if changed else None


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
    if isinstance(node, ast.Set):  # `tags={'a', 'b'}`: an array, in the order written, once each
        items: list[Any] = []
        for item in map(_literal, node.elts):
            if not any(_same(item, seen) for seen in items):
                items.append(item)
        return items
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


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values (`True` is not `1`)."""
    return type(a) is type(b) and a == b


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
