"""The tiny demo model: mlx-lm's layout, its tokenizer, its cache, and greedy decoding of its whole script."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pydantic_mlx._chat import render_request
from pydantic_mlx.demo import (
    MODEL_CONFIG,
    RANDOM_MODEL_CONFIG,
    SCENARIOS,
    build_random_model,
    capture_requests,
)

SCRIPTED_TURNS = [
    pytest.param(case, index, id=f"{case.name}-{index}")
    for case in SCENARIOS
    for index in range(len(case.turns))
]


@pytest.fixture(scope="module")
def loaded(demo_model_path: Path) -> tuple[Any, Any]:
    import mlx_lm

    return mlx_lm.load(str(demo_model_path))


@pytest.fixture(scope="module")
def captured() -> dict[str, list[Any]]:
    return {case.name: capture_requests(case) for case in SCENARIOS}


@pytest.mark.parametrize(("case", "index"), SCRIPTED_TURNS)
def test_greedy_generation_reproduces_the_scripted_turn(
    loaded: tuple[Any, Any], captured: dict[str, list[Any]], case: Any, index: int
) -> None:
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = loaded
    request = captured[case.name][index]
    prompt = render_request(request.model, tokenizer, request.messages, request.model_request_parameters)
    responses = list(
        mlx_lm.stream_generate(model, tokenizer, prompt, max_tokens=120, sampler=make_sampler(temp=0.0))
    )
    expected = tokenizer.encode(case.turns[index].text + "<|im_end|>", add_special_tokens=False)
    assert [r.token for r in responses] == expected
    assert responses[-1].finish_reason == "stop"
    assert "".join(r.text for r in responses) == case.turns[index].text
    assert mlx_lm.generate(model, tokenizer, prompt, max_tokens=120, sampler=make_sampler(0.0)) == (
        case.turns[index].text
    )


def test_folder_has_mlx_lm_layout_and_is_small(demo_model_path: Path) -> None:
    names = {path.name for path in demo_model_path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    config = json.loads((demo_model_path / "config.json").read_text())
    assert {key: config[key] for key in MODEL_CONFIG} == MODEL_CONFIG
    assert config["model_type"] == "qwen2"
    assert (config["hidden_size"], config["num_hidden_layers"]) == (128, 1)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (4, 2)
    assert config["tie_word_embeddings"] is True
    assert "chat_template" in json.loads((demo_model_path / "tokenizer_config.json").read_text())
    size = sum(path.stat().st_size for path in demo_model_path.iterdir())
    assert size < 20 * 1024 * 1024


def test_parameter_count_is_tiny(loaded: tuple[Any, Any]) -> None:
    from mlx.utils import tree_flatten

    model, _ = loaded
    count = sum(array.size for _, array in tree_flatten(model.parameters()))
    assert 200_000 < count < 1_000_000


def test_tokenizer_is_rebuilt_by_transformers_as_qwen2(demo_model_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_model_path)
    assert type(tokenizer).__name__ == "Qwen2Tokenizer"
    for marker in ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>", "</tool_call>"):
        assert len(tokenizer.encode(marker, add_special_tokens=False)) == 1, marker
    assert tokenizer.eos_token == "<|im_end|>"
    # <tool_call> is a single token but not a special one: it survives skip_special_tokens for the parsers.
    ids = tokenizer.encode("<tool_call>x</tool_call><|im_end|>", add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<tool_call>x</tool_call>"


@settings(max_examples=80, deadline=None)
@given(text=st.text(max_size=60))
def test_byte_level_tokenizer_round_trips_any_text(random_model_path: Path, text: str) -> None:
    tokenizer = _hf_tokenizer(random_model_path)
    ids = tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)
    assert tokenizer.decode(ids) == unicodedata.normalize("NFC", text)


_TOKENIZERS: dict[Path, Any] = {}


def _hf_tokenizer(path: Path) -> Any:
    if path not in _TOKENIZERS:
        from transformers import AutoTokenizer

        _TOKENIZERS[path] = AutoTokenizer.from_pretrained(path)
    return _TOKENIZERS[path]


def test_cached_build_is_reused(demo_model_path: Path) -> None:
    from pydantic_mlx.demo import build_demo_model

    messages: list[str] = []
    assert build_demo_model(demo_model_path.parent, progress=messages.append) == demo_model_path
    assert messages == [f"Using cached model {demo_model_path}"]


def test_random_model_is_seeded_and_cached_by_recipe(tmp_path: Path) -> None:
    first = build_random_model(tmp_path / "a", seed=1)
    again = build_random_model(tmp_path / "b", seed=1)
    other = build_random_model(tmp_path / "a", seed=2)
    assert first.name == again.name != other.name
    assert (first / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()
    assert (first / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()
    assert (first / "tokenizer.json").read_bytes() == (other / "tokenizer.json").read_bytes()


def test_concurrent_builds_leave_one_complete_folder(tmp_path: Path) -> None:
    code = "import sys; from pathlib import Path; from pydantic_mlx.demo import build_random_model; "
    code += "print(build_random_model(Path(sys.argv[1]), seed=3))"
    builders = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    paths = {builder.communicate(timeout=300)[0].strip() for builder in builders}
    assert [builder.returncode for builder in builders] == [0, 0]
    assert len(paths) == 1
    assert [path.name for path in tmp_path.iterdir()] == [Path(paths.pop()).name]  # no half-built leftovers


def test_random_model_loads_and_generates(random_model_path: Path) -> None:
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = mlx_lm.load(str(random_model_path))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    responses = list(
        mlx_lm.stream_generate(model, tokenizer, prompt, max_tokens=5, sampler=make_sampler(0.0))
    )
    assert 1 <= len(responses) <= 5
    config = json.loads((random_model_path / "config.json").read_text())
    # Two layers (the demo has one): a two-process pipeline run gives each rank a layer.
    assert {key: config[key] for key in RANDOM_MODEL_CONFIG} == RANDOM_MODEL_CONFIG
    assert config["num_hidden_layers"] == 2


def test_recipe_changes_with_the_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic_mlx.demo import _build
    from pydantic_mlx.demo.scenarios import Scenario, ScriptedTurn

    before = _build._recipe(_build.MODEL_CONFIG, seed=0, trained=True)  # pyright: ignore[reportPrivateUsage]
    extra = Scenario(name="extra", prompt="Hi?", turns=(ScriptedTurn("Hi."),))
    monkeypatch.setattr(_build, "SCENARIOS", (*SCENARIOS, extra))
    assert _build._recipe(_build.MODEL_CONFIG, seed=0, trained=True) != before  # pyright: ignore[reportPrivateUsage]


def test_recipe_ignores_the_pydantic_ai_version_but_not_the_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Installing the eval extra moves pydantic-ai-slim to the version pydantic-evals pins; the demo
    # model must not be retrained (nor its folder change) for that alone.
    from pydantic_mlx.demo import _build

    real_version = _build.version
    before = _build._recipe(_build.MODEL_CONFIG, seed=0, trained=True)  # pyright: ignore[reportPrivateUsage]
    monkeypatch.setattr(
        _build, "version", lambda name: "0.0.1" if name == "pydantic-ai-slim" else real_version(name)
    )
    assert _build._recipe(_build.MODEL_CONFIG, seed=0, trained=True) == before  # pyright: ignore[reportPrivateUsage]
    monkeypatch.setattr(_build, "version", lambda name: "0.0.1" if name == "mlx" else real_version(name))
    assert _build._recipe(_build.MODEL_CONFIG, seed=0, trained=True) != before  # pyright: ignore[reportPrivateUsage]
    # What pydantic-ai contributes, the requests it renders, is in the recipe.
    monkeypatch.setattr(_build, "version", real_version)
    monkeypatch.setattr(_build, "tool_schemas", lambda tools: [{"changed": True}])
    assert _build._recipe(_build.MODEL_CONFIG, seed=0, trained=True) != before  # pyright: ignore[reportPrivateUsage]


@pytest.mark.anyio
async def test_the_recipe_is_computed_inside_a_running_event_loop() -> None:
    # `build_demo_model()` in an `async def main` (examples/streaming.py --demo) captures the
    # scenarios' requests with pydantic-ai's run_sync, which cannot nest in a running loop.
    from pydantic_mlx.demo import _build

    assert _build._recipe(_build.MODEL_CONFIG, seed=0, trained=True)["requests"]  # pyright: ignore[reportPrivateUsage]
