"""What an eval run is made of: the configurations it compares and their results, case by case.

Shared by the runner, which makes them, and the reports, which show and store them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ._checks import CaseOutcome
from ._suite import EvalCase

__all__ = ["CaseResult", "Check", "ConfigError", "ConfigResult", "EvalConfig", "ReportError", "RunStatus"]

_CONFIG_KEYS = ("model", "adapter", "tool_format", "constrained", "name")


class ConfigError(ValueError):
    """A configuration that cannot run: a missing model or adapter, an unknown option, a failed load."""


def _model_label(model: str) -> str:
    """A model's name for people: a folder's name, except where that name is a hash (a Hugging
    Face cache snapshot is named by its commit, a pydantic-mlx demo folder by its recipe)."""
    folder = Path(model).expanduser()
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        return folder.parent.parent.name.split("--")[-1]  # models--owner--name/snapshots/<commit>
    if (folder / "pydantic_mlx_recipe.json").is_file():
        return f"{folder.name.rsplit('-', 1)[0]}-model"  # demo-<recipe hash> -> "demo-model"
    return folder.name or model


@dataclass(frozen=True)
class EvalConfig:
    """One model configuration to evaluate: model, LoRA adapter, tool-call format, constrained decoding."""

    model: str
    adapter: str | None = None
    tool_format: str | None = None
    constrained: bool = False
    name: str | None = None

    @property
    def label(self) -> str:
        """The name shown in tables and reports: `name`, else what the configuration sets."""
        if self.name:
            return self.name
        label = _model_label(self.model)
        if self.adapter:
            label += f" +{Path(self.adapter).name}"
        if self.tool_format:
            label += f" [{self.tool_format}]"
        if self.constrained:
            label += " [constrained]"
        return label

    def varied(self, spec: str) -> EvalConfig:
        """This configuration with the settings of `spec` changed: comma-separated `key=value`
        pairs with keys model, adapter, tool_format, constrained (true/false) and name, e.g.
        `adapter=adapters/v2,name=v2`. `constrained` alone means `constrained=true`."""
        changes: dict[str, Any] = {"name": None}
        for item in filter(None, (piece.strip() for piece in spec.split(","))):
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if key not in _CONFIG_KEYS:
                raise ConfigError(f"--compare {spec!r}: unknown key {key!r}; use {', '.join(_CONFIG_KEYS)}")
            value = value.strip()
            if key == "constrained":
                if sep and value.lower() not in ("true", "false"):
                    raise ConfigError(f"--compare {spec!r}: constrained must be true or false")
                changes[key] = not sep or value.lower() == "true"
            elif not value:
                raise ConfigError(f"--compare {spec!r}: {key} needs a value")
            else:
                changes[key] = value
        return replace(self, **changes)


@dataclass(frozen=True)
class Check:
    """One evaluator's verdict on a case."""

    name: str
    passed: bool
    reason: str | None = None


@dataclass(frozen=True)
class CaseResult:
    """A case's verdict under one configuration: passed only if every check passed."""

    case: EvalCase
    checks: list[Check]
    outcome: CaseOutcome | None
    error: str | None = None
    """An error of the eval itself (a crashed task or evaluator), not of the model."""
    repeat: int = 1
    """Which run of the case this is (1 to the eval's `repeat`), when each case ran several times."""

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(check.passed for check in self.checks)


@dataclass(frozen=True)
class ConfigResult:
    """The results of one configuration over the whole suite."""

    config: EvalConfig
    cases: list[CaseResult]
    seconds: float

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(result.case.category for result in self.cases))

    def score(self, category: str | None = None) -> float:
        """Share of runs passed (0 to 1), overall or in one category; a run is one case, or one
        repeat of a case when the eval ran each several times."""
        chosen = [r for r in self.cases if category is None or r.case.category == category]
        return sum(r.passed for r in chosen) / len(chosen) if chosen else 0.0

    def passed(self, category: str | None = None) -> int:
        return sum(r.passed for r in self.cases if category is None or r.case.category == category)

    def count(self, category: str | None = None) -> int:
        return sum(1 for r in self.cases if category is None or r.case.category == category)

    def pass_counts(self) -> dict[str, tuple[int, int]]:
        """Each case's runs passed and runs made, `{name: (passed, runs)}`, in the suite's order."""
        counts: dict[str, tuple[int, int]] = {}
        for result in self.cases:
            passed, runs = counts.get(result.case.name, (0, 0))
            counts[result.case.name] = (passed + result.passed, runs + 1)
        return counts

    @property
    def output_tokens(self) -> int:
        return sum(r.outcome.output_tokens for r in self.cases if r.outcome)

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of generation, over every request of the suite."""
        seconds = sum(r.outcome.decode_seconds for r in self.cases if r.outcome)
        return self.output_tokens / seconds if seconds else 0.0


class ReportError(ValueError):
    """A report to resume that cannot be read or was run with other settings."""


RunStatus = Literal["running", "finished", "interrupted", "out_of_time"]
