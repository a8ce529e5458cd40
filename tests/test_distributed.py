"""A distributed MLXModel: a model split across two processes by MLX's ring backend on 127.0.0.1.

`mlx.launch -n 2 --backend ring` runs one script on two ranks, exactly as on two Macs: rank 0 runs
agents (non-streamed, streamed, a cancelled run, constrained decoding), rank 1 follows, with
tensor sharding of the trained demo model (one layer: each rank holds half its heads) and then
pipeline sharding of a two-layer untrained model (each rank holds a layer; its requests sample
with a seed and are bounded). Their results must equal the same requests' on the whole model in
this process. A rank that dies while the other waits for it (between requests, or for the
next request) is an error on the survivor, not a hang.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx.utils import tree_flatten
from pydantic_ai.exceptions import UserError

from _distributed_agents import exercise, exercise_untrained, parts
from pydantic_mlx import MLXModel
from pydantic_mlx._distributed import agreed_prefix, mismatch
from pydantic_mlx.demo import scenario

SCRIPT = """
import asyncio, json, sys

tests, demo, untrained, out = sys.argv[1:5]
sys.path.insert(0, tests)
from _distributed_agents import exercise, exercise_untrained
from pydantic_ai.exceptions import UserError
from pydantic_mlx import MLXModel
from pydantic_mlx._distributed import agreed_prefix, mismatch

results = {}
for sharding, path, runs in (("tensor", demo, exercise), ("pipeline", untrained, exercise_untrained)):
    model = MLXModel(path, distributed=True, sharding=sharding)
    if model.rank != 0:
        model.follow()
        print(f"rank {model.rank} followed {sharding} to its end", flush=True)
        continue
    constrained = MLXModel(path, distributed=True, sharding=sharding, constrained=True)  # the same shard
    results[sharding] = asyncio.run(runs(model, constrained))
    shard = model.loaded.model
    results[sharding]["layers_here"] = len(shard.layers)
    results[sharding]["heads_here"] = shard.layers[-1].self_attn.n_heads
    if sharding == "tensor":
        try:  # a second distributed model while this one runs: refused before anything is loaded
            MLXModel(path, distributed=True, sharding="pipeline")
        except UserError as error:
            results[sharding]["second_model"] = str(error)
        model.close()
    # The pipeline model is left open: rank 0's interpreter exit sends SHUTDOWN.
    with open(out, "w") as f:
        json.dump(results, f)
"""

LAUNCH_TIMEOUT = 240
"""Seconds the two ranks may take at most (about 15 on an idle 2-core machine); a hang fails, never blocks."""


def finish(process: subprocess.Popen[str]) -> str:
    """The process's output once it has exited; past `LAUNCH_TIMEOUT`, it and its children are killed."""
    try:
        return process.communicate(timeout=LAUNCH_TIMEOUT)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate()[0]
        pytest.fail(f"the ranks did not finish in {LAUNCH_TIMEOUT} s (a hang):\n{output[-4000:]}")


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now, consecutive (mlx.launch takes a starting port)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            start = probe.getsockname()[1]
        if start + count >= 65536:
            continue
        try:
            sockets = []
            for port in range(start, start + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return list(range(start, start + count))
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module")
def launched(
    demo_model_path: Path, random_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], str, float]:
    """Rank 0's results, both ranks' output and the launch's seconds."""
    folder = tmp_path_factory.mktemp("distributed")
    script, out = folder / "agents.py", folder / "results.json"
    script.write_text(SCRIPT)
    started = time.perf_counter()
    launch = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlx.launch"),
            "-n",
            "2",
            "--backend",
            "ring",
            "--starting-port",
            str(free_ports(2)[0]),
            "--python",
            sys.executable,
            str(script),
            str(Path(__file__).parent),
            str(demo_model_path),
            str(random_model_path),
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=folder,
        start_new_session=True,  # a hang is ended with both ranks, not only mlx.launch
    )
    output = finish(launch)
    seconds = time.perf_counter() - started
    assert launch.returncode == 0, output[-4000:]
    assert out.is_file(), output[-4000:]
    return json.loads(out.read_text()), output, seconds


@pytest.fixture(scope="module")
def reference(demo_model_path: Path, random_model_path: Path) -> dict[str, Any]:
    """The same agents and requests on the whole models, in this process."""

    def whole(path: Path) -> tuple[MLXModel, MLXModel]:
        return MLXModel(path), MLXModel(path, constrained=True)

    return {
        "tensor": asyncio.run(exercise(*whole(demo_model_path))),
        "pipeline": asyncio.run(exercise_untrained(*whole(random_model_path))),
    }


@pytest.mark.parametrize("sharding", ["tensor", "pipeline"])
def test_two_ranks_answer_as_the_whole_model(
    launched: tuple[dict[str, Any], str, float], reference: dict[str, Any], sharding: str
) -> None:
    results, _, _ = launched
    got = results[sharding]
    # Each rank really held half: one of the two layers, or half the attention heads of each.
    if sharding == "pipeline":
        assert got["layers_here"] == 1
        assert got["stream_deltas"] and got["run"][-1] == "length"  # 24 sampled tokens of text
    else:
        assert (got["layers_here"], got["heads_here"]) == (1, 2)
        assert got["run"][0] == ["call", "read_file", {"path": "README.md"}]
    for key in ("run", "stream", "stream_deltas", "after_cancel", "constrained"):
        assert got[key] == reference[sharding][key], key
    assert got["cancelled"] is True
    # The repeated run found its prompt in every rank's cache (they agree on what they all hold).
    assert got["after_cancel_cache_read"] > 0
    if sharding == "tensor":
        assert "already runs another distributed model" in got["second_model"]


def test_followers_are_released_by_close_and_by_exit(launched: tuple[dict[str, Any], str, float]) -> None:
    _, output, seconds = launched
    assert "rank 1 followed tensor to its end" in output  # MLXModel.close()
    assert "rank 1 followed pipeline to its end" in output  # rank 0's interpreter exit
    print(f"two ranks, two shardings, launch to exit: {seconds:.1f} s")


LOSING_A_RANK = """
import asyncio, os, sys
import pydantic_mlx._distributed as distributed
from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelConnectionError
from pydantic_mlx import MLXModel
from pydantic_mlx._distributed import agreed_prefix, mismatch

path, dying = sys.argv[1], int(sys.argv[2])
model = MLXModel(path, distributed=True)
agent = Agent(model)
if model.rank == 1:
    if dying == 1:
        # Dies (no exception, no goodbye) once it has served one request: rank 0 is between requests.
        serve = distributed.Follower._mirror_request
        served = []

        def serve_once(self):
            if served:
                os._exit(3)
            served.append(True)
            serve(self)

        distributed.Follower._mirror_request = serve_once
    asyncio.run(model.afollow())  # the async twin (the other case's follower is the command line's)
    sys.exit(0)


async def main():
    for attempt in ("first", "second", "third"):
        try:
            await agent.run("Say hello.", model_settings={"max_tokens": 8})
        except ModelConnectionError as error:
            print(f"{attempt}: ModelConnectionError: {error}", flush=True)
        else:
            print(f"{attempt}: answered", flush=True)
        if dying == 0:
            os._exit(5)  # a crash: no atexit, no SHUTDOWN


asyncio.run(main())
"""


@pytest.mark.parametrize("dying", [0, 1])
def test_a_lost_rank_is_an_error_on_the_other_rank_not_a_hang(
    demo_model_path: Path, tmp_path: Path, dying: int
) -> None:
    # Started by hand, as mlx.launch starts them (a ring hostfile, MLX_RANK): mlx.launch would end
    # every rank as soon as one fails, and it is the survivor's own behaviour that is tested here.
    script = tmp_path / "lose.py"
    script.write_text(LOSING_A_RANK)
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text(json.dumps([[f"127.0.0.1:{port}"] for port in free_ports(2)]))
    commands = [[sys.executable, str(script), str(demo_model_path), str(dying)]] * 2
    if dying == 0:  # the follower is the command line's
        commands[1] = [sys.executable, "-m", "pydantic_mlx", "follow", str(demo_model_path)]
    ranks = [
        subprocess.Popen(
            commands[rank],
            env={**os.environ, "MLX_HOSTFILE": str(hostfile), "MLX_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for rank in (0, 1)
    ]
    try:
        rank_0, rank_1 = (finish(rank) for rank in ranks)
    finally:
        for rank in ranks:
            rank.kill()
    if dying == 1:
        assert ranks[1].returncode == 3, rank_1[-2000:]
        assert ranks[0].returncode == 0, rank_0[-3000:]  # and its exit did not wait for the dead rank
        assert "first: answered" in rank_0, rank_0[-3000:]
        assert "second: ModelConnectionError" in rank_0, rank_0[-3000:]
        assert "third: ModelConnectionError" in rank_0, rank_0[-3000:]
        assert "restart every rank" in rank_0
    else:
        assert ranks[0].returncode == 5, rank_0[-2000:]
        assert "first: answered" in rank_0
        assert ranks[1].returncode == 1, rank_1[-3000:]
        assert "rank 1 of 2: following rank 0" in rank_1
        assert "error: rank 1 stopped following rank 0" in rank_1, rank_1[-3000:]
        assert "restart every rank" in rank_1


# --- in one process -------------------------------------------------------------------------


def tiny_model_folder(folder: Path, config: dict[str, Any]) -> Path:
    """A model folder mlx-lm loads (random weights of `config`'s architecture, no tokenizer)."""
    from mlx_lm.utils import _get_classes  # pyright: ignore[reportPrivateUsage]

    model_class, args_class = _get_classes(config)
    model: nn.Module = model_class(args_class.from_dict(config))
    folder.mkdir()
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


SMALL = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "intermediate_size": 64,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "rms_norm_eps": 1e-6,
    "vocab_size": 64,
}


def test_an_architecture_without_sharding_is_refused_clearly(tmp_path: Path) -> None:
    folder = tiny_model_folder(tmp_path / "gemma", {"model_type": "gemma", **SMALL})
    with pytest.raises(UserError, match="'gemma' architecture cannot be split across processes"):
        MLXModel(folder, distributed=True)


def test_a_sharding_the_architecture_lacks_is_refused_clearly(tmp_path: Path) -> None:
    folder = tiny_model_folder(tmp_path / "llama", {"model_type": "llama", **SMALL})
    with pytest.raises(UserError, match="no pipeline sharding in mlx-lm; it offers tensor"):
        MLXModel(folder, distributed=True, sharding="pipeline")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"distributed": True, "batching": True}, "batching is not available for distributed models"),
        ({"distributed": "yes"}, "distributed must be True, False or an mx.distributed.Group"),
        ({"sharding": "tensor"}, "sharding applies to distributed models"),
        ({"distributed": True, "sharding": "layers"}, "sharding must be one of"),
    ],
)
def test_distributed_arguments_are_checked(
    demo_model_path: Path, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        MLXModel(demo_model_path, **arguments)


def test_an_adapter_cannot_be_sharded(demo_model_path: Path, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapters.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="with mlx_lm\\.fuse"):
        MLXModel(demo_model_path, distributed=True, adapter_path=adapter)


def test_follow_needs_a_rank_to_follow(demo_model_path: Path) -> None:
    with pytest.raises(UserError, match="follow\\(\\) is for distributed models"):
        MLXModel(demo_model_path).follow()
    alone = MLXModel(demo_model_path, distributed=True)  # a group of one: the whole model
    assert (alone.rank, alone.group is not None) == (0, True)
    with pytest.raises(UserError, match="one process"):
        alone.follow()
    alone.close()  # nothing to release


async def _run(model: MLXModel, name: str) -> list[Any]:
    run = scenario(name)
    result = await run.agent(model).run(run.prompt)
    return parts(result.all_messages())


def test_the_command_line_follower_needs_a_distributed_group(demo_model_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pydantic_mlx", "follow", str(demo_model_path)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLX_")},
    )
    assert done.returncode == 2
    assert "not a rank of a distributed group: start it with mlx.launch" in done.stderr


def test_a_group_of_one_runs_the_whole_model(demo_model_path: Path) -> None:
    whole = asyncio.run(_run(MLXModel(demo_model_path), "tool_call_tags"))
    alone = asyncio.run(_run(MLXModel(demo_model_path, distributed=True), "tool_call_tags"))
    assert alone == whole
    assert isinstance(whole[-1][1], str) and "README.md says" in whole[-1][1]


@pytest.mark.parametrize(
    ("offers", "agreed"),
    [
        ([(120, True), (120, True)], 120),  # caches in step: all of it
        ([(120, True), (40, True)], 40),  # one rank forgot (other limits, a lost disk file): trim
        ([(0, True), (300, False)], None),  # a rank that cannot trim to what all hold: start afresh
        ([(40, False), (120, True), (40, True)], 40),  # the one that cannot trim holds just that
    ],
)
def test_ranks_continue_from_the_prefix_they_all_hold(
    offers: list[tuple[int, bool]], agreed: int | None
) -> None:
    assert agreed_prefix(offers) == agreed


def test_ranks_that_loaded_different_models_are_told_so() -> None:
    assert mismatch([[1, 77, 1], [1, 77, 1]]) is None
    assert "rank 1 does not run the same model or sharding" in str(mismatch([[1, 77, 1], [1, 78, 1]]))
    assert "rank 2 does not run the same model or sharding" in str(
        mismatch([[1, 77, 1], [1, 77, 1], [1, 77, 2]])
    )
    assert "rank 1 does not run the same pydantic-mlx version" in str(mismatch([[1, 77, 1], [2, 77, 1]]))
