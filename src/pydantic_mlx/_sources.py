"""Where a model comes from: a local folder, a Hugging Face repo id, or a short name such as
`"Qwen2.5-Coder-1.5B"`, checked when an `MLXModel` is made rather than at its first request.

A mistake here used to surface only when the weights were loaded (a Hugging Face repo-id
validation error for `"/nonexistent"`, a bare `FileNotFoundError` for a folder that is not a
model), far from the line that made it. Every check below is a stat of the file system or a
look-up in the local Hugging Face cache: nothing is downloaded or loaded.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from pydantic_ai.exceptions import UserError

__all__ = [
    "MODEL_ALIASES",
    "cached_snapshot",
    "chat_template_on_disk",
    "download_error",
    "resolve_adapter",
    "resolve_model",
]

MODEL_ALIASES: dict[str, str] = {
    "Qwen2.5-Coder-0.5B": "mlx-community/Qwen2.5-Coder-0.5B-Instruct-4bit",
    "Qwen2.5-Coder-1.5B": "mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit",
    "Qwen2.5-Coder-3B": "mlx-community/Qwen2.5-Coder-3B-Instruct-4bit",
    "Qwen2.5-Coder-7B": "mlx-community/Qwen2.5-Coder-7B-Instruct-4bit",
    "Qwen2.5-Coder-14B": "mlx-community/Qwen2.5-Coder-14B-Instruct-4bit",
    "Qwen2.5-Coder-32B": "mlx-community/Qwen2.5-Coder-32B-Instruct-4bit",
    "Qwen3-0.6B": "mlx-community/Qwen3-0.6B-4bit",
    "Qwen3-1.7B": "mlx-community/Qwen3-1.7B-4bit",
    "Qwen3-4B": "mlx-community/Qwen3-4B-4bit",
    "Qwen3-8B": "mlx-community/Qwen3-8B-4bit",
    "Qwen3-14B": "mlx-community/Qwen3-14B-4bit",
    "Qwen3-32B": "mlx-community/Qwen3-32B-4bit",
    "Qwen3-Coder-30B-A3B": "mlx-community/Qwen3-Coder-30B-A3B-Instruct-4bit",
    "Llama-3.2-1B": "mlx-community/Llama-3.2-1B-Instruct-4bit",
    "Llama-3.2-3B": "mlx-community/Llama-3.2-3B-Instruct-4bit",
    "Llama-3.1-8B": "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit",
    "Mistral-7B": "mlx-community/Mistral-7B-Instruct-v0.3-4bit",
}
"""Short names → the mlx-community build people usually mean: the instruction-tuned model,
quantized to 4 bits (Qwen3 releases are instruction-tuned under their plain name). Matched
ignoring case and an `-Instruct` suffix; any other model is named by its repo id or folder."""

_ADAPTER_FILES = ("adapter_config.json", "adapters.safetensors")
"""What `mlx_lm`'s `load_adapters` reads from an adapter folder."""

_ALIAS_KEYS = {name.lower(): name for name in MODEL_ALIASES}


def resolve_model(source: str | Path) -> str:
    """The absolute folder or the Hugging Face repo id `mlx_lm.load` is given for `source`.

    Raises `UserError` for a path that does not exist or is not a model folder, an unknown short
    name (listing close ones), and a string that is neither a path nor a valid repo id.
    """
    path = Path(source).expanduser()
    if isinstance(source, Path) or path.exists() or _looks_local(source):
        return str(_model_folder(path, given=str(source)))
    if "/" not in source:
        return _alias(source)
    _check_repo_id(source)
    return source


def resolve_adapter(adapter_path: str | Path) -> str:
    """The absolute folder of a LoRA adapter (as `mlx_lm.lora` writes it), checked before any load."""
    folder = Path(adapter_path).expanduser().resolve()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise UserError(
            f"adapter_path {str(adapter_path)!r} {what}: pass the folder `mlx_lm.lora` wrote "
            "(the one holding adapter_config.json and adapters.safetensors)"
        )
    missing = [name for name in _ADAPTER_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(
            f"adapter_path {str(adapter_path)!r} is not a LoRA adapter folder: it has no "
            f"{' or '.join(missing)} "
            "(pass the folder `mlx_lm.lora --adapter-path` wrote)"
        )
    return str(folder)


def _looks_local(source: str) -> bool:
    """A repo id is `owner/name`; anything absolute, relative-looking, home-based or deeper is a path."""
    return source.startswith(("/", ".", "~", "\\")) or source.count("/") > 1 or source.endswith("/")


def _model_folder(path: Path, *, given: str) -> Path:
    folder = path.resolve()
    if not folder.exists():
        raise UserError(
            f"model folder {given!r} does not exist; pass an MLX model folder, a Hugging Face repo id "
            f"('owner/name', e.g. {MODEL_ALIASES['Qwen2.5-Coder-1.5B']!r}) or a short name "
            "(MLXModel.list_aliases())"
        )
    if not folder.is_dir():
        raise UserError(f"model path {given!r} is a file; pass the folder with config.json and the weights")
    if not (folder / "config.json").is_file():
        raise UserError(
            f"{given!r} is not an MLX model folder: it has no config.json (pass the folder that "
            "`mlx_lm.convert` or a Hugging Face download made, or a repo id)"
        )
    if not any(folder.glob("model*.safetensors")):
        raise UserError(f"{given!r} is not an MLX model folder: it has no model*.safetensors weights")
    return folder


def _alias(name: str) -> str:
    key = name.lower().removesuffix("-instruct")
    if key not in _ALIAS_KEYS:
        close = difflib.get_close_matches(key, list(_ALIAS_KEYS), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(_ALIAS_KEYS[c]) for c in close)}?" if close else ""
        raise UserError(
            f"unknown model name {name!r}.{hint} Pass a Hugging Face repo id ('owner/name'), a local "
            f"folder, or a short name from MLXModel.list_aliases(): {', '.join(MODEL_ALIASES)}"
        )
    repo_id = MODEL_ALIASES[_ALIAS_KEYS[key]]
    return cached_snapshot(repo_id) or repo_id


def cached_snapshot(repo_id: str) -> str | None:
    """The local folder of `repo_id` when the Hugging Face cache holds it (so no network is needed)."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(config, str) and any(Path(config).parent.glob("model*.safetensors")):
        return str(Path(config).parent)
    return None


def _check_repo_id(source: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(source)
    except HFValidationError as error:
        raise UserError(
            f"{source!r} is neither an existing folder nor a valid Hugging Face repo id "
            f"('owner/name'): {error}"
        ) from None


def download_error(source: str, error: Exception) -> UserError | None:
    """What to tell the user when loading the repo id `source` failed in the Hugging Face download
    (`None` when `error` is something else).

    Only a load can find these out (the Hub is asked then, not at construction). Bare, they read as a
    connection traceback from deep inside huggingface_hub: offline with the model not cached, a repo
    id that does not exist, a gated or private repo.
    """
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    if Path(source).is_dir():
        return None
    or_folder = "or pass a local model folder"
    if isinstance(error, GatedRepoError):
        return UserError(
            f"{source!r} is a gated Hugging Face repo: accept its terms on its Hub page and log in "
            f"(`hf auth login`), {or_folder}"
        )
    not_found = isinstance(error, HfHubHTTPError) and error.response.status_code == 401
    if isinstance(error, RepositoryNotFoundError) or not_found:
        return UserError(
            f"there is no model {source!r} on the Hugging Face Hub (or it is private and you are not "
            f"logged in): check the repo id, use a short name (MLXModel.list_aliases()) {or_folder}"
        )
    if isinstance(error, LocalEntryNotFoundError):
        return UserError(
            f"cannot download {source!r}: the Hugging Face Hub could not be reached (no network, or "
            "HF_HUB_OFFLINE=1) and the local Hugging Face cache does not hold the whole model. Download "
            f"it once while online (`hf download {source}`), {or_folder}"
        )
    return None


def chat_template_on_disk(source: str) -> str | None:
    """The chat template of a resolved source without loading its tokenizer: from its folder, or
    from the Hugging Face cache for a repo id; `None` when it is not on disk (not downloaded yet).

    Read as transformers reads it: `chat_template.jinja` first, else `tokenizer_config.json`'s
    `chat_template` (a string, or a list of named templates whose `default` is used).
    """
    folder = Path(source)
    if not folder.is_dir():
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, "tokenizer_config.json")
        if not isinstance(cached, str):
            return None
        folder = Path(cached).parent
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    template = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) else None
