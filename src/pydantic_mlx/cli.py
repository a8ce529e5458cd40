"""The `pydantic-mlx` command line. One small function per subcommand."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EVAL_INTERRUPTED = 130
"""Exit status of an eval stopped by Ctrl-C (128 + SIGINT, as shells report it); its report is kept."""

DEMO_SCENARIOS = ("tool_call_tags", "tool_call_json_fence")
"""The demo's agent runs: a call in Qwen's `<tool_call>` form, then one written as a bare ```json fence."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pydantic-mlx` command."""
    parser = argparse.ArgumentParser(prog="pydantic-mlx", description=__doc__)
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
        "with every case's transcript. Needs the eval extra: pip install 'pydantic-mlx[eval]'.",
    )
    evaluate.add_argument("--model", required=True, help="Hugging Face id or local folder of an MLX model")
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
    evaluate.set_defaults(run=run_eval)

    args = parser.parse_args(argv)
    return args.run(args)


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
        text = args.file.read_text(encoding="utf-8") if args.file else sys.stdin.read()
        tools = json.loads(args.tools.read_text(encoding="utf-8")) if args.tools else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"cannot read input: {exc}", file=sys.stderr)
        return 2
    except RecursionError:
        print("cannot read input: --tools nests too deeply to read", file=sys.stderr)
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

    try:
        from . import eval as evals
    except ModuleNotFoundError as exc:
        if exc.name != "pydantic_evals":
            raise
        print("pydantic-mlx eval needs pydantic-evals: pip install 'pydantic-mlx[eval]'", file=sys.stderr)
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
        print(f"Loading {len(configs)} configuration(s), then {len(cases)} cases each...", file=sys.stderr)
        results = asyncio.run(
            evals.run_eval(
                configs,
                cases,
                max_tokens=args.max_tokens,
                progress=progress,
                report=args.report,
                resume=args.resume,
            )
        )
    except (evals.ConfigError, evals.SuiteError, evals.ReportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _eval_interrupted(args.report)
    print(evals.summary_table(results), end="\n\n")
    print(evals.case_table(results), end="\n\n")
    print(f"Report with every transcript: {args.report} (JSON: {evals.json_report_path(args.report)})")
    return 0


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


def run_demo(args: argparse.Namespace) -> int:
    """`pydantic-mlx demo`: real agent runs, with real tools, on the tiny model."""
    from pydantic_ai.messages import ModelResponse, ToolCallPart, ToolReturnPart

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
        print(f"▶ {case.prompt}    [scenario {name}]")
        result = case.agent(model).run_sync(case.prompt)
        for message in result.all_messages():
            for part in message.parts:
                if isinstance(message, ModelResponse) and isinstance(part, ToolCallPart):
                    print(f"  tool call   {part.tool_name}({part.args_as_json_str()})")
                elif isinstance(part, ToolReturnPart):
                    print(f"  result      {_one_line(part.model_response_str())}")
        print(f"  answer      {_one_line(str(result.output))}\n")
    return 0


def _one_line(text: Any) -> str:
    return str(text).replace("\n", "\\n")


if __name__ == "__main__":
    raise SystemExit(main())
