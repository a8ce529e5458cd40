"""The demo model's chat template: ChatML, with tools rendered the way Qwen2.5 renders them and
reasoning the way Qwen3 does.

Written for this project after Qwen2.5's published template: tool schemas as JSON lines inside
`<tools>` in the system turn, calls as `<tool_call>` JSON in assistant turns, and results as
`<tool_response>` blocks inside one user turn per run of consecutive tool messages. After Qwen3's:
`enable_thinking=False` ends the prompt with an empty `<think>` block, and an assistant turn's
`reasoning_content` is rendered back in `<think>` tags after the last user query only (earlier
turns' reasoning is dropped).
"""

from __future__ import annotations

CHAT_TEMPLATE = r"""
{%- if messages and messages[0].role == 'system' -%}
    {%- set system_message = messages[0].content -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set system_message = 'You are a helpful assistant.' -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{{- '<|im_start|>system\n' + system_message -}}
{%- if tools -%}
    {{- '\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' -}}
    {{- 'You are provided with function signatures within <tools></tools> XML tags:\n<tools>' -}}
    {%- for tool in tools -%}
        {{- '\n' + (tool | tojson) -}}
    {%- endfor -%}
    {{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments ' -}}
    {{- 'within <tool_call></tool_call> XML tags:\n<tool_call>\n' -}}
    {{- '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>' -}}
{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- set ns = namespace(last_query=-1) -%}
{%- for message in loop_messages -%}
    {%- if message.role == 'user' -%}
        {%- set ns.last_query = loop.index0 -%}
    {%- endif -%}
{%- endfor -%}
{%- for message in loop_messages -%}
    {%- if message.role == 'assistant' and message.reasoning_content and loop.index0 > ns.last_query -%}
        {%- set thought = '<think>\n' + message.reasoning_content.strip('\n') + '\n</think>\n\n' -%}
    {%- else -%}
        {%- set thought = '' -%}
    {%- endif -%}
    {%- if message.role == 'tool' -%}
        {%- if loop.first or loop_messages[loop.index0 - 1].role != 'tool' -%}
            {{- '<|im_start|>user' -}}
        {%- endif -%}
        {{- '\n<tool_response>\n' + message.content + '\n</tool_response>' -}}
        {%- if loop.last or loop_messages[loop.index0 + 1].role != 'tool' -%}
            {{- '<|im_end|>\n' -}}
        {%- endif -%}
    {%- elif message.role == 'assistant' and message.tool_calls -%}
        {{- '<|im_start|>assistant' -}}
        {%- if thought -%}
            {{- '\n' + thought + message.content -}}
        {%- elif message.content -%}
            {{- '\n' + message.content -}}
        {%- endif -%}
        {%- for tool_call in message.tool_calls -%}
            {%- set call = tool_call.function if tool_call.function is defined else tool_call -%}
            {%- if thought and loop.first and not message.content -%}
                {{- '<tool_call>\n{"name": "' + call.name + '", "arguments": ' -}}
            {%- else -%}
                {{- '\n<tool_call>\n{"name": "' + call.name + '", "arguments": ' -}}
            {%- endif -%}
            {%- if call.arguments is string -%}
                {{- call.arguments -}}
            {%- else -%}
                {{- call.arguments | tojson -}}
            {%- endif -%}
            {{- '}\n</tool_call>' -}}
        {%- endfor -%}
        {{- '<|im_end|>\n' -}}
    {%- else -%}
        {{- '<|im_start|>' + message.role + '\n' + thought + message.content + '<|im_end|>\n' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
    {%- if enable_thinking is defined and enable_thinking is false -%}
        {{- '<think>\n\n</think>\n\n' -}}
    {%- endif -%}
{%- endif -%}
""".strip()
"""Jinja source, stored in the model's `tokenizer_config.json` as `chat_template`."""
