"""The real tools an eval case can offer, working inside a temporary sandbox directory."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic_ai import RunContext

__all__ = ["COMMAND_TIMEOUT", "TOOLBOX", "Sandbox", "SandboxError"]

COMMAND_TIMEOUT = 20.0
"""Seconds a `run_command` call may take before it is stopped."""

_MAX_OUTPUT = 4000
"""Characters of command output handed back to the model (small models have small contexts)."""


class SandboxError(ValueError):
    """A path that leaves the sandbox."""


class Sandbox:
    """A directory the tools of one case run in: its files are set up before the run and read after."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, relative: str) -> Path:
        """`relative` inside the sandbox; `SandboxError` if it points outside."""
        target = (self.root / relative).resolve()
        if target != self.root and self.root not in target.parents:
            raise SandboxError(f"path outside the project: {relative}")
        return target

    def write_files(self, files: dict[str, str]) -> None:
        """Create `files` (relative path -> text), with their directories."""
        for relative, text in files.items():
            target = self.path(relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    def snapshot(self) -> dict[str, str]:
        """Every text file in the sandbox (relative path -> text), e.g. to check what a run wrote."""
        files: dict[str, str] = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                try:
                    files[path.relative_to(self.root).as_posix()] = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    files[path.relative_to(self.root).as_posix()] = "<binary>"
        return files


# read_file and list_files keep the demo model's descriptions and results word for word, so the
# tiny model's prompts are the ones it was trained on and its eval scores are known in advance.


def read_file(ctx: RunContext[Sandbox], path: str) -> str:
    """Read a text file of the project.

    Args:
        path: Path of the file, relative to the project root.
    """
    try:
        return ctx.deps.path(path).read_text(encoding="utf-8")
    except (SandboxError, OSError, UnicodeDecodeError):
        return f"error: no such file: {path}"


def list_files(ctx: RunContext[Sandbox], directory: str) -> str:
    """List the files in a directory of the project.

    Args:
        directory: Directory to list, relative to the project root.
    """
    try:
        entries = sorted(ctx.deps.path(directory or ".").iterdir())
    except (SandboxError, OSError):
        return f"error: no such directory: {directory}"
    return "\n".join(entry.name + ("/" if entry.is_dir() else "") for entry in entries)


def write_file(ctx: RunContext[Sandbox], path: str, content: str) -> str:
    """Write a text file of the project, replacing it if it exists.

    Args:
        path: Path of the file, relative to the project root.
        content: The whole new content of the file.
    """
    try:
        target = ctx.deps.path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    except (SandboxError, OSError) as exc:
        return f"error: cannot write {path}: {exc}"
    return f"wrote {len(content)} characters to {path}"


def run_command(ctx: RunContext[Sandbox], command: str) -> str:
    """Run a shell command in the project's root directory and return its output.

    Args:
        command: The command line, as typed in a POSIX shell.
    """
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=ctx.deps.root,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"error: the command did not finish within {COMMAND_TIMEOUT:g} s"
    output = (done.stdout + done.stderr)[-_MAX_OUTPUT:]
    return output if done.returncode == 0 else f"{output}\n(exit code {done.returncode})"


TOOLBOX: dict[str, Callable[..., Any]] = {
    "read_file": read_file,
    "list_files": list_files,
    "write_file": write_file,
    "run_command": run_command,
}
"""The tools a case may offer, by name. Commands run on this machine, in the sandbox directory."""
