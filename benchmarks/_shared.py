"""What the benchmark scripts share: the default model, and an `mlx_lm.server` to compare with."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request


def default_model() -> str:
    """$PYDANTIC_MLX_REAL_MODEL, else the tiny demo model (built on first use)."""
    if real := os.environ.get("PYDANTIC_MLX_REAL_MODEL"):
        return real
    from pydantic_mlx.demo import build_demo_model

    return str(build_demo_model())


SERVER_CLIENT_HINT = (
    "the mlx_lm.server comparison talks to the server through OpenAIChatModel, which needs openai: "
    'pip install -e ".[bench]" in your pydantic-mlx checkout, or pass --no-server'
)


def check_server_client(no_server: bool) -> None:
    """Exit with `SERVER_CLIENT_HINT` before any model loads when the server path cannot run."""
    if no_server:
        return
    try:
        import openai  # noqa: F401  (imported by the server path later anyway)
    except ImportError:
        raise SystemExit(SERVER_CLIENT_HINT) from None


def start_server(model: str, port: int) -> subprocess.Popen[bytes]:
    """`mlx_lm.server` for `model` on 127.0.0.1:`port`, once it answers (at most 300 s)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "mlx_lm.server", "--model", model, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    raise RuntimeError("mlx_lm.server did not start within 300 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
