"""`MLXModel`: a PydanticAI model that runs an MLX language model in this process.

    from pydantic_ai import Agent
    from pydantic_mlx import MLXModel

    agent = Agent(MLXModel("mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit"), tools=[read_file])

The conversation is rendered with the tokenizer's own chat template (tools included), generated
on the model's own thread, and the output is read by `pydantic_mlx.parsers`, which turns tool
calls written as text (tagged, fenced JSON, bare JSON, XML, ...) into `ToolCallPart`s.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, cast

import anyio
import mlx.core as mx
from pydantic_ai.exceptions import ModelConnectionError, UserError
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
)
from pydantic_ai.models import (
    Model,
    ModelRequestParameters,
    StreamedResponse,
    check_allow_model_requests,
)
from pydantic_ai.profiles import ModelProfile, ModelProfileSpec, merge_profile
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import RunContext, ToolDefinition
from pydantic_ai.usage import RequestUsage

from ._batching import DEFAULT_MAX_BATCH_SIZE, BatchScheduler, batch_scheduler
from ._chat import (
    CHAT_TEMPLATE_PROFILE,
    ChatTokenizer,
    render_prompt_and_shared_prefix,
    request_instructions,
)
from ._disk_cache import DEFAULT_DISK_CACHE_BYTES, default_prompt_cache_dir
from ._distributed import (
    SHARDINGS,
    DistributedGroupError,
    Follower,
    Leader,
    Sharding,
    ShardLoader,
    check_no_other_model,
    open_session,
    resolve_group,
)
from ._generation import start_generation
from ._install import install_hint
from ._loading import LoadedModel, ModelSource, loaded_model
from ._prompt_cache import DEFAULT_PROMPT_CACHE_BYTES, DEFAULT_PROMPT_CACHE_ENTRIES
from ._request_plan import (
    Budget,
    Constraint,
    RequestPlan,
    demands_calls,
    offered_tools,
    opens_reasoning,
    prompt_opens_reasoning,
    thinking_budget,
)
from ._request_settings import (
    DEFAULT_MAX_TOKENS,
    context_length,
    fitted_to_context,
    generation_options,
    vocabulary_size,
)
from ._response import MLXStreamedResponse
from ._sources import MODEL_ALIASES, chat_template_on_disk
from ._thinking import thinking_switch
from ._thinking_budget import reasoning_markers
from .constrained import is_available as constrained_decoding_available
from .parsers import (
    available_formats,
    detect_format,
)

__all__ = ["DEFAULT_MAX_TOKENS", "MLXModel", "MLXModelSettings", "MLXStreamedResponse"]


class MLXModelSettings(ModelSettings, total=False):
    """Settings of `MLXModel`: PydanticAI's own, and these (prefixed `mlx_`, as other models prefix theirs).

    PydanticAI's `thinking` (`True`, `False` or an effort level) is carried to the chat template's
    own switch (`enable_thinking`, `thinking`, `reasoning_effort`); see docs/model.md.
    """

    mlx_thinking_budget: int
    """Reasoning tokens allowed per response. Once the model has written this many inside its
    reasoning block, the block's closer (`</think>`, harmony's `<|end|>`, ...) is forced and the
    model goes on to its answer. `0` closes the block as soon as it opens. Applies where the chat
    template shows a reasoning block; `provider_details["thinking_budget"]` reports what was spent."""


class MLXModel(Model):
    """A local MLX model, loaded in-process with `mlx_lm`, as a PydanticAI model.

    Args:
        model: A Hugging Face id (`"mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit"`), a short
            name from `MLXModel.list_aliases()` (`"Qwen2.5-Coder-1.5B"`), a local model folder, or
            an already loaded `(model, tokenizer)` pair from `mlx_lm.load`. A folder that does not
            exist or is not a model, and an unknown short name, raise `UserError` here. Weights
            load on the first request and are shared by every `MLXModel` naming the same model
            and adapter.
        adapter_path: A LoRA adapter folder (as written by `mlx_lm.lora`) to apply on load.
        tool_format: How the model writes tool calls: a name from
            `pydantic_mlx.parsers.available_formats()`, or `None` (the default) to detect it from
            the chat template (`"hermes"` for Qwen2.5, `"qwen3_coder"` for Qwen3-Coder, ...), which
            falls back to `"auto"` (recognise every format in the text) for unknown templates.
        model_name: Name reported in responses; defaults to the id or folder name.
        settings: Default model settings for every request. Greedy decoding (`temperature=0`)
            unless a temperature is set; at most `DEFAULT_MAX_TOKENS` tokens unless `max_tokens` is.
        profile: Overrides of the model profile.
        prompt_cache_entries: How many conversations' KV caches to keep for reuse (per loaded model).
        prompt_cache_bytes: Memory bound of those caches (per loaded model).
        prompt_cache_dir: A folder where the KV cache of the prompt prefix every conversation
            shares (system prompt and tools) is kept across processes: a new process with the same
            agent prefills only what follows it (`usage.cache_read_tokens` says how much it read).
            Files are keyed by the model's weights (adapter, dtype, quantization included) and the
            exact tokens; a damaged or foreign file is ignored with a warning. Shared safely by
            several processes. `True` is `~/.cache/pydantic-mlx/prompt-cache` (or under
            `$PYDANTIC_MLX_CACHE`). See docs/model.md and `pydantic-mlx cache`.
        prompt_cache_disk_bytes: Disk bound of that folder; least recently used files go first.
        constrained: Grammar-constrained decoding (llguidance): every tool call the model opens
            is kept valid for a declared tool's schema, `tool_choice='required'` makes the answer a
            call, and `NativeOutput` works (the answer is JSON valid against the output schema).
            `"auto"` (the default) uses it when llguidance is installed, which it is unless
            pydantic-mlx was installed without its dependencies; `False` turns it off. See
            `pydantic_mlx.constrained` and docs/constrained.md (why it is on by default).
        batching: Generate concurrent requests on the same loaded model together (continuous
            batching: a request joins the batch when it arrives and leaves when it ends), which
            multiplies the throughput of concurrent agent runs; each keeps its own settings and
            stream. `False` generates one request at a time, in arrival order. See docs/batching.md.
            Unset (`None`): on, except for a distributed model, which generates one request at a
            time (`batching=True` with `distributed` raises `UserError`).
        max_batch_size: Requests decoded together at most (per loaded model); more wait their turn.
        max_batch_bytes: Bound on the batch's KV memory (per loaded model), estimated per request
            from its prompt and `max_tokens`; a newcomer waits while it would pass the bound.
        distributed: Split the model across the processes of an `mx.distributed` group (`True`:
            `mx.distributed.init()`, the group `mlx.launch` sets up; or a group): every rank runs
            the same script and makes this `MLXModel`, which loads that rank's shard at once;
            rank 0 runs the agent, every other rank calls `follow()`, and `close()` on rank 0 (or
            its exit) releases them. In a group of one process, the whole model. A Hugging Face id
            downloads only the rank's own files (pipeline sharding); a `(model, tokenizer)` pair
            is taken as this rank's shard already. See docs/distributed.md.
        sharding: How a distributed model is split: `"tensor"` (every layer split across the
            ranks), `"pipeline"` (each rank holds a run of layers) or `"auto"` (tensor where
            mlx-lm offers it for the architecture, else pipeline). An architecture with neither
            raises `UserError`.

    Settings honoured: `max_tokens`, `temperature`, `top_p`, `top_k`, `seed`, `stop_sequences`,
    `presence_penalty`, `frequency_penalty`, `logit_bias` (token ids as keys), `tool_choice`
    (`'none'` renders no tools; `'required'` or a list of names keeps text out of the answer, so
    the agent asks again for a call), `parallel_tool_calls=False` (generation stops after the
    first complete call), `thinking` (to the chat template's switch; where it has none, and
    `thinking=False`, the reasoning block is closed as soon as it opens) and `MLXModelSettings`'
    `mlx_thinking_budget`. The ones in `unsupported_settings` are ignored.
    """

    unsupported_settings = frozenset(
        {"timeout", "max_retries", "extra_headers", "extra_body", "citations", "service_tier"}
    )
    # Chat templates carry text only: files are replaced by a note before they reach the renderer.
    _unsupported_file_inputs = frozenset({"image", "document", "audio", "video"})

    def __init__(
        self,
        model: ModelSource,
        *,
        adapter_path: str | Path | None = None,
        tool_format: str | None = None,
        model_name: str | None = None,
        settings: ModelSettings | None = None,
        profile: ModelProfileSpec | None = None,
        prompt_cache_entries: int = DEFAULT_PROMPT_CACHE_ENTRIES,
        prompt_cache_bytes: int = DEFAULT_PROMPT_CACHE_BYTES,
        prompt_cache_dir: str | Path | bool | None = None,
        prompt_cache_disk_bytes: int = DEFAULT_DISK_CACHE_BYTES,
        constrained: bool | Literal["auto"] = "auto",
        batching: bool | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_bytes: int | None = None,
        distributed: bool | mx.distributed.Group = False,
        sharding: Sharding = "auto",
    ) -> None:
        if not isinstance(constrained, bool) and constrained != "auto":
            raise UserError(f'constrained must be True, False or "auto", not {constrained!r}')
        if constrained is True and not constrained_decoding_available():
            raise UserError(f"constrained=True needs llguidance: {install_hint('constrained')}")
        if tool_format is not None and tool_format not in available_formats():
            raise UserError(f"unknown tool_format {tool_format!r}; choose from {available_formats()}")
        _check_source(model)
        _check_limit("prompt_cache_entries", prompt_cache_entries, minimum=0)
        _check_limit("prompt_cache_bytes", prompt_cache_bytes, minimum=0)
        _check_limit("max_batch_size", max_batch_size, minimum=1)
        if max_batch_bytes is not None:
            _check_limit("max_batch_bytes", max_batch_bytes, minimum=1)
        if batching is not None and not isinstance(cast(Any, batching), bool):
            raise UserError(f"batching must be True or False, not {batching!r}")
        group = _distributed_group(distributed, sharding, batching=batching, adapter_path=adapter_path)
        if group is not None and isinstance(model, tuple) and sharding != "auto":
            raise UserError(
                "sharding applies where MLXModel loads the model; a pair is taken as sharded already"
            )
        generation_options(settings or {}, vocabulary=None)  # a bad default setting fails here
        if prompt_cache_disk_bytes < 1:
            raise UserError("prompt_cache_disk_bytes must be at least 1")
        if prompt_cache_dir is True:
            prompt_cache_dir = default_prompt_cache_dir()
        elif prompt_cache_dir is False:
            prompt_cache_dir = None
        if prompt_cache_dir is not None and Path(prompt_cache_dir).expanduser().is_file():
            raise UserError(f"prompt_cache_dir {str(prompt_cache_dir)!r} is a file, not a folder")
        if isinstance(model, tuple) and adapter_path is not None:
            raise UserError(
                "adapter_path applies when MLXModel loads the model; apply it before passing a pair"
            )
        loader = ShardLoader(group, sharding) if group is not None else None
        self._loaded = loaded_model(
            model,
            adapter_path=adapter_path,
            prompt_cache_entries=prompt_cache_entries,
            prompt_cache_bytes=prompt_cache_bytes,
            prompt_cache_dir=prompt_cache_dir,
            prompt_cache_disk_bytes=prompt_cache_disk_bytes,
            loader=loader,
            # One rank's shard is not the whole model from the same folder.
            variant=(sharding, group.rank(), group.size()) if group is not None else None,
        )
        self._group = group
        self._session: Leader | Follower | None = None
        if group is not None:
            if group.size() > 1:
                check_no_other_model(self._loaded)
            # Every rank loads its shard where the model is made, in step with the others: the
            # followers need it before they can follow, and rank 0's later collectives need them.
            self._loaded.load_sync()
            if group.size() > 1:
                self._session = open_session(self._loaded, group, loader.chosen if loader else None)
        # One scheduler per loaded model, shared by every MLXModel on it: their requests batch together.
        self._scheduler: BatchScheduler | None = (
            batch_scheduler(self._loaded, max_batch_size=max_batch_size, max_batch_bytes=max_batch_bytes)
            if (batching if batching is not None else group is None)
            else None
        )
        self._model_name = model_name or _default_name(model)
        self._tool_format = tool_format
        self._detected_format: str | None = None
        self._constrained = constrained is True or (
            constrained == "auto" and constrained_decoding_available()
        )
        super().__init__(settings=settings, profile=profile)

    @property
    def model_name(self) -> str:
        """The model's name (Hugging Face id, folder name, or the `model_name` given)."""
        return self._model_name

    @property
    def system(self) -> str:
        """The provider name reported in responses: `"mlx"`."""
        return "mlx"

    @property
    def provider(self) -> None:
        return None

    @property
    def loaded(self) -> LoadedModel:
        """The shared weights, tokenizer, prompt cache and generation thread behind this model."""
        return self._loaded

    @staticmethod
    def list_aliases() -> dict[str, str]:
        """The short model names `MLXModel` accepts, and the mlx-community repo each one loads."""
        return dict(MODEL_ALIASES)

    @property
    def tool_format(self) -> str:
        """The tool-call format used to read the output: `tool_format` if given, else detected from
        the chat template (read from the model's files before it loads; `"auto"` for a Hugging
        Face model that is not downloaded yet)."""
        if self._tool_format is not None:
            return self._tool_format
        if self._detected_format is None:
            if not self._loaded.is_loaded:
                # Read from the model's files; "auto" only for a hub model not downloaded yet.
                source = self._loaded.source
                on_disk = chat_template_on_disk(source) if isinstance(source, str) else None
                return detect_format(on_disk) if on_disk is not None else "auto"
            template = getattr(self._loaded.tokenizer, "chat_template", None)
            self._detected_format = detect_format(template if isinstance(template, str) else None)
        return self._detected_format

    async def load(self) -> None:
        """Load the weights now instead of on the first request."""
        await self._loaded.load()

    @property
    def group(self) -> mx.distributed.Group | None:
        """The `mx.distributed` group a distributed model is split across (None when not distributed)."""
        return self._group

    @property
    def rank(self) -> int:
        """This process's rank in the distributed group: 0 runs agents, the others `follow()`.
        0 when the model is not distributed."""
        return self._group.rank() if self._group is not None else 0

    def follow(self) -> None:
        """On a rank other than 0 of a distributed model: run the forward passes of rank 0's
        requests, in step with it, until rank 0 closes the model or exits (blocking).

        Raises `DistributedGroupError` if rank 0 crashes or disconnects (its connection is gone),
        and `UserError` on rank 0 or for a model that is not distributed.
        """
        self._follower().follow()

    async def afollow(self) -> None:
        """`follow`, awaited: the work runs on the model's own thread and the event loop stays free.
        Cancelling the awaiting task does not stop the thread, which waits for rank 0's next word."""
        await self._follower().afollow()

    def close(self) -> None:
        """On rank 0 of a distributed model: release the followers (their `follow()` returns) once
        the requests already started have ended; later requests raise `UserError`. Also done at
        interpreter exit. Every `MLXModel` on the same shard shares the group, so all are closed.
        Does nothing on other ranks or for a model that is not distributed."""
        if isinstance(self._session, Leader):
            self._session.close()

    def _follower(self) -> Follower:
        if isinstance(self._session, Follower):
            return self._session
        if self._group is None:
            raise UserError("follow() is for distributed models: MLXModel(..., distributed=True)")
        if self._group.size() == 1:
            raise UserError("this distributed group has one process: there is no rank 0 to follow")
        raise UserError("rank 0 runs the agent: follow() is for the other ranks")

    @property
    def constrained(self) -> bool:
        """Whether generation is grammar-constrained (see the `constrained` argument)."""
        return self._constrained

    def _provider_model_profile(self) -> ModelProfile:
        if self._constrained:
            # The grammar fixes the JSON's shape; the schema in the instructions tells the model
            # what the fields mean.
            return merge_profile(
                CHAT_TEMPLATE_PROFILE,
                ModelProfile(
                    supports_json_schema_output=True, native_output_requires_schema_in_instructions=True
                ),
            )
        return CHAT_TEMPLATE_PROFILE

    def prepare_request(
        self,
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> tuple[ModelSettings | None, ModelRequestParameters]:
        if model_request_parameters.output_mode == "native" and not self._constrained:
            raise UserError(
                "NativeOutput needs constrained decoding: MLXModel(..., constrained=True) "
                f"({install_hint('constrained')}); or use ToolOutput (the default) "
                "or PromptedOutput."
            )
        model_settings, model_request_parameters = super().prepare_request(
            model_settings, model_request_parameters
        )
        generation_options(model_settings or {}, vocabulary=None)  # before any work
        return model_settings, model_request_parameters

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        """Generate a whole response (the same code as `request_stream`, consumed to the end)."""
        async with self.request_stream(messages, model_settings, model_request_parameters) as stream:
            async for _ in stream:
                pass
        return stream.get()

    async def count_tokens(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> RequestUsage:
        """The prompt's token count, rendered exactly as `request` would render it."""
        model_settings, model_request_parameters = self.prepare_request(
            model_settings, model_request_parameters
        )
        await self._loaded.load()
        plan = self._plan(messages, model_settings or {}, model_request_parameters)
        return RequestUsage(input_tokens=len(plan.prompt))

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncGenerator[StreamedResponse]:
        """Generate a response, streamed as the tokens arrive. Leaving early stops generation."""
        check_allow_model_requests()
        if isinstance(self._session, Follower):
            raise UserError(
                f"rank {self.rank} of a distributed model follows rank 0: call model.follow() here; "
                "only rank 0 runs agents"
            )
        model_settings, model_request_parameters = self.prepare_request(
            model_settings, model_request_parameters
        )
        await self._loaded.load()
        plan = self._plan(messages, model_settings or {}, model_request_parameters)
        try:
            if isinstance(self._session, Leader):
                generation = self._session.start(plan.prompt, plan.options)
            elif self._scheduler is not None:
                generation = self._scheduler.start(plan.prompt, plan.options)
            else:
                generation = start_generation(self._loaded, plan.prompt, plan.options)
        except DistributedGroupError as error:
            raise ModelConnectionError(self._model_name, str(error)) from error
        try:
            yield MLXStreamedResponse(
                model_request_parameters=model_request_parameters,
                _model_name=self._model_name,
                _plan=plan,
                _generation=generation,
            )
        except DistributedGroupError as error:
            # A lost rank is the local model's lost connection: FallbackModel and retries see it so.
            raise ModelConnectionError(self._model_name, str(error)) from error
        finally:
            with anyio.CancelScope(shield=True):
                await generation.aclose()

    def _plan(
        self, messages: list[ModelMessage], settings: ModelSettings, params: ModelRequestParameters
    ) -> RequestPlan:
        tokenizer = self._loaded.tokenizer
        tools, text_is_answer = offered_tools(settings, params)
        template = getattr(tokenizer, "chat_template", None)
        template = template if isinstance(template, str) else None
        switch = thinking_switch(template, params.thinking)
        budget = thinking_budget(settings, params, switch)
        calls_required = bool(tools) and demands_calls(settings, params)
        prompt, shared_prefix = render_prompt_and_shared_prefix(
            cast(ChatTokenizer, tokenizer),
            messages,
            tools,
            instructions=request_instructions(self, messages, params),
            template_kwargs=switch.template_kwargs,
            # Only a disk cache keeps it: finding it costs a tokenization of the prefix.
            find_shared_prefix=self._loaded.prompt_cache.disk is not None,
        )
        tail = tokenizer.decode(prompt[-8:]).rstrip() if prompt else ""
        in_reasoning = prompt_opens_reasoning(tail, self.tool_format)
        budget_plan = None
        if budget is not None:
            markers = reasoning_markers(template, self.tool_format, tokenizer)
            budget_plan = Budget(budget, markers, in_reasoning or opens_reasoning(tail, markers))
        one_call_only = settings.get("parallel_tool_calls") is False
        constraint = self._constraint(params, tools, calls_required, one_call_only, in_reasoning)
        options = fitted_to_context(
            replace(generation_options(settings, vocabulary_size(self._loaded)), shared_prefix=shared_prefix),
            len(prompt),
            context_length(self._loaded),
            max_tokens_set="max_tokens" in settings,
        )
        # The budget comes last: where it forces the closer, nothing after it may unforce it.
        processors = tuple(p for p in (constraint, budget_plan) if p is not None and p.applies)
        if processors:
            options = replace(options, extra_processors=processors)
        return RequestPlan(
            prompt=prompt,
            options=options,
            tool_format=self.tool_format,
            tools=tools,
            excluded_tools=frozenset(params.tool_defs) - {t.name for t in tools},
            in_reasoning=in_reasoning,
            text_is_answer=text_is_answer,
            one_call_only=one_call_only,
            constraint=constraint,
            control_tokens=self._loaded.control_tokens,
            marker_tokens=self._loaded.marker_token_texts,
            thinking=switch.details(params.thinking) if params.thinking is not None else None,
            budget=budget_plan,
        )

    def _constraint(
        self,
        params: ModelRequestParameters,
        tools: list[ToolDefinition],
        calls_required: bool,
        one_call_only: bool,
        in_reasoning: bool,
    ) -> Constraint | None:
        """The grammar processor for this request, when constrained decoding is on and has work."""
        if not self._constrained:
            return None
        from .constrained import output_processor, tool_call_processor

        tokenizer, tool_format = self._loaded.tokenizer, self.tool_format
        # Thinking turned off: the template closed (or the budget forbids) any reasoning block, so
        # the grammar admits none before the answer.
        reasoning_allowed = params.thinking is not False
        if params.output_mode == "native" and params.output_object is not None and not calls_required:
            # The answer is the output object, or calls to the function tools the agent offers.
            schema = params.output_object.json_schema
            return Constraint(
                lambda: output_processor(
                    tokenizer,
                    schema,
                    tool_format=tool_format,
                    tools=tools,
                    parallel=not one_call_only,
                    in_reasoning=in_reasoning,
                    reasoning_allowed=reasoning_allowed,
                )
            )
        if not tools:
            return None
        # The agent takes the first output call and discards the rest: with output tools only,
        # a forced answer is one call (a random or confused model may otherwise go on writing
        # calls until `max_tokens` cuts one off).
        output_names = {t.name for t in params.output_tools}
        only_output = calls_required and all(t.name in output_names for t in tools)
        return Constraint(
            lambda: tool_call_processor(
                tokenizer,
                tool_format,
                tools,
                required=calls_required,
                parallel=not (one_call_only or only_output),
                in_reasoning=in_reasoning,
                reasoning_allowed=reasoning_allowed,
            )
        )


def _distributed_group(
    distributed: Any, sharding: Any, *, batching: bool | None, adapter_path: Any
) -> mx.distributed.Group | None:
    """The group of a distributed model (None if not distributed), once its arguments are checked."""
    if sharding not in SHARDINGS:
        raise UserError(f"sharding must be one of {', '.join(map(repr, SHARDINGS))}, not {sharding!r}")
    if distributed is False:
        if sharding != "auto":
            raise UserError("sharding applies to distributed models: MLXModel(..., distributed=True)")
        return None
    group = resolve_group(distributed)
    if batching:
        raise UserError(
            "batching is not available for distributed models yet: they generate one request at a "
            "time, every step mirrored by the other ranks (leave batching unset)"
        )
    if adapter_path is not None:
        raise UserError(
            "adapter_path cannot be used with distributed (mlx-lm's sharded loading applies no "
            "adapter): fuse it into the weights first with mlx_lm.fuse"
        )
    return group


def _check_source(model: Any) -> None:
    if isinstance(model, str | Path):
        return
    if isinstance(model, tuple) and len(model) == 2:  # pyright: ignore[reportUnknownArgumentType]
        return
    raise UserError(
        "model must be a Hugging Face id, a model folder or a (model, tokenizer) pair from "
        f"mlx_lm.load, not {model!r}"
    )


def _check_limit(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{name} must be an integer of at least {minimum}, not {value!r}")


def _default_name(model: ModelSource) -> str:
    if isinstance(model, tuple):
        return str(getattr(model[0], "model_type", None) or "mlx-model")
    path = Path(model).expanduser()
    if isinstance(model, Path) or path.exists():
        return path.resolve().name
    return str(model)
