"""The `pydantic-mlx` command line: one small function per subcommand."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._install import install_hint

EVAL_INTERRUPTED = 130
"""Exit status of an eval stopped by Ctrl-C (128 + SIGINT, as shells report it); its report is kept."""

BROKEN_PIPE = 141
"""Exit status when the reader of standard output went away (`pydantic-mlx parse ... | head`):
128 + SIGPIPE, what a shell reports for a command that signal ends."""

DESCRIPTION = (
    "Run local MLX models as PydanticAI models: try the demo, parse model outputs into tool calls, "
    "score models side by side, list the short model names, manage the disk prompt cache, follow "
    "rank 0 of a model split across machines."
)

DEMO_SCENARIOS = ("tool_call_tags", "tool_call_json_fence", "thinking", "thinking_off")
"""The demo's agent runs: a call in Qwen's `<tool_call>` form, then one written as a bare ```json fence."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pydantic-mlx` command."""
    parser = argparse.ArgumentParser(prog="pydantic-mlx", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="build the tiny demo model (first run only) and run a PydanticAI agent with tools on it",
        description="Build (or load from the cache) the tiny MLX demo model, then run PydanticAI agents "
        "whose model calls a tool, gets its result and answers.",
    )
    demo.add_argument("--cache-dir", type=Path, default=None, help="where the model is cached")
    demo.set_defaults(run=run_demo)

    parse = commands.add_parser(
        "parse",
        help="parse a model output into content, reasoning and tool calls (printed as JSON)",
        description="Read a model's output from FILE (or standard input) and print what "
        "pydantic_mlx.parsers.parse finds in it as JSON.",
    )
    parse.add_argument("file", nargs="?", type=Path, help="the model output (default: standard input)")
    parse.add_argument("--format", default="auto", help="tool-call format (default: auto)")
    parse.add_argument("--tools", type=Path, help="JSON file with the declared tools (OpenAI-style list)")
    parse.add_argument("--in-reasoning", action="store_true", help="the output starts inside reasoning")
    parse.add_argument("--truncated", action="store_true", help="generation stopped at its token limit")
    parse.set_defaults(run=run_parse)

    evaluate = commands.add_parser(
        "eval",
        help="score model configurations on agent cases (tools, code, reasoning) side by side",
        description="Run the built-in suite (or --suite FILE) on the model configuration given and on each "
        "--compare variant of it; print the scores per category and tokens/s, and write an HTML report "
        f"with every case's transcript. Needs the eval extra: {install_hint('eval')}.",
    )
    evaluate.add_argument(
        "--model",
        required=True,
        help="MLX model: a short name (pydantic-mlx models), a Hugging Face id or a local folder",
    )
    evaluate.add_argument("--adapter", help="LoRA adapter folder (as written by mlx_lm.lora)")
    evaluate.add_argument("--tool-format", help="tool-call format (default: detected from the chat template)")
    evaluate.add_argument("--constrained", action="store_true", help="use constrained decoding of tool calls")
    evaluate.add_argument(
        "--compare",
        nargs="+",
        action="extend",
        default=[],
        metavar="CONFIG",
        help="also run this variant: key=value pairs joined by commas, keys model, adapter, tool_format, "
        "constrained, name (e.g. tool_format=auto or adapter=out/v2,name=v2)",
    )
    evaluate.add_argument(
        "--suite", type=Path, help="YAML or JSON file of cases (default: the built-in suite)"
    )
    evaluate.add_argument(
        "--report",
        type=Path,
        default=Path("eval-report.html"),
        help="HTML report path; a JSON twin is written beside it (both updated after every case)",
    )
    evaluate.add_argument(
        "--resume",
        action="store_true",
        help="continue the run recorded in the report's JSON: cases it holds as finished with the same "
        "configuration are kept, not run again",
    )
    evaluate.add_argument("--max-tokens", type=int, default=512, help="token limit per model request")
    evaluate.add_argument(
        "--temperature",
        type=float,
        default=0.0,
        help="sampling temperature of every request (default 0: greedy decoding)",
    )
    evaluate.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each case N times (repeat k samples from seed --seed + k - 1); cases are scored as "
        "passes out of N",
    )
    evaluate.add_argument(
        "--seed",
        type=int,
        default=0,
        help="sampling seed of the first repeat, with --temperature (default 0)",
    )
    evaluate.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="start no run of a configuration later than SECONDS after its runs began; runs in flight "
        "finish, the rest are left out (--resume runs them)",
    )
    evaluate.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="K",
        help="run K cases of a configuration at once, their requests batched (default 1; tokens/s is "
        "then per request, not throughput)",
    )
    evaluate.add_argument(
        "--save-traces",
        type=Path,
        metavar="DIR",
        help="write each case's trace (messages, tools offered, verdict) to DIR/<configuration>/, "
        "for `pydantic-mlx export`",
    )
    evaluate.set_defaults(run=run_eval)

    export = commands.add_parser(
        "export",
        help="turn saved traces into mlx_lm.lora training data (tools/chat JSONL)",
        description="Read the traces in DIR (written by `eval --save-traces` or pydantic_mlx.traces) and "
        'write mlx_lm.lora\'s chat JSONL: {"messages": [...], "tools": [...]} per line, tool calls as '
        "structured tool_calls, tool results as tool messages. See docs/finetune.md.",
    )
    export.add_argument("traces", nargs="+", type=Path, metavar="DIR", help="trace folders or files")
    export.add_argument("--out", type=Path, required=True, help="where the training records go (train.jsonl)")
    export.add_argument("--only-passed", action="store_true", help="only the traces whose verdict is a pass")
    export.add_argument(
        "--split",
        type=float,
        help="this share of the traces goes to --out, the rest to valid.jsonl beside it (e.g. 0.9)",
    )
    export.add_argument(
        "--per-request",
        action="store_true",
        help="one record per model response (train with --mask-prompt), not one per conversation; "
        "responses sent back for a retry are left out and counted",
    )
    export.add_argument(
        "--clean-steps",
        action="store_true",
        help="one record per clean response (implies --per-request): also leave out the answers to a "
        "retry (an echoed retry prompt included) and responses that repeat a call the run already made "
        "(same tool and arguments); the first call and the final answer stay. Every response left out is "
        "counted and listed",
    )
    export.add_argument(
        "--model",
        help="check every record against this model's chat template: its tokens must be what MLXModel "
        "rendered (records that differ are left out and listed)",
    )
    export.add_argument("--seed", type=int, default=0, help="shuffle seed of --split (default 0)")
    export.set_defaults(run=run_export)
    models = commands.add_parser(
        "models",
        help="list the short model names MLXModel accepts and the Hugging Face repo each one loads",
        description="The short names MLXModel(...) and --model accept (case-insensitive, with or without "
        "-Instruct), the mlx-community repo each one loads, and 'downloaded' beside those already in the "
        "Hugging Face cache (they load offline). Any other model is named by its repo id or local folder.",
    )
    models.set_defaults(run=run_models)

    cache = commands.add_parser(
        "cache",
        help="list or clear the prompt caches kept on disk (MLXModel(prompt_cache_dir=...))",
        description="The KV caches of shared prompt prefixes (system prompt and tools) that MLXModel "
        "keeps in a folder across processes: `ls` lists them (newest first), `clear` deletes them.",
    )
    cache.add_argument("action", choices=("ls", "clear"), help="ls: list the files; clear: delete them")
    cache.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=None,
        help="the prompt_cache_dir (default: ~/.cache/pydantic-mlx/prompt-cache, or under "
        "$PYDANTIC_MLX_CACHE)",
    )
    cache.set_defaults(run=run_cache)

    follow = commands.add_parser(
        "follow",
        help="on a rank other than 0 of a distributed model: load this rank's shard and follow rank 0",
        description="Load this rank's shard of MODEL (as MLXModel(MODEL, distributed=True) does on "
        "rank 0) and run rank 0's forward passes in step with it until rank 0 closes the model or "
        "exits. Start it as mlx.launch starts a rank (MLX_HOSTFILE and MLX_RANK set); see "
        "docs/distributed.md.",
    )
    follow.add_argument("model", help="short name, Hugging Face id or local folder: the one rank 0 loads")
    follow.add_argument(
        "--sharding",
        choices=("auto", "tensor", "pipeline"),
        default="auto",
        help="how the model is split: the same as rank 0's (default: auto)",
    )
    follow.add_argument(
        "--prompt-cache-dir",
        type=Path,
        default=None,
        help="keep this rank's KV of shared prompt prefixes in this folder across runs (as rank 0's "
        "prompt_cache_dir)",
    )
    follow.set_defaults(run=run_follow)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader stopped early (`| head`): not an error of ours, so no traceback. Python would
        # still fail flushing stdout at exit, so it is pointed at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE


def run_models(args: argparse.Namespace) -> int:
    """`pydantic-mlx models`: the short-name table, and which of them are downloaded already."""
    from ._sources import MODEL_ALIASES, cached_snapshot

    name_width = max(map(len, MODEL_ALIASES))
    repo_width = max(map(len, MODEL_ALIASES.values()))
    for name, repo in MODEL_ALIASES.items():
        # Which ones run offline right now (from the Hugging Face cache) and which a first use downloads.
        where = "downloaded" if cached_snapshot(repo) else ""
        print(f"{name:<{name_width}}  {repo:<{repo_width}}  {where}".rstrip())
    return 0


def run_cache(args: argparse.Namespace) -> int:
    """`pydantic-mlx cache ls|clear [DIR]`."""
    from ._disk_cache import clear_cache_dir, default_prompt_cache_dir, list_cache_dir

    folder: Path = args.dir if args.dir is not None else default_prompt_cache_dir()
    if folder.exists() and not folder.is_dir():
        print(f"error: {folder} is not a folder", file=sys.stderr)
        return 2
    if args.action == "clear":
        print(f"deleted {clear_cache_dir(folder)} prompt-cache files from {folder}")
        return 0
    entries = list_cache_dir(folder)
    if not entries:
        print(f"no prompt-cache files in {folder}")
        return 0
    for entry in entries:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
        tokens = "?" if entry.tokens is None else str(entry.tokens)
        model = entry.model or "?"
        print(f"{_size(entry.nbytes):>9}  {tokens:>7} tokens  {used}  {model}  {entry.path.name}")
    total = sum(e.nbytes for e in entries)
    print(f"{len(entries)} files, {_size(total)} in {folder}")
    return 0


def _size(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pydantic-mlx")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "(not installed)"


def run_parse(args: argparse.Namespace) -> int:
    """`pydantic-mlx parse`: the parse result of one output, as JSON. Exit 2 on bad arguments."""
    import dataclasses
    import json

    from .parsers import available_formats, parse

    if args.format not in available_formats():
        print(
            f"unknown format {args.format!r}; choose from {', '.join(available_formats())}", file=sys.stderr
        )
        return 2
    try:
        tools = json.loads(args.tools.read_text(encoding="utf-8")) if args.tools else None
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read the --tools file: {exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"the --tools file {args.tools} is not valid JSON: {exc}", file=sys.stderr)
        return 2
    except RecursionError:
        print(f"the --tools file {args.tools} nests too deeply to read", file=sys.stderr)
        return 2
    try:
        text = args.file.read_text(encoding="utf-8") if args.file else sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read the model output: {exc}", file=sys.stderr)
        return 2
    if tools is not None and not isinstance(tools, list):
        print("--tools must hold a JSON list of tool definitions", file=sys.stderr)
        return 2
    try:
        result = parse(
            text, format=args.format, tools=tools, in_reasoning=args.in_reasoning, truncated=args.truncated
        )
    except TypeError as exc:  # a tools entry that is not a tool definition
        print(f"bad --tools: {exc}", file=sys.stderr)
        return 2
    except RecursionError:  # a schema (or the text's JSON) nested thousands deep
        print("cannot parse: the tools' schemas or the text nest too deeply", file=sys.stderr)
        return 2
    print(json.dumps(dataclasses.asdict(result), ensure_ascii=False, indent=2))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """`pydantic-mlx eval`: scores per configuration, a pass/fail grid, an HTML and a JSON report.
    Exit 2 on a broken configuration, suite or report to resume, with the reason and no traceback;
    exit `EVAL_INTERRUPTED` after Ctrl-C, with the tables and reports of the cases that finished."""
    import asyncio

    from .traces import TraceError

    try:
        from . import eval as evals
    except ModuleNotFoundError as exc:
        if exc.name != "pydantic_evals":
            raise
        print(f"pydantic-mlx eval needs pydantic-evals: {install_hint('eval')}", file=sys.stderr)
        return 2

    if args.max_tokens < 1:  # else every request fails, and the model is scored FAIL on every case
        print(f"error: --max-tokens must be at least 1, not {args.max_tokens}", file=sys.stderr)
        return 2

    def progress(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    base = evals.EvalConfig(args.model, args.adapter, args.tool_format, args.constrained)
    try:
        configs = [base, *(base.varied(spec) for spec in args.compare)]
        cases = evals.load_suite(args.suite) if args.suite else evals.builtin_suite()
        runs = f"{len(cases)} cases × {args.repeat} runs" if args.repeat > 1 else f"{len(cases)} cases"
        print(f"Loading {len(configs)} configuration(s), then {runs} each...", file=sys.stderr)
        results = asyncio.run(
            evals.run_eval(
                configs,
                cases,
                max_tokens=args.max_tokens,
                progress=progress,
                report=args.report,
                resume=args.resume,
                save_traces=args.save_traces,
                repeat=args.repeat,
                temperature=args.temperature,
                seed=args.seed,
                concurrency=args.concurrency,
                time_limit=args.time_limit,
            )
        )
    except (evals.ConfigError, evals.SuiteError, evals.ReportError, TraceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _eval_interrupted(args.report)
    print(evals.summary_table(results), end="\n\n")
    print(evals.case_table(results), end="\n\n")
    print(f"Report with every transcript: {args.report} (JSON: {evals.json_report_path(args.report)})")
    finished, asked = sum(r.count() for r in results), len(results) * len(cases) * args.repeat
    if finished < asked:
        print(f"Stopped at the time limit: {finished} of {asked} runs finished (--resume runs the rest)")
    if args.save_traces is not None:
        print(f"Traces: {args.save_traces} (pydantic-mlx export {args.save_traces} --out train.jsonl)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """`pydantic-mlx export`: traces to mlx_lm.lora JSONL. Exit 2 on unreadable traces or bad
    arguments, 1 when no record could be written."""
    from pydantic_ai.exceptions import UserError

    from .traces import TraceError, export_traces, load_traces

    if args.split is not None and not 0 < args.split <= 1:
        print(f"error: --split must be above 0 and at most 1, not {args.split}", file=sys.stderr)
        return 2
    try:
        traces = load_traces(args.traces)
        tokenizer = _tokenizer(args.model) if args.model else None
        summary = export_traces(
            traces,
            args.out,
            only_passed=args.only_passed,
            split=args.split,
            per_request=args.per_request,
            clean_steps=args.clean_steps,
            tokenizer=tokenizer,
            seed=args.seed,
        )
    except (TraceError, UserError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in summary.skipped:
        print(f"  left out {line}", file=sys.stderr)
    for step in summary.dropped:
        print(f"  not trained: {step.trace}, response {step.response} ({step.reason})", file=sys.stderr)
    chosen = "passed " if args.only_passed else ""
    print(
        f"{summary.exported} of {summary.traces} traces exported ({chosen}and round-trip checked)"
        if summary.checked
        else f"{summary.exported} of {summary.traces} traces exported"
    )
    if summary.dropped:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in summary.dropped_counts().items())
        print(f"{len(summary.dropped)} responses not trained ({reasons})")
    print(f"{summary.train_records} records -> {summary.train_path}")
    if summary.valid_path is not None:
        print(f"{summary.valid_records} records -> {summary.valid_path}")
    if args.only_passed and summary.traces and not any(trace.passed is True for trace in traces):
        # What the real Qwen2.5-Coder-0.5B gave on the built-in read cases: say why, and what to try.
        print(
            f"error: none of the {summary.traces} traces passed, so there is nothing to train on: capture "
            "runs that pass (a variant that does, e.g. --compare tool_format=auto or a suite whose prompts "
            "name the tool), or export without --only-passed",
            file=sys.stderr,
        )
    return 0 if summary.train_records else 1


def _tokenizer(model: str) -> Any:
    """The tokenizer (chat template included) of a model as `MLXModel(model)` names it (a short name,
    a Hugging Face id or a local folder), as mlx-lm loads it."""
    from huggingface_hub import snapshot_download
    from mlx_lm.utils import load_tokenizer

    from ._sources import download_error, resolve_model

    path = Path(model).expanduser()
    # A folder with the tokenizer's files is enough here (no weights needed); anything else is
    # what MLXModel takes: a UserError for a missing folder or an unknown short name.
    source = str(path) if path.is_dir() else resolve_model(model)
    path = Path(source)
    try:
        if not path.is_dir():  # the tokenizer's files only, not the weights
            path = Path(snapshot_download(source, allow_patterns=["*.json", "*.jinja", "*.model", "*.txt"]))
        return load_tokenizer(path)
    except Exception as exc:  # whatever transformers or the hub raise: the user needs the reason
        clear = download_error(source, exc)
        if clear is not None:
            raise clear from exc
        raise OSError(f"cannot load the tokenizer of {model}: {type(exc).__name__}: {exc}") from exc


def _eval_interrupted(report: Path) -> int:
    """After Ctrl-C: the tables of the cases that finished, as the report kept them."""
    from . import eval as evals

    json_path = evals.json_report_path(report)
    try:
        run = evals.read_report(json_path)
    except evals.ReportError:
        run = None
    if run is None or run.status != "interrupted":  # stopped before this run wrote its report
        print("\nInterrupted before the run started; no report written.", file=sys.stderr)
        return EVAL_INTERRUPTED
    print(evals.summary_table(run.results), end="\n\n")
    print(evals.case_table(run.results), end="\n\n")
    print(f"{run.note} Report so far: {report} (JSON: {json_path})")
    print("Run the same command with --resume to continue.")
    return EVAL_INTERRUPTED


def run_follow(args: argparse.Namespace) -> int:
    """`pydantic-mlx follow MODEL`: a rank other than 0 of a distributed model."""
    import mlx.core as mx
    from pydantic_ai.exceptions import UserError

    from . import MLXModel
    from ._distributed import DistributedGroupError

    group = mx.distributed.init()
    if group.size() == 1:
        print(
            "error: this process is not a rank of a distributed group: start it with mlx.launch "
            "(or set MLX_HOSTFILE and MLX_RANK as it does); see docs/distributed.md",
            file=sys.stderr,
        )
        return 2
    try:
        model = MLXModel(
            args.model, distributed=group, sharding=args.sharding, prompt_cache_dir=args.prompt_cache_dir
        )
    except (UserError, DistributedGroupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if model.rank == 0:
        # Its exit releases the other ranks (they have loaded their shards and wait for rank 0).
        print("error: rank 0 runs the agent; `pydantic-mlx follow` is for the other ranks", file=sys.stderr)
        return 2
    print(f"rank {model.rank} of {group.size()}: following rank 0", file=sys.stderr, flush=True)
    try:
        model.follow()
    except DistributedGroupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"rank {model.rank}: rank 0 closed the model", file=sys.stderr)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """`pydantic-mlx demo`: real agent runs, with real tools, on the tiny model."""
    from pydantic_ai.messages import ModelResponse, ThinkingPart, ToolCallPart, ToolReturnPart

    from . import MLXModel
    from .demo import build_demo_model, scenario

    def progress(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    print("Preparing the demo model (built and trained on first use, then cached)...", file=sys.stderr)
    started = time.perf_counter()
    try:
        path = build_demo_model(args.cache_dir, progress=progress)
    except OSError as exc:  # --cache-dir is a file, unwritable, or on a full disk
        print(f"cannot use the cache folder: {exc}", file=sys.stderr)
        return 2
    print(f"Model ready in {time.perf_counter() - started:.1f} s: {path}\n")

    model = MLXModel(path)
    for name in DEMO_SCENARIOS:
        case = scenario(name)
        thinking = (case.model_settings or {}).get("thinking")
        settings = "" if thinking is None else f", thinking={thinking}"
        print(f"▶ {case.prompt}    [scenario {name}{settings}]")
        result = case.agent(model).run_sync(case.prompt)
        for message in result.all_messages():
            for part in message.parts:
                if isinstance(part, ThinkingPart):
                    print(f"  thinking    {_one_line(part.content.strip())}")
                elif isinstance(message, ModelResponse) and isinstance(part, ToolCallPart):
                    print(f"  tool call   {part.tool_name}({part.args_as_json_str()})")
                elif isinstance(part, ToolReturnPart):
                    print(f"  result      {_one_line(part.model_response_str())}")
        print(f"  answer      {_one_line(str(result.output))}\n")
    return 0


def _one_line(text: Any) -> str:
    return str(text).replace("\n", "\\n")


if __name__ == "__main__":
    raise SystemExit(main())
