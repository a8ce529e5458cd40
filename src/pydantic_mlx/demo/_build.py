"""Build the demo model folder (or take it from the on-disk cache) in mlx-lm's layout."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

from .._cache_dir import cache_root
from .._chat import chat_messages, render_request, request_instructions, request_tool_defs, tool_schemas
from ._template import CHAT_TEMPLATE
from ._tokenizer import EOS_TOKEN, save_tokenizer, train_tokenizer
from ._training import TrainingExample, TrainingSettings, train
from .scenarios import SCENARIOS, CapturedRequest, Scenario, capture_requests

Progress = Callable[[str], None]

VOCAB_SIZE = 1024
"""Byte-level BPE vocabulary size (256 bytes, merges, and the ChatML and tool-call tokens)."""

MODEL_CONFIG: dict[str, Any] = {
    "model_type": "qwen2",
    "architectures": ["Qwen2ForCausalLM"],
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
}
"""A one-layer Qwen2 architecture, small enough to train in seconds on CPU (~0.24 M parameters).

One layer learns the script in fewer steps than two here, and makes each step cheap: training runs
the last layer only where a token is trained (`_training`)."""

RANDOM_MODEL_CONFIG: dict[str, Any] = {**MODEL_CONFIG, "num_hidden_layers": 2}
"""The untrained models' architecture: two layers, so a two-process run can give each rank one
(pipeline sharding), and the seeded outputs the constrained-decoding tests were written on stay."""

TRAINING = TrainingSettings()

_RECIPE_LIBRARIES = ("mlx", "mlx-lm", "tokenizers", "transformers")
"""The libraries that train and load the model. pydantic-ai is not one: what it contributes, the
requests it makes, is part of the recipe itself (`_requests_digest`), so a pydantic-ai version
that renders the same prompts (e.g. the one an extra pins) keeps the cached model."""


def default_cache_dir() -> Path:
    """`$PYDANTIC_MLX_CACHE`, else `~/.cache/pydantic-mlx`."""
    return cache_root()


def build_demo_model(cache_dir: Path | None = None, *, progress: Progress | None = None) -> Path:
    """The folder of the trained demo model, built on first use and cached on disk.

    The model is a Qwen2-architecture MLX model that greedy decoding drives through every turn of
    `pydantic_mlx.demo.SCENARIOS`. The folder loads with `mlx_lm.load(path)`. It is rebuilt
    whenever its recipe (scenarios, chat template, hyper-parameters, code, library versions) changes.
    """
    return _cached("demo", _recipe(MODEL_CONFIG, seed=TRAINING.seed, trained=True), cache_dir, progress)


def build_random_model(
    cache_dir: Path | None = None, *, seed: int = 0, progress: Progress | None = None
) -> Path:
    """A folder with the demo model's tokenizer and chat template but untrained, seeded random weights."""
    recipe = _recipe(RANDOM_MODEL_CONFIG, seed=seed, trained=False)
    return _cached(f"random{seed}", recipe, cache_dir, progress)


def _quiet(message: str) -> None:
    del message


def _recipe(config: dict[str, Any], *, seed: int, trained: bool) -> dict[str, Any]:
    return {
        "trained": trained,
        "seed": seed,
        "config": config,
        "vocab_size": VOCAB_SIZE,
        "training": asdict(TRAINING) if trained else None,
        "template": CHAT_TEMPLATE,
        "scenarios": [_describe(scenario) for scenario in SCENARIOS],
        "requests": _requests_digest(),
        "code": _code_digest(),
        "libraries": {name: version(name) for name in _RECIPE_LIBRARIES},
    }


def _describe(scenario: Scenario) -> dict[str, Any]:
    return {
        "name": scenario.name,
        "prompt": scenario.prompt,
        "system_prompt": scenario.system_prompt,
        "in_tokenizer_corpus": scenario.in_tokenizer_corpus,
        "output_type": repr(scenario.output_type),
        "tools": [inspect.getsource(tool) for tool in scenario.tools],
        "turns": [repr(turn) for turn in scenario.turns],
        "model_settings": repr(scenario.model_settings),
    }


def _requests_digest() -> str:
    """A digest of every request the scenarios' agents make, as the chat template receives it."""
    digest = hashlib.sha256()
    for scenario in SCENARIOS:
        for request in capture_requests(scenario):
            tools = request_tool_defs(request.model_request_parameters)
            instructions = request_instructions(
                request.model, request.messages, request.model_request_parameters
            )
            rendered = {
                "messages": chat_messages(request.messages, instructions),
                "tools": tool_schemas(tools),
            }
            text = json.dumps(rendered, sort_keys=True, default=str)
            digest.update(_GENERATED_CALL_ID.sub("<call id>", text).encode())
    return digest.hexdigest()


_GENERATED_CALL_ID = re.compile(r"pyd_ai_[0-9a-f]{32}")
"""pydantic-ai's random tool-call ids: new in every capture, and not shown by the demo's template."""


def _code_digest() -> str:
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted([package / "_chat.py", *(package / "demo").glob("*.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _cached(kind: str, recipe: dict[str, Any], cache_dir: Path | None, progress: Progress | None) -> Path:
    say = progress or _quiet
    root = cache_dir if cache_dir is not None else default_cache_dir()
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    final = root / f"{kind}-{digest}"
    if (final / "model.safetensors").is_file():
        say(f"Using cached model {final}")
        return final
    root.mkdir(parents=True, exist_ok=True)
    # Built aside and renamed into place, so a reader never sees a half-written folder and two
    # concurrent builds cannot corrupt each other: the second rename fails and its copy is dropped.
    building = Path(tempfile.mkdtemp(prefix=f".{kind}-building-", dir=root))
    try:
        started = time.perf_counter()
        _build(building, recipe, say)
        say(f"Built in {time.perf_counter() - started:.1f} s")
        building.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        try:
            building.rename(final)
        except OSError:
            if not (final / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return final


def _build(folder: Path, recipe: dict[str, Any], say: Progress) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models.qwen2 import Model, ModelArgs
    from mlx_lm.utils import load_tokenizer

    say(f"Capturing the prompts of {len(SCENARIOS)} scenarios")
    captured = [(scenario, capture_requests(scenario)) for scenario in SCENARIOS]

    say("Training the tokenizer")
    tokenizer_model = train_tokenizer(_corpus(captured), VOCAB_SIZE)
    eos_id = tokenizer_model.token_to_id(EOS_TOKEN)
    config = {**recipe["config"], "vocab_size": tokenizer_model.get_vocab_size(), "eos_token_id": eos_id}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_tokenizer(tokenizer_model, folder)
    tokenizer = load_tokenizer(folder, eos_token_ids=[eos_id])

    with mx.stream(mx.cpu):
        mx.random.seed(recipe["seed"])
        model = Model(ModelArgs.from_dict(config))
        if recipe["trained"]:
            examples = _examples(captured, tokenizer)
            say(f"Training the model on {len(examples)} scripted turns")
            steps = train(model, examples, TRAINING, progress=say)
            say(f"Every scripted turn learned after {steps} steps")
        mx.eval(model.parameters())
        weights = dict(tree_flatten(model.parameters()))
        mx.save_safetensors(str(folder / "model.safetensors"), weights, metadata={"format": "mlx"})
    (folder / "pydantic_mlx_recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")


def _corpus(captured: Sequence[tuple[Scenario, list[CapturedRequest]]]) -> list[str]:
    texts = [CHAT_TEMPLATE]
    for scenario, requests in captured:
        if not scenario.in_tokenizer_corpus:
            continue
        for request in requests:
            tools = request_tool_defs(request.model_request_parameters)
            texts.extend(json.dumps(schema, ensure_ascii=False) for schema in tool_schemas(tools))
            instructions = request_instructions(
                request.model, request.messages, request.model_request_parameters
            )
            texts.extend(
                str(message.get("content", "")) for message in chat_messages(request.messages, instructions)
            )
            texts.append(request.turn.text)
    return texts


def _examples(
    captured: Sequence[tuple[Scenario, list[CapturedRequest]]], tokenizer: Any
) -> list[TrainingExample]:
    examples: list[TrainingExample] = []
    for scenario, requests in captured:
        for request in requests:
            prompt = render_request(
                request.model, tokenizer, request.messages, request.model_request_parameters
            )
            completion = tokenizer.encode(request.turn.text + EOS_TOKEN, add_special_tokens=False)
            examples.append(TrainingExample(scenario.name, tuple(prompt), tuple(completion)))
    return examples
