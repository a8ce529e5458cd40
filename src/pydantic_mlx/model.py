"""`MLXModel`: a PydanticAI model that runs an MLX language model in this process.

    from pydantic_ai import Agent
    from pydantic_mlx import MLXModel

    agent = Agent(MLXModel("mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit"), tools=[read_file])

The conversation is rendered with the tokenizer's own chat template (tools included), generated
on the model's own thread, and the output is read by `pydantic_mlx.parsers`, which turns tool
calls written as text (tagged, fenced JSON, bare JSON, XML, ...) into `ToolCallPart`s.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

import anyio
from pydantic_ai import _utils
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import (
    FinishReason,
    ModelMessage,
    ModelResponse,
    ModelResponseStreamEvent,
)
from pydantic_ai.models import (
    Model,
    ModelRequestParameters,
    StreamedResponse,
    check_allow_model_requests,
)
from pydantic_ai.models._tool_choice import resolve_tool_choice  # pyright: ignore[reportPrivateUsage]
from pydantic_ai.profiles import ModelProfile, ModelProfileSpec, merge_profile
from pydantic_ai.settings import ModelSettings, ToolOrOutput
from pydantic_ai.tools import RunContext, ToolDefinition
from pydantic_ai.usage import RequestUsage

from ._batching import DEFAULT_MAX_BATCH_SIZE, BatchScheduler, batch_scheduler
from ._chat import (
    CHAT_TEMPLATE_PROFILE,
    UNREAD_CALL_PROBLEM,
    ChatTokenizer,
    render_prompt_and_shared_prefix,
    request_instructions,
    request_tool_defs,
)
from ._disk_cache import DEFAULT_DISK_CACHE_BYTES, default_prompt_cache_dir
from ._generation import GenerationOptions, GenerationStats, GenerationStream, start_generation
from ._install import install_hint
from ._loading import LoadedModel, ModelSource, loaded_model
from ._prompt_cache import DEFAULT_PROMPT_CACHE_BYTES, DEFAULT_PROMPT_CACHE_ENTRIES
from ._sources import MODEL_ALIASES, chat_template_on_disk
from ._thinking import ThinkingSwitch, thinking_switch
from ._thinking_budget import ReasoningMarkers, ThinkingBudgetProcessor, reasoning_markers
from ._token_markers import MarkerText
from .constrained import is_available as constrained_decoding_available
from .parsers import (
    Event,
    MalformedCall,
    ParseProblem,
    StreamParser,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    TruncatedCall,
    UnknownTool,
    UnreadCall,
    available_formats,
    detect_format,
)

__all__ = ["DEFAULT_MAX_TOKENS", "MLXModel", "MLXModelSettings", "MLXStreamedResponse"]

DEFAULT_MAX_TOKENS = 2048
"""Completion length limit when `max_tokens` is not set."""

_REASONING_OPENERS = ("<think>",)
"""Prompt endings that mean the template already opened the model's reasoning block."""


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
        constrained: Grammar-constrained decoding (`pip install "pydantic-mlx[constrained]"`):
            every tool call the model opens is kept valid for a declared tool's schema,
            `tool_choice='required'` makes the answer a call, and `NativeOutput` works (the answer
            is JSON valid against the output schema). `"auto"` uses it when llguidance is
            installed. See `pydantic_mlx.constrained`.
        batching: Generate concurrent requests on the same loaded model together (continuous
            batching: a request joins the batch when it arrives and leaves when it ends), which
            multiplies the throughput of concurrent agent runs; each keeps its own settings and
            stream. `False` generates one request at a time, in arrival order. See docs/batching.md.
        max_batch_size: Requests decoded together at most (per loaded model); more wait their turn.
        max_batch_bytes: Bound on the batch's KV memory (per loaded model), estimated per request
            from its prompt and `max_tokens`; a newcomer waits while it would pass the bound.

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
        constrained: bool | Literal["auto"] = False,
        batching: bool = True,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_bytes: int | None = None,
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
        if not isinstance(cast(Any, batching), bool):
            raise UserError(f"batching must be True or False, not {batching!r}")
        _generation_options(settings or {}, vocabulary=None)  # a bad default setting fails here
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
        self._loaded = loaded_model(
            model,
            adapter_path=adapter_path,
            prompt_cache_entries=prompt_cache_entries,
            prompt_cache_bytes=prompt_cache_bytes,
            prompt_cache_dir=prompt_cache_dir,
            prompt_cache_disk_bytes=prompt_cache_disk_bytes,
        )
        # One scheduler per loaded model, shared by every MLXModel on it: their requests batch together.
        self._scheduler: BatchScheduler | None = (
            batch_scheduler(self._loaded, max_batch_size=max_batch_size, max_batch_bytes=max_batch_bytes)
            if batching
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
        _generation_options(model_settings or {}, vocabulary=None)  # before any work
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
        model_settings, model_request_parameters = self.prepare_request(
            model_settings, model_request_parameters
        )
        await self._loaded.load()
        plan = self._plan(messages, model_settings or {}, model_request_parameters)
        if self._scheduler is not None:
            generation = self._scheduler.start(plan.prompt, plan.options)
        else:
            generation = start_generation(self._loaded, plan.prompt, plan.options)
        try:
            yield MLXStreamedResponse(
                model_request_parameters=model_request_parameters,
                _model_name=self._model_name,
                _plan=plan,
                _generation=generation,
            )
        finally:
            with anyio.CancelScope(shield=True):
                await generation.aclose()

    def _plan(
        self, messages: list[ModelMessage], settings: ModelSettings, params: ModelRequestParameters
    ) -> _RequestPlan:
        tokenizer = self._loaded.tokenizer
        tools, text_is_answer = _offered_tools(settings, params)
        template = getattr(tokenizer, "chat_template", None)
        template = template if isinstance(template, str) else None
        switch = thinking_switch(template, params.thinking)
        budget = _thinking_budget(settings, params, switch)
        calls_required = bool(tools) and _calls_required(settings, params)
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
        in_reasoning = tail.endswith(_REASONING_OPENERS)
        budget_plan = None
        if budget is not None:
            markers = reasoning_markers(template, self.tool_format, tokenizer)
            budget_plan = _Budget(budget, markers, in_reasoning or _opens(tail, markers))
        one_call_only = settings.get("parallel_tool_calls") is False
        constraint = self._constraint(params, tools, calls_required, one_call_only, in_reasoning)
        options = _fitted_to_context(
            replace(
                _generation_options(settings, _vocabulary_size(self._loaded)), shared_prefix=shared_prefix
            ),
            len(prompt),
            _context_length(self._loaded),
            max_tokens_set="max_tokens" in settings,
        )
        # The budget comes last: where it forces the closer, nothing after it may unforce it.
        processors = tuple(p for p in (constraint, budget_plan) if p is not None and p.applies)
        if processors:
            options = replace(options, extra_processors=processors)
        return _RequestPlan(
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
    ) -> _Constraint | None:
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
            return _Constraint(
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
        return _Constraint(
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


@dataclass
class _Constraint:
    """Makes the request's grammar processor on the generation thread, and keeps it for its report."""

    make: Callable[[], Any]
    processor: Any = None
    applies: bool = True

    def __call__(self) -> Any:
        # Every grammar is compiled before the prompt is prefilled: a schema that cannot be
        # constrained fails the request, rather than leaving its calls silently unconstrained.
        try:
            processor = self.make()
            processor.check()
        except RecursionError:
            raise UserError(
                "constrained decoding cannot follow a schema of this request: it is nested too deeply"
            ) from None
        except ValueError as error:
            raise UserError(f"constrained decoding cannot follow a schema of this request: {error}") from None
        self.processor = processor
        return processor


@dataclass
class _Budget:
    """Makes the request's thinking-budget processor on the generation thread, and keeps it for its report."""

    budget: int
    markers: ReasoningMarkers | None
    """The family's reasoning block; `None` when the template shows none (the budget has nothing to close)."""
    in_reasoning: bool
    processor: ThinkingBudgetProcessor | None = None

    @property
    def applies(self) -> bool:
        return self.markers is not None

    def __call__(self) -> ThinkingBudgetProcessor:
        assert self.markers is not None
        self.processor = ThinkingBudgetProcessor(self.markers, self.budget, in_reasoning=self.in_reasoning)
        return self.processor

    def details(self) -> dict[str, Any]:
        """`provider_details["thinking_budget"]`: the budget, and what the response spent of it."""
        if self.markers is None:
            return {
                "budget": self.budget,
                "applied": False,
                "note": "the chat template shows no reasoning block",
            }
        processor = self.processor
        return {
            "budget": self.budget,
            "applied": True,
            "closer": self.markers.closer,
            "spent": processor.spent if processor is not None else 0,
            "closed_by_budget": bool(processor is not None and processor.closed_by_budget),
        }


def _opens(prompt_tail: str, markers: ReasoningMarkers | None) -> bool:
    """Whether the prompt ends by opening the family's reasoning block (the model reasons first)."""
    return markers is not None and prompt_tail.endswith(markers.opener.strip())


def _thinking_budget(
    settings: ModelSettings, params: ModelRequestParameters, switch: ThinkingSwitch
) -> int | None:
    """`mlx_thinking_budget`, checked; or 0 for `thinking=False` on a template that cannot turn
    thinking off (PydanticAI's rule: think as little as the model allows)."""
    budget = _integer(settings, "mlx_thinking_budget", None)
    if budget is not None and budget < 0:
        raise UserError(f"mlx_thinking_budget must not be negative, not {budget}")
    if params.thinking is False and not switch.honoured:
        return 0
    return budget


@dataclass(frozen=True)
class _RequestPlan:
    """Everything decided before generation starts."""

    prompt: list[int]
    options: GenerationOptions
    tool_format: str
    tools: list[ToolDefinition]
    excluded_tools: frozenset[str]
    """The agent's tools that `tool_choice` or pydantic-ai (a withheld `defer_loading` tool) keep
    from the model: a call to one is not a call."""
    in_reasoning: bool
    text_is_answer: bool
    """False when `tool_choice` demands a call: text is then kept as thinking, not offered as output."""
    one_call_only: bool
    constraint: _Constraint | None = None
    """The grammar logits processor, when constrained decoding applies to this request."""
    control_tokens: frozenset[str] = frozenset()
    marker_tokens: frozenset[str] = frozenset()
    """Special-token texts to keep out of text and thinking (the format's own markers excepted)."""
    thinking: dict[str, Any] | None = None
    """What the `thinking` setting became (`provider_details["thinking"]`), when it was set."""
    budget: _Budget | None = None
    """The thinking budget, when one applies (`mlx_thinking_budget`, or `thinking=False` without a switch)."""


@dataclass
class MLXStreamedResponse(StreamedResponse):
    """The streamed response of `MLXModel`: parser events mapped to parts as tokens arrive."""

    _model_name: str
    _plan: _RequestPlan
    _generation: GenerationStream
    _timestamp: datetime = field(default_factory=_utils.now_utc)

    async def _get_event_iterator(self) -> AsyncIterator[ModelResponseStreamEvent]:
        plan = self._plan
        parser = StreamParser(
            plan.tool_format,
            plan.tools,
            in_reasoning=plan.in_reasoning,
            drop=plan.control_tokens,
            special_tokens=plan.marker_tokens,
        )
        mapper = _PartsMapper(self, text_is_answer=plan.text_is_answer)
        async for text in self._generation:
            # A marker token's text comes alone, as a `MarkerText`: only there is it markup.
            for event in mapper.map_events(parser.feed(text, special=type(text) is MarkerText)):
                yield event
            if mapper.done:
                self._generation.stop()
                break
        stats = self._generation.stats
        if mapper.done:
            await self._generation.aclose()
        # Cut by the token limit or by a stop sequence, a call missing its end marker is unfinished
        # (at the end of the model's own turn, a complete body without it is still a call).
        truncated = stats.finish_reason in ("length", "stop_sequence")
        for event in mapper.map_events(parser.close(truncated=truncated)):
            yield event
        problems = [] if mapper.done else parser.result().errors
        for event in mapper.map_problems(problems):
            yield event
        self._finish(stats, mapper, problems)

    def _finish(self, stats: GenerationStats, mapper: _PartsMapper, problems: Sequence[ParseProblem]) -> None:
        self._usage = RequestUsage(
            input_tokens=stats.prompt_tokens,
            output_tokens=stats.output_tokens,
            cache_read_tokens=stats.cached_tokens,
        )
        finish_reason: FinishReason | None
        if stats.finish_reason == "length":  # what was cut off (text after the calls) matters
            finish_reason = "length"
        elif mapper.calls:
            finish_reason = "tool_call"
        elif stats.finish_reason == "cancelled":
            finish_reason = None
        else:
            finish_reason = "stop"
        self.finish_reason = finish_reason
        self.provider_details = {
            "finish_reason": stats.finish_reason,
            "tool_format": self._plan.tool_format,
            "prefilled_tokens": stats.prefilled_tokens,
            "prefill_seconds": stats.prefill_seconds,
            "decode_seconds": stats.decode_seconds,
            "parse_problems": [
                {"kind": p.kind, "message": p.message, "name": p.name, "text": p.text} for p in problems
            ],
        }
        if self._plan.thinking is not None:
            self.provider_details["thinking"] = self._plan.thinking
        if self._plan.budget is not None:
            self.provider_details["thinking_budget"] = self._plan.budget.details()
        if self._plan.constraint is not None and (processor := self._plan.constraint.processor) is not None:
            self.provider_details["constrained_regions"] = processor.regions
            self.provider_details["constraint_problems"] = list(processor.problems)

    async def close_stream(self) -> None:
        await self._generation.aclose()

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def provider_name(self) -> str:
        return "mlx"

    @property
    def provider_url(self) -> None:
        return None

    @property
    def timestamp(self) -> datetime:
        return self._timestamp


class _PartsMapper:
    """The one mapping from parser output to response parts, used by `request` and the stream alike.

    Whitespace that would open a new text part is held back until more text follows, so a call
    with blank lines around it is answered by its `ToolCallPart` alone (as a parse result's
    `content` is `None` then); inside a text part every character is kept.
    """

    def __init__(self, response: MLXStreamedResponse, *, text_is_answer: bool) -> None:
        plan = response._plan  # pyright: ignore[reportPrivateUsage]
        self._parts = response._parts_manager  # pyright: ignore[reportPrivateUsage]
        self._text_is_answer = text_is_answer
        self._one_call_only = plan.one_call_only
        self._excluded_tools = plan.excluded_tools
        self._offered_tools = [t.name for t in plan.tools]
        self._withheld_calls: set[int] = set()
        self._call_ids: set[str] = set()
        self._held_text = ""
        self._in_text = False
        self._after_reasoning = False
        self.calls = 0
        self.done = False
        """Set once `parallel_tool_calls=False` has its one call: nothing after it is mapped."""

    def map_events(self, events: list[Event]) -> Iterator[ModelResponseStreamEvent]:
        for event in events:
            if self.done:
                return
            match event:
                case TextDelta(content=content):
                    yield from self._text(content)
                case UnreadCall(problem=problem):  # a call that could not be read
                    yield from self._unread_call(problem.text, problem)
                case ThinkingDelta(content=content):
                    self._in_text = False
                    self._after_reasoning = True
                    yield from self._parts.handle_thinking_delta(vendor_part_id=None, content=content)
                case ToolCallDelta():
                    yield from self._call(event)

    def map_problems(self, problems: Sequence[ParseProblem]) -> Iterator[ModelResponseStreamEvent]:
        """Unknown tools are already calls (the agent answers those with a retry), except for the
        agent's own tools that `tool_choice` excluded: the agent would run those, so their calls
        are kept as the text the model wrote (as servers do with `tool_choice="none"`)."""
        for problem in problems:
            if isinstance(problem, UnknownTool) and problem.name in self._excluded_tools:
                yield from self._text(problem.text)

    def _unread_call(
        self, text: str, problem: MalformedCall | TruncatedCall
    ) -> Iterator[ModelResponseStreamEvent]:
        """A call the parser could not read (malformed, or unfinished) is never the answer and
        never runs: it becomes a call whose arguments are its raw text, which never validate (the
        text starts with the call's markup, or is unfinished JSON). The agent then sends the model
        a retry prompt, or, when `max_tokens` cut the call off (`finish_reason="length"`), raises
        `IncompleteToolCall`, as it does for other models. Its name is the tool the parser read,
        else the one offered tool the text names, else the only tool offered, else `""` (the retry
        then lists the tools). What the parser could not read is kept in its `provider_details`,
        and the retry answering it tells the model (`_chat`).
        """
        self._held_text = ""
        self._in_text = False
        self.calls += 1
        yield self._parts.handle_tool_call_part(
            vendor_part_id=("unread", self.calls),
            tool_name=problem.name or _named_tool(text, self._offered_tools),
            args=text,
            tool_call_id=_utils.generate_tool_call_id(),
            provider_details={UNREAD_CALL_PROBLEM: problem.message},
        )
        if self._one_call_only:
            self.done = True

    def _text(self, content: str) -> Iterator[ModelResponseStreamEvent]:
        if self._after_reasoning:
            # The blank lines after a reasoning block separate it from the answer (templates
            # write them back themselves, `content.lstrip('\n')`): they are not the answer's.
            content = content.lstrip()
            if not content:
                return
            self._after_reasoning = False
        if not self._in_text and not (self._held_text + content).strip():
            self._held_text += content
            return
        content, self._held_text = self._held_text + content, ""
        self._in_text = True
        if self._text_is_answer:
            yield from self._parts.handle_text_delta(vendor_part_id=None, content=content)
        else:
            yield from self._parts.handle_thinking_delta(vendor_part_id=None, content=content)

    def _call(self, delta: ToolCallDelta) -> Iterator[ModelResponseStreamEvent]:
        if delta.name in self._excluded_tools:
            self._withheld_calls.add(delta.index)  # its text comes with the parse problems
        if delta.index in self._withheld_calls:
            return
        self._held_text = ""
        self._in_text = False
        first = delta.name is not None
        call_id = None
        if first:
            self.calls += 1
            # pydantic-ai refuses a response whose calls share an id; a model may repeat one.
            call_id = (
                delta.id if delta.id and delta.id not in self._call_ids else _utils.generate_tool_call_id()
            )
            self._call_ids.add(call_id)
        # `handle_tool_call_delta` rather than its newer `_events` wrapper: pydantic-ai-slim 2.62
        # (pinned by pydantic-evals) has only this one.
        event = self._parts.handle_tool_call_delta(
            vendor_part_id=("call", delta.index),
            tool_name=delta.name,
            args=delta.args_delta,
            tool_call_id=call_id,
        )
        if event is not None:
            yield event
        if self._one_call_only and self.calls:
            self.done = True


def _named_tool(text: str, tools: Sequence[str]) -> str:
    """The one tool in `tools` that `text` names as a whole word, else the only tool offered,
    else `""`."""
    named = [name for name in tools if re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", text)]
    if len(named) == 1:
        return named[0]
    return tools[0] if len(tools) == 1 else ""


def _offered_tools(
    settings: ModelSettings, params: ModelRequestParameters
) -> tuple[list[ToolDefinition], bool]:
    """The tools to render for this request, and whether text counts as an answer (per `tool_choice`)."""
    all_tools = request_tool_defs(params)
    if not all_tools:
        return [], True
    choice = resolve_tool_choice(settings, params)
    explicit = settings.get("tool_choice") not in (None, "auto")
    if choice == "none":
        return [], True
    if choice == "auto":
        return all_tools, True
    if choice == "required":
        return all_tools, not explicit
    mode, names = choice
    return [t for t in all_tools if t.name in names], mode == "auto" or not explicit


def _calls_required(settings: ModelSettings, params: ModelRequestParameters) -> bool:
    """Whether the answer must be tool calls: `tool_choice` demands one, or the request allows no
    text (output tools only, `ToolOutput`), which pydantic-ai resolves to an implicit `'required'`.

    A native-output answer is text (the output object's JSON), so there only an explicit choice counts.
    """
    choice = resolve_tool_choice(settings, params)
    if choice in ("none", "auto") or (isinstance(choice, tuple) and choice[0] == "auto"):
        return False
    return params.output_mode != "native" or settings.get("tool_choice") not in (None, "auto")


def _generation_options(settings: ModelSettings, vocabulary: int | None) -> GenerationOptions:
    """The sampling settings, checked: a bad value is a `UserError` here, not a crash mid-batch.

    With `vocabulary=None` (the model not loaded yet) everything but the token ids is checked:
    `prepare_request` does so before any work.

    A token id outside the vocabulary would index past the logits (MLX does not check bounds:
    the process segfaults), and an error inside a batched step fails every request in the batch.
    """
    max_tokens = _integer(settings, "max_tokens", DEFAULT_MAX_TOKENS)
    if not 1 <= max_tokens <= _INT32_MAX:
        raise UserError(f"max_tokens must be at least 1 and at most {_INT32_MAX}, not {max_tokens}")
    temperature = _number(settings, "temperature", 0.0)
    if temperature < 0:
        raise UserError(f"temperature must not be negative, not {temperature}")
    if 0 < temperature < 1 / _FLOAT32_MAX:
        # Sampling divides by it in float32: infinity, then NaN logits.
        raise UserError(f"temperature {temperature} is too small to sample with; 0 is greedy decoding")
    _check_choices(settings)
    top_p = _number(settings, "top_p", None)
    if top_p is not None and not 0 <= top_p <= 1:
        raise UserError(f"top_p must be between 0 and 1, not {top_p}")
    if top_p == 0:
        temperature = 0.0  # the nucleus shrinks to the most likely token: greedy decoding
    top_k = _integer(settings, "top_k", None)
    if top_k is not None and not 0 < top_k < (vocabulary or _INT32_MAX):
        top_k = None  # 0 (or less) means no filter, as does keeping the whole vocabulary
    seed = _integer(settings, "seed", None)
    return GenerationOptions(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        seed=None if seed is None else seed % 2**64,  # MLX keys are unsigned 64-bit
        presence_penalty=_number(settings, "presence_penalty", None),
        frequency_penalty=_number(settings, "frequency_penalty", None),
        logit_bias=_logit_bias(settings.get("logit_bias"), vocabulary),
        stop_sequences=_stop_sequences(settings.get("stop_sequences")),
    )


def _integer(settings: ModelSettings, name: str, default: int | None) -> Any:
    value: Any = settings.get(name, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise UserError(f"{name} must be an integer, not {value!r}")
    return value


def _number(settings: ModelSettings, name: str, default: float | None) -> Any:
    value: Any = settings.get(name, default)
    if value is not None and not _is_finite_number(value):
        raise UserError(f"{name} must be a finite number, not {value!r}")
    return value


def _is_finite_number(value: Any) -> bool:
    # NaN passes every range check, and an infinite bias turns into NaN once normalised. Logits
    # are float32: a value finite in float64 only (1e39) is infinite there.
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and abs(value) <= _FLOAT32_MAX
    )


_FLOAT32_MAX = 3.4028234663852886e38
_INT32_MAX = 2**31 - 1
_TOOL_CHOICES = ("auto", "none", "required")


def _check_choices(settings: ModelSettings) -> None:
    """`tool_choice` and `parallel_tool_calls` are of a type pydantic-ai defines (it asserts otherwise)."""
    choice: Any = settings.get("tool_choice")
    valid = (
        choice is None
        or choice in _TOOL_CHOICES
        or isinstance(choice, ToolOrOutput)
        or (isinstance(choice, list | tuple) and all(isinstance(name, str) for name in choice))  # pyright: ignore[reportUnknownVariableType]
    )
    if not valid:
        raise UserError(
            "tool_choice must be 'auto', 'none', 'required', a list of tool names or ToolOrOutput, "
            f"not {choice!r}"
        )
    parallel: Any = settings.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise UserError(f"parallel_tool_calls must be True or False, not {parallel!r}")


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


def _logit_bias(bias: Any, vocabulary: int | None) -> dict[int, float] | None:
    if bias is None:
        return None
    if not isinstance(bias, Mapping):
        raise UserError(f"logit_bias must be a mapping of token ids to biases, not {bias!r}")
    if not bias:
        return None
    checked: dict[int, float] = {}
    for key, value in dict(cast(Mapping[Any, Any], bias)).items():
        try:
            token = int(key)
        except (TypeError, ValueError):
            raise UserError(f"logit_bias keys must be token ids, not {key!r}") from None
        if token < 0 or (vocabulary is not None and token >= vocabulary):
            bounds = f" (0 to {vocabulary - 1})" if vocabulary is not None else ""
            raise UserError(f"logit_bias token id {token} is outside the vocabulary{bounds}")
        if not _is_finite_number(value):
            raise UserError(f"logit_bias values must be finite numbers, not {value!r}")
        checked[token] = float(value)
    return checked


def _stop_sequences(stops: Any) -> tuple[str, ...]:
    if stops is None:
        return ()
    if isinstance(stops, str) or not all(isinstance(stop, str) and stop for stop in stops):
        raise UserError(f"stop_sequences must be a list of strings, none of them empty, not {stops!r}")
    return tuple(stops)


def _fitted_to_context(
    options: GenerationOptions, prompt_tokens: int, context: int | None, *, max_tokens_set: bool
) -> GenerationOptions:
    """`options` for a prompt of `prompt_tokens` on a model with a `context`-token window.

    What cannot fit is refused before prefill (a prompt past the window is computed for minutes,
    then the model writes garbage); the default `max_tokens` shrinks to the room left, as servers do.
    """
    if context is None:
        return options
    room = context - prompt_tokens
    if room < 1:
        raise UserError(
            f"The prompt is {prompt_tokens} tokens, and the model's context is {context} tokens: "
            "shorten the conversation (pydantic-ai's history processors can drop old messages)."
        )
    if options.max_tokens <= room:
        return options
    if max_tokens_set:
        raise UserError(
            f"The prompt ({prompt_tokens} tokens) plus max_tokens ({options.max_tokens}) is "
            f"{prompt_tokens + options.max_tokens} tokens, more than the model's context of {context} "
            f"tokens: set max_tokens to at most {room}, or shorten the conversation."
        )
    return replace(options, max_tokens=room)


_CONTEXT_LENGTH_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def _context_length(loaded: LoadedModel) -> int | None:
    """The model's context window in tokens, from its config (None when it does not say)."""
    args = getattr(loaded.model, "args", None)
    for key in _CONTEXT_LENGTH_KEYS:
        value = getattr(args, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _vocabulary_size(loaded: LoadedModel) -> int:
    """The number of logits the model computes per token (the model's vocabulary, with padding)."""
    size = getattr(getattr(loaded.model, "args", None), "vocab_size", None)
    if isinstance(size, int) and size > 0:
        return size
    return len(loaded.tokenizer._tokenizer)  # pyright: ignore[reportPrivateUsage]


def _default_name(model: ModelSource) -> str:
    if isinstance(model, tuple):
        return str(getattr(model[0], "model_type", None) or "mlx-model")
    path = Path(model).expanduser()
    if isinstance(model, Path) or path.exists():
        return path.resolve().name
    return str(model)
