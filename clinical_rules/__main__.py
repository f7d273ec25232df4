"""Shell entry point: ``python -m clinical_rules "my chest feels tight"`` prints the assessment.

Several arguments are several utterances of one call. ``--json`` prints ``Assessment.to_dict()``;
``--age-band``, ``--subject`` and ``--pregnant`` set the patient context; ``--answer ID=TEXT``
answers a protocol question (repeatable); ``--version`` prints the rule set version.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .api import assess
from .loader import RuleSetError, load_ruleset
from .types import AGE_BANDS, SUBJECTS, PatientContext


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinical_rules", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("utterances", nargs="*", help="what the caller said (one argument per utterance)")
    parser.add_argument("--json", action="store_true", help="print the assessment as JSON")
    parser.add_argument("--subject", choices=SUBJECTS, default="self")
    parser.add_argument("--age-band", choices=AGE_BANDS, default=None)
    parser.add_argument("--pregnant", choices=("yes", "no"), default=None)
    parser.add_argument("--answer", action="append", default=[], metavar="QUESTION_ID=TEXT")
    parser.add_argument("--ruleset", default=None, help="rule set directory (default: the packaged one)")
    parser.add_argument("--version", action="store_true", help="print the rule set version and exit")
    args = parser.parse_args(argv)
    try:
        rs = load_ruleset(args.ruleset)
    except RuleSetError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.version:
        print(rs.version)
        return 0
    utterances = args.utterances or ([sys.stdin.read()] if not sys.stdin.isatty() else [])
    if not utterances:
        parser.error("give the caller's words as arguments (or on standard input)")
    answers = {}
    for item in args.answer:
        qid, _, text = item.partition("=")
        answers[qid.strip()] = text
    ctx = PatientContext(
        subject=args.subject,
        age_band=args.age_band,
        pregnant=None if args.pregnant is None else args.pregnant == "yes",
    )
    a = assess(utterances, context=ctx, ruleset=rs, answers=answers)
    if args.json:
        print(json.dumps(a.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(a.explanation())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
