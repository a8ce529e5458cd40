"""Model and adapter sources are checked when an `MLXModel` is made, not at its first request."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx2
import huggingface_hub.constants
import pytest
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
from pydantic_ai import Agent
from pydantic_ai.exceptions import UserError

from pydantic_mlx import MLXModel
from pydantic_mlx._sources import download_error


def _model_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "qwen2"}')
    (folder / "model.safetensors").write_bytes(b"")
    return folder


@pytest.mark.parametrize("given", ["/nonexistent", "./no-such-model", "~/no-such-model-here", "a/b/c"])
def test_a_local_path_that_does_not_exist_fails_at_construction(given: str) -> None:
    with pytest.raises(UserError, match=f"model folder {given!r} does not exist; pass an MLX model folder"):
        MLXModel(given)


def test_a_missing_path_object_fails_even_when_it_reads_like_a_repo_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        MLXModel(Path("owner/name"))


def test_a_folder_that_is_not_a_model_is_named_with_what_it_lacks(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"is not an MLX model folder: it has no config\.json"):
        MLXModel(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match=r"it has no model\*.safetensors weights"):
        MLXModel(str(tmp_path))
    with pytest.raises(UserError, match="is a file"):
        MLXModel(tmp_path / "config.json")


def test_an_adapter_folder_is_checked_at_construction(demo_model_path: Path, tmp_path: Path) -> None:
    missing = tmp_path / "adapter"
    with pytest.raises(UserError, match=f"adapter_path {str(missing)!r} does not exist"):
        MLXModel(demo_model_path, adapter_path=missing)
    missing.mkdir()
    with pytest.raises(UserError, match=r"it has no adapter_config\.json or adapters\.safetensors"):
        MLXModel(demo_model_path, adapter_path=missing)
    (missing / "adapter_config.json").write_text(json.dumps({"fine_tune_type": "lora"}))
    with pytest.raises(UserError, match=r"it has no adapters\.safetensors"):
        MLXModel(demo_model_path, adapter_path=str(missing))


def test_a_real_model_folder_and_a_repo_id_construct_without_loading(demo_model_path: Path) -> None:
    local = MLXModel(str(demo_model_path))
    assert local.loaded.source == str(demo_model_path.resolve())
    remote = MLXModel("mlx-community/some-model-4bit")  # not looked up: loading downloads it
    assert remote.loaded.source == "mlx-community/some-model-4bit"
    assert not remote.loaded.is_loaded


def test_a_string_that_is_neither_path_nor_repo_id_is_refused() -> None:
    with pytest.raises(UserError, match="neither an existing folder nor a valid Hugging Face repo id"):
        MLXModel("my model/v2")


@pytest.mark.parametrize("name", ["Qwen2.5-Coder-1.5B", "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct"])
def test_a_short_name_loads_the_4bit_instruct_build(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    model = MLXModel(name)
    assert model.loaded.source == "mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit"
    assert model.model_name == name


def test_a_short_name_already_in_the_hub_cache_is_found_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "models--mlx-community--Qwen2.5-Coder-0.5B-Instruct-4bit"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snapshot = _model_folder(repo / "snapshots" / "0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert MLXModel("Qwen2.5-Coder-0.5B").loaded.source == str(snapshot)


def test_an_unknown_short_name_lists_close_matches() -> None:
    with pytest.raises(UserError) as raised:
        MLXModel("Qwen2.5-Coder-1.6B")
    message = str(raised.value)
    assert message.startswith("unknown model name 'Qwen2.5-Coder-1.6B'. Did you mean 'Qwen2.5-Coder-1.5B'")
    assert "MLXModel.list_aliases()" in message
    with pytest.raises(UserError, match=r"unknown model name 'gpt-4o'\. Pass a Hugging Face repo id"):
        MLXModel("gpt-4o")


def test_list_aliases_is_the_documented_table() -> None:
    aliases = MLXModel.list_aliases()
    assert aliases["Qwen2.5-Coder-1.5B"] == "mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit"
    assert all(repo.startswith("mlx-community/") and repo.endswith("4bit") for repo in aliases.values())
    aliases.clear()  # a copy: the table itself is unchanged
    assert MLXModel.list_aliases()
    table = (Path(__file__).resolve().parent.parent / "docs" / "model.md").read_text(encoding="utf-8")
    for name, repo in MLXModel.list_aliases().items():
        assert f"| `{name}` | `{repo}` |" in table


@pytest.mark.anyio
async def test_tool_format_is_read_from_the_files_before_the_model_loads(
    demo_model_path: Path, tmp_path: Path
) -> None:
    # A copy: the session's other MLXModels on the demo folder share (and have loaded) its weights.
    folder = shutil.copytree(demo_model_path, tmp_path / "demo")
    model = MLXModel(folder)
    assert (model.tool_format, model.loaded.is_loaded) == ("hermes", False)
    await model.load()
    assert model.tool_format == "hermes"


def test_tool_format_follows_transformers_reading_of_the_template_files(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "coder")
    named = [
        {"name": "tool_use", "template": "<|python_tag|>"},
        {"name": "default", "template": "<tool_call><function=x><parameter=y>"},
    ]
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": named}))
    assert MLXModel(folder).tool_format == "qwen3_coder"
    (folder / "chat_template.jinja").write_text("{{ '<|python_tag|>' }}")  # takes precedence
    assert MLXModel(folder).tool_format == "llama3_json"
    assert MLXModel(folder, tool_format="hermes").tool_format == "hermes"
    assert MLXModel("mlx-community/not-downloaded-4bit").tool_format == "auto"  # known once loaded


def test_a_repo_id_that_cannot_be_downloaded_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Offline with an empty hub cache: the download fails at the first request (construction cannot
    # know), and says so in one line instead of a connection traceback from huggingface_hub.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    agent = Agent(MLXModel("Qwen2.5-Coder-0.5B"))
    with pytest.raises(UserError) as raised:
        agent.run_sync("hello")
    repo = "mlx-community/Qwen2.5-Coder-0.5B-Instruct-4bit"
    assert str(raised.value).startswith(
        f"cannot download {repo!r}: the Hugging Face Hub could not be reached"
    )
    assert f"`hf download {repo}`" in str(raised.value)


def test_a_repo_the_hub_refuses_is_named_with_the_fix() -> None:
    request = httpx2.Request("GET", "https://huggingface.co/api/models/owner/typo")
    missing = RepositoryNotFoundError("401", response=httpx2.Response(401, request=request))
    gated = GatedRepoError("403", response=httpx2.Response(403, request=request))
    assert str(download_error("owner/typo", missing)).startswith(
        "there is no model 'owner/typo' on the Hugging Face Hub (or it is private"
    )
    assert str(download_error("owner/typo", gated)).startswith("'owner/typo' is a gated Hugging Face repo")
    assert download_error("owner/typo", ValueError("a broken config.json")) is None
