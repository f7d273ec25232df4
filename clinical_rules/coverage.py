"""Complaint-taxonomy coverage: ``python -m clinical_rules.coverage [--verbose]``.

Prints, for every presenting complaint of the adopted taxonomy (CEDIS, condensed:
``rulesets/default/complaints.yaml``), its protocol, the rules that belong to that protocol and
the dev vignettes tagged for it by kind (typical / atypical / trap). ``problems()`` lists what
the test suite holds against: a complaint without a protocol, or without dev vignettes of each
kind unless it is a declared known gap (``vignettes_pending``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .evaluate import VIGNETTE_DIR
from .loader import DEFAULT_PATH, load_ruleset
from .ruleset import RuleSet
from .yamlsrc import load_yaml

KINDS = ("typical", "atypical", "trap")
TAXONOMY_FILE = DEFAULT_PATH / "complaints.yaml"


@dataclass(frozen=True, slots=True)
class TaxonomyComplaint:
    id: str
    group: str
    protocol: str
    cedis: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Taxonomy:
    source: str
    version: str
    complaints: tuple[TaxonomyComplaint, ...]
    pending: frozenset[str]


@dataclass
class Row:
    complaint: TaxonomyComplaint
    protocol_ok: bool
    rules: list[str] = field(default_factory=list)
    vignettes: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})

    @property
    def missing_kinds(self) -> list[str]:
        return [k for k in KINDS if not self.vignettes[k]]


def _load(path: Path) -> dict:
    data, problems = load_yaml(path)
    if problems:
        raise ValueError("; ".join(f"{p.file}:{p.line}: {p.message}" for p in problems))
    return data if isinstance(data, dict) else {}


def load_taxonomy(path: Path = TAXONOMY_FILE) -> Taxonomy:
    data = _load(path)
    meta = data.get("taxonomy") or {}
    items = []
    seen: set[str] = set()
    for item in data.get("complaints") or []:
        cid = str(item["id"])
        if cid in seen:
            raise ValueError(f"{path}: duplicate complaint id {cid}")
        seen.add(cid)
        items.append(TaxonomyComplaint(cid, str(item["group"]), str(item.get("protocol") or ""),
                                       tuple(str(c) for c in item.get("cedis") or ())))  # fmt: skip
    return Taxonomy(str(meta.get("source", "")), str(meta.get("version", "")), tuple(items),
                    frozenset(str(p) for p in data.get("vignettes_pending") or ()))  # fmt: skip


def tagged_vignettes(path: Path = VIGNETTE_DIR / "dev.yaml") -> list[tuple[str, str, str]]:
    """(vignette id, taxonomy complaint, kind) for every dev vignette that carries the tags."""
    out = []
    for item in _load(path).get("vignettes") or []:
        if "complaint" in item:
            out.append((str(item["id"]), str(item["complaint"]), str(item.get("kind", ""))))
    return out


def build(rs: RuleSet | None = None, taxonomy: Taxonomy | None = None,
          vignettes: Sequence[tuple[str, str, str]] | None = None) -> list[Row]:  # fmt: skip
    rs = rs or load_ruleset()
    taxonomy = taxonomy or load_taxonomy()
    vignettes = tagged_vignettes() if vignettes is None else vignettes
    rows = {c.id: Row(c, c.protocol in rs.complaints) for c in taxonomy.complaints}
    for row in rows.values():
        row.rules = [r.id for r in rs.rules if r.complaint == row.complaint.protocol]
    for vid, cid, kind in vignettes:
        if cid in rows and kind in KINDS:
            rows[cid].vignettes[kind].append(vid)
    return list(rows.values())


def problems(rs: RuleSet | None = None, taxonomy: Taxonomy | None = None,
             vignettes: Sequence[tuple[str, str, str]] | None = None) -> list[str]:  # fmt: skip
    """Everything the coverage test fails on (empty when covered)."""
    taxonomy = taxonomy or load_taxonomy()
    vignettes = tagged_vignettes() if vignettes is None else vignettes
    out = []
    ids = {c.id for c in taxonomy.complaints}
    for vid, cid, kind in vignettes:
        if cid not in ids:
            out.append(f"vignette {vid}: unknown taxonomy complaint {cid!r}")
        if kind not in KINDS:
            out.append(f"vignette {vid}: kind must be one of {', '.join(KINDS)} (got {kind!r})")
    for p in sorted(taxonomy.pending - ids):
        out.append(f"vignettes_pending names unknown complaint {p!r}")
    for row in build(rs, taxonomy, vignettes):
        cid = row.complaint.id
        if not row.protocol_ok:
            out.append(f"{cid}: protocol {row.complaint.protocol!r} is not a complaint in protocols.yaml")
        missing = row.missing_kinds
        if missing and cid not in taxonomy.pending:
            out.append(f"{cid}: no dev vignette of kind {', '.join(missing)}")
        if not missing and cid in taxonomy.pending:
            out.append(f"{cid}: now covered; remove it from vignettes_pending")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clinical_rules.coverage", description=__doc__)
    ap.add_argument("--verbose", "-v", action="store_true", help="list every rule id")
    args = ap.parse_args(argv)
    rs = load_ruleset()
    tax = load_taxonomy()
    rows = build(rs, tax)
    print(f"Taxonomy: {tax.version} ({len(rows)} complaints); rule set {rs.version}")
    modifiers = [r.id for r in rs.rules if r.id.startswith("MOD-")]
    screen = rs.complaints["universal_screen"].questions if "universal_screen" in rs.complaints else ()
    print(f"First-order screen (any complaint): {', '.join(screen)}")
    print(f"High-risk modifiers (any complaint): {', '.join(modifiers)}")
    group = None
    for row in rows:
        c = row.complaint
        if c.group != group:
            group = c.group
            print(f"\n[{group}]")
        rules = ", ".join(row.rules) if args.verbose else f"{len(row.rules)} rules"
        vig = "; ".join(f"{k}: {' '.join(row.vignettes[k]) or '-'}" for k in KINDS)
        gap = "  (known gap)" if c.id in tax.pending else ""
        proto = c.protocol if row.protocol_ok else f"{c.protocol} (MISSING)"
        print(f"  {c.id:24s} -> {proto:18s} -> {rules} -> {vig}{gap}")
    found = problems(rs, tax)
    covered = sum(1 for r in rows if not r.missing_kinds)
    print(f"\nFully covered (typical, atypical and trap dev vignettes): {covered} of {len(rows)}")
    for p in found:
        print(f"PROBLEM: {p}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
