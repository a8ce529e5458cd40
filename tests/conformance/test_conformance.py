"""Conformance: several hundred model outputs across every format family, scored strictly.

Each case (tests/conformance/cases/*.jsonl) runs through `parse(format="auto")` and through
`StreamParser` fed whole, in seeded random pieces and one character at a time. The bar is a
99% pass rate overall; the failing case ids are listed either way. Details of one case:
`python tests/conformance/report.py --case hermes/single -v`.
"""

from __future__ import annotations

import _conformance as suite

BAR = 0.99


def test_cases_are_well_formed() -> None:
    cases = suite.load_cases()
    assert len(cases) >= 300
    kinds = {"malformed_call", "truncated_call", "unknown_tool"}
    for case in cases:
        exp = case["expected"]
        assert case["family"] == case["id"].split("/")[0], case["id"]
        assert case["source"], case["id"]
        assert exp["content"] is None or exp["content"].strip(), case["id"]
        assert exp["reasoning"] is None or exp["reasoning"].strip(), case["id"]
        assert exp["errors"] is None or set(exp["errors"]) <= kinds, case["id"]
        for call in exp["calls"]:
            assert isinstance(call["name"], str) and isinstance(call["arguments"], dict), case["id"]


def test_conformance_pass_rate() -> None:
    results = suite.run_all()
    print()
    print(suite.score_table(results))
    failing = [r.case["id"] for r in results if not r.passed]
    rate = suite.pass_rate(results)
    assert rate >= BAR, f"pass rate {rate:.1%} < {BAR:.0%}; failing ({len(failing)}): {failing}"
    if failing:
        print(f"failing ({len(failing)}): {failing}")
