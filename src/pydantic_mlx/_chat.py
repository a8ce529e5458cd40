"""Render pydantic-ai messages through a tokenizer's chat template, into prompt token ids.

Three steps, each usable alone:

- `chat_messages` maps pydantic-ai messages to OpenAI-style chat dicts (`role`, `content`,
  `tool_calls`, ...), the shape Hugging Face chat templates are written for;
- `tool_schemas` maps tool definitions to OpenAI function schemas for the template's `tools=`;
- `render_prompt` renders both with the template and returns token ids.

`render_request` does all three for one model request, the way `MLXModel` and the demo model's
training data both do it, so the tiny demo model is trained on exactly the prompts it is later given.

Text that users and tools wrote is never allowed to forge template turns: `render_prompt` tokenizes
the template's own structure normally, but every piece of message content with special-token
splitting disabled, so a user writing ``<|im_start|>system`` gets those characters, not a new turn.
The same holds for tool definitions (a third-party tool's description is text too), where a
string is treated as content when it spells one of the tokenizer's added tokens.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import secrets
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from jinja2 import TemplateError
from pydantic_ai._utils import format_inlined_text_file, is_text_like_media_type  # pyright: ignore[reportPrivateUsage]
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import (
    BinaryContent,
    CachePoint,
    InstructionPart,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryFeedbackPart,
    RetryPromptPart,  # pyright: ignore[reportDeprecated]
    SystemPromptPart,
    TextContent,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.tools import ToolDefinition
from tokenizers import Tokenizer

from ._thinking import thinking_switch

__all__ = [
    "CHAT_TEMPLATE_PROFILE",
    "ChatTokenizer",
    "chat_messages",
    "render_prompt",
    "render_prompt_and_shared_prefix",
    "render_request",
    "request_instructions",
    "request_tool_defs",
    "template_conversation",
    "tool_schemas",
]

CHAT_TEMPLATE_PROFILE = ModelProfile(
    supports_tools=True,
    # A chat template renders a system message anywhere in the conversation.
    supports_inline_system_prompts=True,
    # No grammar-constrained decoding yet, so JSON output is asked for in the prompt or via a tool.
    supports_json_schema_output=False,
    supports_json_object_output=False,
    # pydantic-ai's default `may_tokenize_special_tokens_in_content=False` holds: `render_prompt`
    # itself keeps special tokens in content from being encoded as control tokens (the key is
    # not set here because pydantic-ai-slim 2.62, which pydantic-evals pins, does not know it).
    default_structured_output_mode="tool",
    # PydanticAI passes the `thinking` setting on (as `ModelRequestParameters.thinking`) only to
    # models that say so; otherwise it drops it. Nothing else in its rules reads this key (forced
    # tool choice and output modes follow `forced_tool_choice_disables_thinking`, left False: a
    # chat template renders a forced call's tools whether the model thinks or not).
    supports_thinking=True,
)
"""The pydantic-ai profile of a model driven through its chat template (used by `MLXModel` and the demo)."""


class ChatTokenizer(Protocol):
    """What `render_prompt` needs from a tokenizer: a Hugging Face tokenizer or mlx-lm's wrapper of one."""

    def apply_chat_template(self, conversation: Any, /, *args: Any, **kwargs: Any) -> Any: ...

    def encode(self, text: str, /, *args: Any, **kwargs: Any) -> Any: ...


def chat_messages(messages: Sequence[ModelMessage], instructions: str | None = None) -> list[dict[str, Any]]:
    """Map pydantic-ai messages to OpenAI-style chat dicts, ready for a chat template.

    The leading system prompts and `instructions` are joined into one system message (templates
    give tool instructions to the first system message only). Raises `UserError` for any part a
    text-only chat template cannot show the model, rather than dropping it.
    """
    chat: list[dict[str, Any]] = []
    unread: dict[str, str] = {}
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                chat.append(_with_parse_problem(_request_part(part), unread))
        else:
            chat.append(_assistant_message(message))
            unread |= _unread_calls(message)
    return _with_one_system_message(chat, instructions)


UNREAD_CALL_PROBLEM = "parse_problem"
"""The `provider_details` key of a `ToolCallPart` made of a call the parser could not read: what it
could not read, which the retry that answers the call then tells the model."""


def _unread_calls(message: ModelResponse) -> dict[str, str]:
    """The parse problem of each call in `message` the parser could not read, by call id."""
    return {
        part.tool_call_id: str(details[UNREAD_CALL_PROBLEM])
        for part in message.parts
        if isinstance(part, ToolCallPart)
        and (details := part.provider_details) is not None
        and UNREAD_CALL_PROBLEM in details
    }


def _with_parse_problem(turn: dict[str, Any], unread: Mapping[str, str]) -> dict[str, Any]:
    """A tool turn answering an unreadable call says first what could not be read: pydantic-ai's
    own retry only knows the name (often none) and that the arguments did not validate."""
    problem = unread.get(turn.get("tool_call_id") or "") if turn["role"] == "tool" else None
    if problem is None:
        return turn
    call = f"call to {turn['name']}" if turn.get("name") else "tool call"
    content = f"Your {call} could not be read: {problem}. Write the call again, complete and valid.\n"
    return {**turn, "content": content + str(turn["content"])}


def tool_schemas(tool_defs: Sequence[ToolDefinition]) -> list[dict[str, Any]]:
    """OpenAI function schemas (``{"type": "function", "function": {...}}``) for a template's ``tools=``."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description or "",
                "parameters": tool.parameters_json_schema,
            },
        }
        for tool in tool_defs
    ]


def render_prompt(
    tokenizer: ChatTokenizer,
    messages: Sequence[ModelMessage],
    tool_defs: Sequence[ToolDefinition],
    *,
    instructions: str | None = None,
    add_generation_prompt: bool = True,
    template_kwargs: Mapping[str, Any] | None = None,
) -> list[int]:
    """Render messages and tools with the tokenizer's chat template; return the prompt's token ids.

    See `render_prompt_and_shared_prefix`, which this is, less the shared prefix.
    """
    prompt, _ = render_prompt_and_shared_prefix(
        tokenizer,
        messages,
        tool_defs,
        instructions=instructions,
        add_generation_prompt=add_generation_prompt,
        template_kwargs=template_kwargs,
        find_shared_prefix=False,
    )
    return prompt


def render_prompt_and_shared_prefix(
    tokenizer: ChatTokenizer,
    messages: Sequence[ModelMessage],
    tool_defs: Sequence[ToolDefinition],
    *,
    instructions: str | None = None,
    add_generation_prompt: bool = True,
    template_kwargs: Mapping[str, Any] | None = None,
    find_shared_prefix: bool = True,
) -> tuple[list[int], int]:
    """Render messages and tools with the tokenizer's chat template: the prompt's token ids, and
    how many of them come before the first user message's content (0 if there is none).

    That prefix is what every conversation of an agent shares: system prompt, tool schemas, and
    the template's text around them, wherever the template puts them (a system turn, Llama 3's
    tools in the first user turn, Gemma's system text inside it). It is found where the first
    user content's placeholder lands in the rendered text, not by rendering the system part
    alone: templates render a conversation without a user turn differently, or refuse it.
    `find_shared_prefix=False` skips finding it (it costs a tokenization of the prefix) and gives 0.

    Content is rendered as placeholders, so that where it lies in the template's text is known.
    When no content spells one of the tokenizer's added tokens (turn markers, `<tool_call>`), the
    whole text is tokenized at once, exactly as Hugging Face's `apply_chat_template(tokenize=True)`
    (and so `mlx_lm.lora`, `mlx_lm.server`) tokenizes it: the model sees the token sequences it
    was trained on, merges across the edges of content included. Otherwise the template's own
    text is tokenized with special tokens recognised, and each content string on its own with
    special tokens treated as plain text, so content cannot forge a turn. `template_kwargs` are
    more variables for the template (its thinking switch: see `pydantic_mlx._thinking`).
    """
    _check_schema_depth(tool_defs)
    template = getattr(tokenizer, "chat_template", None)
    chat = _fit_call_ids(chat_messages(messages, instructions), template)
    if isinstance(template, str) and _READS_MESSAGE_THINKING.search(template):
        chat = _reasoning_as_thinking(chat)
    tools = tool_schemas(tool_defs)
    holder = _Placeholders.for_chat([*chat, *tools])
    marked = _added_tokens(tokenizer)
    # Only strings that spell an added token are held: templates read a schema's structure
    # (types, required names) and must see it as it is.
    held_tools = holder.hold_json(tools, marked) or None
    _, rendered = _render_fitted(
        chat,
        lambda conversation: tokenizer.apply_chat_template(
            holder.stand_in(conversation, marked),
            tools=held_tools,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            **(template_kwargs or {}),
        ),
    )
    if not isinstance(rendered, str):
        raise TypeError(f"apply_chat_template(tokenize=False) returned {type(rendered).__name__}, not str")
    encode = _encoder(tokenizer)
    pieces = holder.splice(rendered)
    first_user = holder.first_user_piece if find_shared_prefix else None
    if not _content_spells_added_tokens(pieces, marked):
        token_ids = encode("".join(text for text, _ in pieces), False)
        if first_user is None:
            return token_ids, 0
        # Tokenized at once, the prefix's last tokens may merge with the content after it: the
        # prefix is the tokens its text alone gives that the prompt has too.
        alone = encode("".join(text for text, _ in pieces[:first_user]), False)
        shared = 0
        while shared < min(len(alone), len(token_ids)) and alone[shared] == token_ids[shared]:
            shared += 1
        return token_ids, shared
    token_ids = []
    shared = 0
    for i, (text, is_content) in enumerate(pieces):
        if i == first_user:
            shared = len(token_ids)
        if text:
            token_ids.extend(encode(text, is_content))
    return token_ids, shared


def template_conversation(
    tokenizer: ChatTokenizer,
    messages: Sequence[ModelMessage],
    tool_defs: Sequence[ToolDefinition],
    *,
    instructions: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chat dicts and tool schemas exactly as `render_prompt` gives them to the template.

    That is `chat_messages` and `tool_schemas`, fitted to what the template insists on: tool-call
    ids of the length it checks (Mistral's), and system messages after the first turned into user
    turns where it refuses them. Rendering the result with the template (`apply_chat_template`,
    as `mlx_lm.lora` does with a training record) gives the text `render_prompt` tokenizes.
    Raises `UserError` if the template cannot render the conversation.
    """
    _check_schema_depth(tool_defs)
    template = getattr(tokenizer, "chat_template", None)
    chat = _fit_call_ids(chat_messages(messages, instructions), template)
    tools = tool_schemas(tool_defs)
    chat, _ = _render_fitted(
        chat,
        lambda conversation: tokenizer.apply_chat_template(conversation, tools=tools or None, tokenize=False),
    )
    return chat, tools


def _render_fitted(
    chat: list[dict[str, Any]], render: Callable[[list[dict[str, Any]]], Any]
) -> tuple[list[dict[str, Any]], Any]:
    """`render(chat)`, or, where the template refuses system messages after the first, `chat` with
    those as user turns and its rendering. `UserError` if the template cannot render it."""
    try:
        try:
            return chat, render(chat)
        except TemplateError:
            # Templates that allow a system message only first (Mistral's, Gemma's) refuse the ones
            # pydantic-ai sends mid-conversation (retry instructions, say): those become user turns.
            later_system = [i for i, m in enumerate(chat) if i and m["role"] == "system"]
            if not later_system:
                raise
            chat = [{**m, "role": "user"} if i in later_system else m for i, m in enumerate(chat)]
            return chat, render(chat)
    except (TemplateError, ValueError) as error:  # ValueError: the tokenizer has no chat template
        raise UserError(f"The chat template cannot render this conversation: {error}") from error


def _content_spells_added_tokens(pieces: list[tuple[str, bool]], marked: re.Pattern[str]) -> bool:
    """Whether tokenizing the pieces' text at once could read an added token out of content:
    one inside a content piece, or one spanning the edge of content and template text."""
    text = "".join(piece for piece, _ in pieces)
    template_spans: set[tuple[int, int]] = set()
    position = 0
    for piece, is_content in pieces:
        if not is_content:
            template_spans.update((position + m.start(), position + m.end()) for m in marked.finditer(piece))
        position += len(piece)
    return any(match.span() not in template_spans for match in marked.finditer(text))


_READS_MESSAGE_THINKING = re.compile(r"""\.thinking\b|\[\s*["']thinking["']\s*\]""")
"""A template that reads a message's `thinking` (gpt-oss's): `message.thinking`, `message['thinking']`."""


def _reasoning_as_thinking(chat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`chat` with reasoning under `thinking`, the key gpt-oss's template reads it from.

    That template raises when a message with calls has both content and thinking (it renders
    either as the analysis before the call): such content is appended to the thinking instead.
    """
    moved: list[dict[str, Any]] = []
    for message in chat:
        reasoning = message.get("reasoning_content")
        if reasoning is not None:
            message = {key: value for key, value in message.items() if key != "reasoning_content"}
            if message.get("tool_calls") and message.get("content"):
                reasoning, message["content"] = f"{reasoning}\n\n{message['content']}", ""
            message["thinking"] = reasoning
        moved.append(message)
    return moved


MAX_SCHEMA_DEPTH = 128
"""Nesting (objects and lists) a tool's schema may have: real schemas nest a dozen levels (models
refer to each other through `$defs`); thousands would exhaust Python's stack while rendering."""


def _check_schema_depth(tool_defs: Sequence[ToolDefinition]) -> None:
    for tool in tool_defs:
        depth = _json_depth(tool.parameters_json_schema)
        if depth > MAX_SCHEMA_DEPTH:
            raise UserError(
                f"The schema of tool {tool.name!r} nests {depth} levels deep; pydantic-mlx renders "
                f"at most {MAX_SCHEMA_DEPTH} (use `$defs` for deep or recursive types)."
            )


def _json_depth(value: Any) -> int:
    """How deeply `value`'s dicts and lists nest (without recursing: any depth is measured)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            children: Any = node.values() if isinstance(node, dict) else node  # pyright: ignore[reportUnknownMemberType]
            stack.extend((child, depth + 1) for child in children)  # pyright: ignore[reportUnknownVariableType]
    return deepest


def _fit_call_ids(chat: list[dict[str, Any]], template: object) -> list[dict[str, Any]]:
    """`chat` with tool-call ids of the length the template insists on, if it checks one.

    Mistral's templates raise unless every id is 9 letters or digits; pydantic-ai's generated ids
    are longer. Each other id is replaced by a digest of it, so a call and its result still match.
    """
    length = _checked_id_length(template) if isinstance(template, str) else None
    if length is None:
        return chat

    def fit(call_id: Any) -> Any:
        if not isinstance(call_id, str) or (len(call_id) == length and call_id.isalnum()):
            return call_id
        digest = hashlib.sha256(call_id.encode()).hexdigest()
        return (digest * (length // len(digest) + 1))[:length]

    fitted: list[dict[str, Any]] = []
    for message in chat:
        message = dict(message)
        if "tool_call_id" in message:
            message["tool_call_id"] = fit(message["tool_call_id"])
        if "tool_calls" in message:
            message["tool_calls"] = [{**call, "id": fit(call.get("id"))} for call in message["tool_calls"]]
        fitted.append(message)
    return fitted


@functools.lru_cache(maxsize=16)
def _checked_id_length(template: str) -> int | None:
    """The tool-call id length a template insists on (`tool_call.id|length != 9`: Mistral's), read
    once per template rather than on every render."""
    match = re.search(r"id\s*\|\s*length\s*!=\s*(\d+)", template)
    return int(match.group(1)) if match else None


def _added_tokens(tokenizer: ChatTokenizer) -> re.Pattern[str]:
    """Finds the texts the tokenizer turns into single added tokens (turn markers, `<tool_call>`)."""
    added = getattr(tokenizer, "get_added_vocab", None)
    texts: Any = added() if callable(added) else getattr(tokenizer, "all_special_tokens", ())
    return _any_of(frozenset(str(text) for text in texts))


@functools.lru_cache(maxsize=16)
def _any_of(texts: frozenset[str]) -> re.Pattern[str]:
    if not texts:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("|".join(re.escape(text) for text in sorted(texts)))


_backend_copies: weakref.WeakKeyDictionary[Tokenizer, tuple[Tokenizer, Tokenizer]] = (
    weakref.WeakKeyDictionary()
)
_backend_copies_lock = threading.Lock()


def _encoder(tokenizer: ChatTokenizer) -> Callable[[str, bool], list[int]]:
    """`encode(text, is_content)`: token ids without BOS/EOS, special tokens split iff `is_content`.

    Hugging Face's `encode(..., split_special_tokens=...)` implements the flag by flipping a
    setting on the tokenizer's shared Rust backend, so two threads rendering at once (concurrent
    agent runs) can tokenize each other's template markers as plain text. A fast tokenizer's
    backend is therefore copied once per mode and never changed again; other tokenizers keep no
    such shared switch and are called directly.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not isinstance(backend, Tokenizer):
        return lambda text, is_content: list(
            tokenizer.encode(_well_formed(text), add_special_tokens=False, split_special_tokens=is_content)
        )
    with _backend_copies_lock:
        copies = _backend_copies.get(backend)
        if copies is None:
            copies = _backend_copies[backend] = (_backend_copy(backend, False), _backend_copy(backend, True))
    template, content = copies

    def encode(text: str, is_content: bool) -> list[int]:
        return (content if is_content else template).encode(_well_formed(text), add_special_tokens=False).ids

    return encode


_SURROGATE = re.compile("[\ud800-\udfff]")


def _well_formed(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (a surrogate pair joined).

    Python strings may hold them (`os.listdir` decodes a file name that is not UTF-8 to one,
    legal on Linux; `json.loads` reads `"\\ud800"`), tokenizers cannot: a tool result or prompt
    holding one would fail the whole request.
    """
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _backend_copy(backend: Tokenizer, split_special_tokens: bool) -> Tokenizer:
    copy = Tokenizer.from_str(backend.to_str())
    copy.encode_special_tokens = split_special_tokens
    return copy


def request_tool_defs(model_request_parameters: ModelRequestParameters) -> list[ToolDefinition]:
    """The tools a request declares to the model, function tools first, then output tools.

    As pydantic-ai's own adapters read them (`declared_tool_defs`): a tool it withholds (a
    `defer_loading` tool not yet revealed) is neither rendered nor given a grammar.
    """
    return list(model_request_parameters.declared_tool_defs.values())


def request_instructions(
    model: Model, messages: Sequence[ModelMessage], model_request_parameters: ModelRequestParameters
) -> str | None:
    """The instructions in force for this request (incl. prompted-output instructions), as one string."""
    parts = model._get_instruction_parts(messages, model_request_parameters)  # pyright: ignore[reportPrivateUsage]
    return InstructionPart.join(parts) if parts else None


def render_request(
    model: Model,
    tokenizer: ChatTokenizer,
    messages: Sequence[ModelMessage],
    model_request_parameters: ModelRequestParameters,
    *,
    add_generation_prompt: bool = True,
) -> list[int]:
    """Prompt token ids for one `Model.request`: its messages, instructions, tools and thinking
    setting (`model_request_parameters.thinking`, carried to the template's switch), via `render_prompt`."""
    template = getattr(tokenizer, "chat_template", None)
    switch = thinking_switch(
        template if isinstance(template, str) else None, model_request_parameters.thinking
    )
    return render_prompt(
        tokenizer,
        messages,
        request_tool_defs(model_request_parameters),
        instructions=request_instructions(model, messages, model_request_parameters),
        add_generation_prompt=add_generation_prompt,
        template_kwargs=switch.template_kwargs,
    )


def _request_part(part: object) -> dict[str, Any]:
    if isinstance(part, SystemPromptPart):
        return {"role": "system", "content": part.content}
    if isinstance(part, UserPromptPart):
        return {"role": "user", "content": _user_text(part)}
    if isinstance(part, ToolReturnPart):
        return _tool_message(part)
    if isinstance(part, RetryPromptPart):  # pyright: ignore[reportDeprecated]
        # A retry that answers a call goes back as that call's result; one that answers none is feedback.
        if part.tool_name is not None:
            return {
                "role": "tool",
                "tool_call_id": part.tool_call_id,
                "name": part.tool_name,
                "content": part.model_response(),
            }
        return {"role": "user", "content": part.model_response()}
    if isinstance(part, RetryFeedbackPart):
        # `Model.prepare_messages` normally turns this into a user or system prompt first.
        return {"role": "user", "content": part.model_response()}
    raise UserError(
        f"pydantic-mlx cannot render a {type(part).__name__} into a chat template prompt; "
        "requests are expected to have gone through `Model.prepare_messages`."
    )


def _user_text(part: UserPromptPart) -> str:
    if isinstance(part.content, str):
        return part.content
    texts: list[str] = []
    for item in part.content:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, TextContent):
            texts.append(item.content)
        elif isinstance(item, CachePoint):
            continue  # a marker for providers with prompt caching; the prompt cache here is automatic
        elif (inlined := _inlined_text_file(item)) is not None:
            texts.append(inlined)
        else:
            raise UserError(
                f"pydantic-mlx renders text prompts only; cannot send {type(item).__name__} to a text model."
            )
    return "\n\n".join(texts)


def _inlined_text_file(item: object) -> str | None:
    """A text file given as content (`BinaryContent` of a text media type) framed as pydantic-ai
    frames inlined files for text-only models; `None` for anything else."""
    if not isinstance(item, BinaryContent) or not is_text_like_media_type(item.media_type):
        return None
    try:
        text = item.data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"File {item.identifier!r} ({item.media_type}) is not UTF-8 text.") from None
    return format_inlined_text_file(text, media_type=item.media_type, identifier=item.identifier)


def _tool_message(part: ToolReturnPart) -> dict[str, Any]:
    text, extra = part.model_response_str_and_user_content()
    # Files come with pydantic-ai's own text around them (`<pyai:tool_result ...>`); text files
    # are inlined there, as in a user prompt.
    pieces = [text]
    files: list[object] = []
    for item in extra:
        inlined = item if isinstance(item, str) else _inlined_text_file(item)
        if inlined is None:
            files.append(item)
        else:
            pieces.append(inlined)
    text = "\n".join(pieces)
    if files:
        kinds = ", ".join(sorted({type(file).__name__ for file in files}))
        raise UserError(
            f"Tool {part.tool_name!r} returned {kinds}; pydantic-mlx renders text tool results only."
        )
    return {"role": "tool", "tool_call_id": part.tool_call_id, "name": part.tool_name, "content": text}


def _assistant_message(message: ModelResponse) -> dict[str, Any]:
    texts: list[str] = []
    thoughts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            texts.append(part.content)
        elif isinstance(part, ThinkingPart):
            thoughts.append(part.content)
        elif isinstance(part, ToolCallPart):
            tool_calls.append(
                {
                    "id": part.tool_call_id,
                    "type": "function",
                    "function": {"name": part.tool_name, "arguments": part.args_as_dict()},
                }
            )
        else:
            raise UserError(
                f"pydantic-mlx cannot render a {type(part).__name__} into a chat template prompt."
            )
    # An empty response stays an (empty) assistant turn: dropping it would merge the turns around it.
    assistant: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if tool_calls:
        assistant["tool_calls"] = tool_calls
    if thoughts:
        # Templates of reasoning models (Qwen3, DeepSeek-R1 distills) render `reasoning_content`
        # inside their think tags; templates without a place for reasoning ignore the key.
        assistant["reasoning_content"] = "\n\n".join(thoughts)
    return assistant


def _with_one_system_message(chat: list[dict[str, Any]], instructions: str | None) -> list[dict[str, Any]]:
    leading = 0
    while leading < len(chat) and chat[leading]["role"] == "system":
        leading += 1
    system_texts = [message["content"] for message in chat[:leading] if message["content"]]
    if instructions:
        system_texts.append(instructions)
    if not system_texts:
        return chat[leading:]
    return [{"role": "system", "content": "\n\n".join(system_texts)}, *chat[leading:]]


def _inside_json_string(rendered: str, start: int, end: int) -> bool:
    """Whether `rendered[start:end]` (a placeholder) is all of a JSON string but for whitespace.

    Content keeps its outer whitespace outside its placeholder, and `tojson` writes that
    whitespace between the quote and the placeholder: as itself (spaces, no-break spaces, ...) or
    escaped (`\\n`, `\\u000b`, or `\\u00a0` when it escapes everything outside ASCII).
    """
    position = start
    while True:
        if rendered[position - 1 : position].isspace():
            position -= 1
        elif rendered[position - 2 : position] in _JSON_WHITESPACE_ESCAPES:
            position -= 2
        elif rendered[position - 6 : position] in _JSON_WHITESPACE_ESCAPES:
            position -= 6
        else:
            break
    quoted_before = rendered[position - 1 : position] == '"'
    return quoted_before and _JSON_WHITESPACE_THEN_QUOTE.match(rendered, end) is not None


_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
"""Every character `str.strip()` (and so Jinja's `trim`) removes: there is none past U+3000."""
_JSON_WHITESPACE_ESCAPES = frozenset(
    [
        "\\n",
        "\\t",
        "\\r",
        "\\f",
        *(f"\\u{ord(c):04x}" for c in _WHITESPACE),
        *(f"\\u{ord(c):04X}" for c in _WHITESPACE),
    ]
)
"""How `json.dumps` (so `tojson`) may write a whitespace character: `\\n`, `\\u000b`, `\\u00a0`, ..."""
_JSON_WHITESPACE_THEN_QUOTE = re.compile(
    rf'(?:\s|{"|".join(re.escape(escape) for escape in sorted(_JSON_WHITESPACE_ESCAPES))})*"'
)


_PLACEHOLDER = re.compile(r"(PMLX[0-9a-f]{12}N)(\d+)X")
"""Any render's placeholder. One pattern compiled once: a pattern per nonce was compiled on every
render (a third of its time) and filled `re`'s shared cache with patterns never used again."""


@dataclass
class _Placeholders:
    """Stand-ins for content strings while the template renders, swapped back for the real text after."""

    nonce: str
    originals: list[str]
    padding: dict[int, tuple[str, str]] = field(default_factory=lambda: dict[int, tuple[str, str]]())
    """Outer whitespace of held content, by placeholder: left outside for the template to trim."""
    first_user: int | None = None
    """The placeholder of the first user message's content in the latest `stand_in`."""
    first_user_piece: int | None = None
    """Where that content is among the latest `splice`'s pieces (None: not rendered, or none)."""

    @classmethod
    def for_chat(cls, chat: list[dict[str, Any]]) -> _Placeholders:
        everything = json.dumps(chat, ensure_ascii=False)
        while True:
            # Letters and digits only, so templates and `tojson` pass a placeholder through unchanged.
            nonce = f"PMLX{secrets.token_hex(6)}N"  # the shape `_PLACEHOLDER` finds
            if nonce not in everything:
                return cls(nonce, [])

    def _hold(self, text: str) -> str:
        if not text:
            # Templates test content for truthiness (`{% if message.content %}`): keep empty as empty.
            return text
        self.originals.append(text)
        return f"{self.nonce}{len(self.originals) - 1}X"

    def _hold_content(self, text: str) -> str:
        """`_hold`, with the text's leading and trailing whitespace left outside the placeholder.

        Templates trim content (`| trim`, `.strip()`, `.lstrip('\n')`); they must see the real
        whitespace to trim it as they would the text. Whitespace is never a special token.
        """
        core = text.strip()
        if not core:
            return text
        start = text.index(core)
        lead, trail = text[:start], text[start + len(core) :]
        held = self._hold(core)
        self.padding[len(self.originals) - 1] = (lead, trail)
        return lead + held + trail

    def hold_json(self, value: Any, marked: re.Pattern[str] | None = None) -> Any:
        """A copy of `value` whose strings (keys included) are placeholders: all of them, or with
        `marked`, those in which it finds a match."""
        if isinstance(value, str):
            return self._hold(value) if marked is None or marked.search(value) else value
        if isinstance(value, dict):
            return {self.hold_json(key, marked): self.hold_json(item, marked) for key, item in value.items()}  # pyright: ignore[reportUnknownVariableType]
        if isinstance(value, list):
            return [self.hold_json(item, marked) for item in value]  # pyright: ignore[reportUnknownVariableType]
        return value

    def stand_in(self, chat: list[dict[str, Any]], marked: re.Pattern[str]) -> list[dict[str, Any]]:
        """A copy of `chat` whose content strings (and tool-call names and arguments) are placeholders.

        Every other string a template may print (a tool message's `tool_call_id` and `name`, a
        call's `id`) is held too where `marked` finds an added token's text in it: held always, an
        id would no longer pass a template's own check of its length (Mistral's).
        """
        held: list[dict[str, Any]] = []
        self.first_user = None
        for message in chat:
            copy: dict[str, Any] = {}
            for key, value in message.items():
                if key in ("content", "reasoning_content", "thinking") and isinstance(value, str):
                    held_before = len(self.originals)
                    copy[key] = self._hold_content(value)
                    first = self.first_user is None and key == "content" and message.get("role") == "user"
                    if first and len(self.originals) > held_before:
                        self.first_user = held_before
                elif key == "tool_calls":
                    copy[key] = [self._stand_in_call(call, marked) for call in value]
                else:
                    copy[key] = value if key == "role" else self.hold_json(value, marked)
            held.append(copy)
        return held

    def _stand_in_call(self, call: dict[str, Any], marked: re.Pattern[str]) -> dict[str, Any]:
        function = call["function"]
        return {
            **{key: self.hold_json(value, marked) for key, value in call.items()},
            "function": {
                "name": self._hold(function["name"]),
                "arguments": self.hold_json(function["arguments"]),
            },
        }

    def splice(self, rendered: str) -> list[tuple[str, bool]]:
        """`rendered` cut into (text, is_content) pieces, each placeholder replaced by its original text.

        A placeholder the template wrapped in JSON quotes (`tojson` of tool-call arguments) gets its
        text JSON-escaped, as `tojson` would have written it.
        """
        pieces: list[tuple[str, bool]] = []
        position = 0
        self.first_user_piece = None
        for match in _PLACEHOLDER.finditer(rendered):
            if match.group(1) != self.nonce:  # text that merely looks like a placeholder
                continue
            start, end = match.span()
            index = int(match.group(2))
            original = self.originals[index]
            if _inside_json_string(rendered, start, end):
                original = json.dumps(original, ensure_ascii=False)[1:-1]
            else:
                # Whitespace the template kept is tokenized with its content, as it always was.
                lead, trail = self.padding.get(index, ("", ""))
                if lead and rendered.endswith(lead, position, start):
                    start -= len(lead)
                    original = lead + original
                if trail and rendered.startswith(trail, end):
                    end += len(trail)
                    original += trail
            pieces.append((rendered[position:start], False))
            if index == self.first_user and self.first_user_piece is None:
                self.first_user_piece = len(pieces)
            pieces.append((original, True))
            position = end
        pieces.append((rendered[position:], False))
        return pieces
