"""Print the conformance score table (and, with -v, every failure in detail).

python tests/conformance/report.py                 # table + failing ids
python tests/conformance/report.py -v              # + input, expected and got per failure
python tests/conformance/report.py -f hermes -f glm
python tests/conformance/report.py --case hermes/single -v
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _conformance as suite


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-f", "--family", action="append", help="only these families (repeatable)")
    ap.add_argument("--case", action="append", help="only these case ids (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show input, expected and got per failure")
    ap.add_argument("--limit", type=int, default=400, help="clip shown strings to this many characters")
    args = ap.parse_args()

    cases = suite.load_cases(set(args.family) if args.family else None)
    if args.case:
        cases = [c for c in cases if c["id"] in set(args.case)]
    start = time.perf_counter()
    results = [suite.run_case(c) for c in cases]
    elapsed = time.perf_counter() - start
    print(suite.score_table(results))
    print(f"\n{len(results)} cases in {elapsed:.1f}s")
    failing = [r for r in results if not r.passed]
    if failing:
        print(f"\nfailing ({len(failing)}):")
        for r in failing:
            print(suite.describe_failure(r, args.limit) if args.verbose else f"- {r.case['id']}")
    return 0 if suite.pass_rate(results) >= 0.99 else 1


if __name__ == "__main__":
    raise SystemExit(main())
