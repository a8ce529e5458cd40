"""Install hints that match how pydantic-mlx itself was installed.

From a checkout (`pip install -e .`) the extra is added with `pip install -e ".[eval]"`;
`pip install "pydantic-mlx[eval]"` there would fetch a second copy from the package index.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, distribution

__all__ = ["install_hint"]


def install_hint(extra: str) -> str:
    """The pip command that adds `extra` to this installation of pydantic-mlx."""
    origin = _origin()
    if origin == "editable":
        return f'pip install -e ".[{extra}]" (in your pydantic-mlx checkout)'
    if origin == "folder":
        return f'pip install ".[{extra}]" (in your pydantic-mlx checkout)'
    return f'pip install "pydantic-mlx[{extra}]"'


def _origin() -> str:
    """ "editable", "folder" or "index": where pip installed this package from (PEP 610 `direct_url.json`)."""
    try:
        direct_url = distribution("pydantic-mlx").read_text("direct_url.json")
    except PackageNotFoundError:
        return "editable"  # imported from a source tree that was never installed
    try:
        origin: object = json.loads(direct_url or "{}")
    except ValueError:
        return "index"
    if not isinstance(origin, dict) or not str(origin.get("url", "")).startswith("file:"):
        return "index"
    dir_info = origin.get("dir_info")
    return "editable" if isinstance(dir_info, dict) and dir_info.get("editable") else "folder"
