"""Load, validate and compile a rule set directory. Every error names its file and line."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from .context import CategorySpec, ContextAnalyzer
from .patterns import PatternError, PatternMatcher, parse_pattern
from .ruleset import (
    AnswerLexicon,
    Complaint,
    Concept,
    Condition,
    LevelInfo,
    Pending,
    Question,
    Rule,
    RuleSet,
    Script,
    Where,
)
from .text import Normaliser
from .types import AGE_BANDS, DISPOSITIONS, SUBJECTS, UrgencyLevel
from .yamlsrc import LDict, LList, load_yaml

DEFAULT_PATH = Path(__file__).resolve().parent / "rulesets" / "default"
_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_VERSION_RE = re.compile(r"^\d+(\.\d+)*([a-z0-9.+-]*)?$")
QUESTION_TYPES = ("yes_no", "scale", "duration", "age")
FACTS_BOOL = ("pregnant",)
KNOWN_FACTS = ("age_band", "pregnant", "subject")
CONDITION_KEYS = {
    "all", "any", "and_any", "none", "age_band", "pregnant", "subject", "severity_gte",
    "duration_hours_gte", "duration_hours_lt", "temperature_gte", "age_months_lt", "age_months_gte",
}  # fmt: skip


class RuleSetError(Exception):
    """The rule files are invalid. ``errors`` holds (file, line, message) for each problem."""

    def __init__(self, errors: list[tuple[str, int, str]]):
        self.errors = list(errors)
        lines = [f"{f}:{ln}: {msg}" for f, ln, msg in self.errors]
        super().__init__(f"{len(lines)} problem(s) in rule set:\n" + "\n".join(lines))


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, int, str]] = []

    def add(self, where: Any, line: int | None, message: str) -> None:
        if isinstance(where, LDict | LList):
            self.items.append((where.file, line if line is not None else where.line, message))
        elif isinstance(where, Where):
            self.items.append((where.file, where.line if line is None else line, message))
        else:
            self.items.append((str(where), line or 0, message))


def _str_list(errs: _Errors, parent: LDict, key: str, *, required: bool = False) -> tuple[str, ...]:
    if key not in parent:
        if required:
            errs.add(parent, None, f"missing '{key}'")
        return ()
    value = parent[key]
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        errs.add(parent, parent.line_of(key), f"'{key}' must be a list of strings")
        return ()
    return tuple(str(v) for v in value)


def _req_str(errs: _Errors, parent: LDict, key: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value.strip():
        errs.add(
            parent, parent.line_of(key) if key in parent else None, f"'{key}' must be a non-empty string"
        )
        return ""
    return value.strip()


def _strings(value: Any) -> list[str]:
    """Every string inside a YAML value (mapping keys included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _rule_words(
    concepts: dict[str, Concept], terms: dict[str, tuple[tuple[str, ...], ...]], merged: dict
) -> set[str]:
    """Every literal word the rule set reads after normalising: the concepts' patterns, the term
    lists, what the lexicon rewrites to (not the misspellings it rewrites from), the answer
    phrases and the context cues."""
    texts = [p for c in concepts.values() for p in (*c.patterns, *c.negative_patterns)]
    texts += [w for seqs in terms.values() for seq in seqs for w in seq]
    rewrites = merged["rewrites"][0] if "rewrites" in merged else {}
    texts += _strings(list(rewrites.values()) if isinstance(rewrites, dict) else [])
    for name in ("answers", "categories", "termination"):
        if name in merged:
            texts += _strings(merged[name][0])
    return {w for t in texts for w in re.findall(r"[a-z]+", t.lower())}


class _Loader:
    def __init__(self, root: Path):
        self.root = root
        self.errs = _Errors()
        self._all_docs: list[Any] = []  # every parsed file, in order (rules span several files)

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent.parent.parent))
        except ValueError:
            return str(path)

    def load(self) -> RuleSet:
        manifest_path = self.root / "ruleset.yaml" if self.root.is_dir() else self.root
        root_dir = manifest_path.parent
        manifest = self._doc(manifest_path)
        if manifest is None:
            raise RuleSetError(self.errs.items)
        meta = manifest.get("ruleset") if isinstance(manifest, LDict) else None
        if not isinstance(meta, LDict):
            self.errs.add(
                manifest if isinstance(manifest, LDict) else self.rel(manifest_path),
                1,
                "missing 'ruleset:' section",
            )
            raise RuleSetError(self.errs.items)
        version = str(meta.get("version", ""))
        if not _VERSION_RE.match(version):
            self.errs.add(
                meta, meta.line_of("version"), f"'version' must look like 2026.11.0, not {version!r}"
            )
        emergency_number = str(meta.get("emergency_number", "911")).strip() or "911"
        crisis_line = str(meta.get("crisis_line", "988")).strip() or "988"
        files = _str_list(self.errs, meta, "files", required=True)
        merged: dict[str, tuple[Any, LDict]] = {}
        for name in files:
            doc = self._doc(root_dir / name)
            if doc is None:
                continue
            if not isinstance(doc, LDict):
                self.errs.add(self.rel(root_dir / name), 1, "file must hold a mapping")
                continue
            for key, value in doc.items():
                if key in merged and key != "rules":
                    self.errs.add(doc, doc.line_of(key), f"section '{key}' is defined twice")
                merged[key] = (value, doc)
        if self.errs.items:
            raise RuleSetError(self.errs.items)

        def section(name: str, kind: type) -> Any:
            if name not in merged:
                self.errs.add(self.rel(manifest_path), meta.line, f"no file defines section '{name}'")
                return kind()
            value, doc = merged[name]
            if not isinstance(value, kind):
                self.errs.add(doc, doc.line_of(name), f"section '{name}' must be a {kind.__name__}")
                return kind()
            return value

        levels = self._levels(manifest.get("levels"), manifest)
        provenance = self._provenance(section("provenance", dict))
        lexicon = {k: merged[k][0] for k in ("fillers", "filler_phrases", "rewrites", "terms") if k in merged}
        normaliser = self._normaliser(lexicon, merged)
        answers = self._answers(merged, normaliser)
        terms = self._terms(section("terms", dict), normaliser)
        concepts = self._concepts(section("concepts", list))
        matcher = self._matcher(concepts, terms, normaliser)
        normaliser.know_ing_words(_rule_words(concepts, terms, merged))
        context, assertion_of = self._context(merged, normaliser)
        scripts_doc = merged.get("emergency_scripts", (LDict(), LDict()))[0]
        fmt = {"emergency_number": emergency_number, "crisis_line": crisis_line}
        scripts = self._scripts(scripts_doc, fmt)
        texts = {
            k: self._text(merged, k, fmt)
            for k in ("greeting", "clarify", "not_understood", "closing", "rephrase")
        }
        clarify_answer = self._clarify_answer(merged)
        dispositions = self._dispositions(merged, fmt)
        questions = self._questions(section("questions", list), concepts)
        complaints = self._complaints(section("complaints", list), concepts, questions)
        fallback = str(merged.get("fallback_complaint", ("general", None))[0])
        if fallback not in complaints:
            self.errs.add(self.rel(manifest_path), 0, f"fallback_complaint {fallback!r} is not a complaint")
        rules = self._rules(merged, concepts, provenance, scripts, complaints, questions)
        max_clarify = meta.get("max_clarify", 2)
        max_questions = meta.get("max_questions", 7)
        for key, value in (("max_clarify", max_clarify), ("max_questions", max_questions)):
            if not isinstance(value, int) or value < 0:
                self.errs.add(meta, meta.line_of(key), f"'{key}' must be a non-negative integer")
        if self.errs.items:
            raise RuleSetError(self.errs.items)
        return RuleSet(
            id=str(meta.get("id", "default")),
            title=str(meta.get("title", "")),
            version=version,
            emergency_number=emergency_number,
            crisis_line=crisis_line,
            path=str(manifest_path),
            max_clarify=int(max_clarify),
            max_questions=int(max_questions),
            levels=levels,
            provenance=provenance,
            concepts=concepts,
            rules=tuple(rules),
            questions=questions,
            complaints=complaints,
            fallback_complaint=fallback,
            scripts=scripts,
            texts=texts,
            clarify_answer=clarify_answer,
            dispositions=dispositions,
            answers=answers,
            normaliser=normaliser,
            matcher=matcher,
            context=context,
            assertion_of=assertion_of,
            fillers=normaliser.fillers,
        )

    # ------------------------------------------------------------------ pieces
    def _doc(self, path: Path) -> Any:
        data, problems = load_yaml(path, self.rel(path))
        for p in problems:
            self.errs.add(p.file, p.line, p.message)
        data = None if problems and data is None else data
        self._all_docs.append(data)
        return data

    def _levels(self, value: Any, manifest: LDict) -> dict[int, LevelInfo]:
        out: dict[int, LevelInfo] = {}
        if not isinstance(value, LList):
            self.errs.add(manifest, None, "missing 'levels' list")
            return out
        for i, item in enumerate(value):
            if not isinstance(item, LDict):
                self.errs.add(value, value.line_of(i), "each level must be a mapping")
                continue
            lvl = item.get("level")
            if lvl not in (1, 2, 3, 4, 5):
                self.errs.add(item, item.line_of("level"), "level must be 1..5")
                continue
            disp = str(item.get("disposition", ""))
            if disp != DISPOSITIONS[UrgencyLevel(lvl)]:
                self.errs.add(
                    item,
                    item.line_of("disposition"),
                    f"level {lvl} disposition must be {DISPOSITIONS[UrgencyLevel(lvl)]!r}",
                )
            out[lvl] = LevelInfo(lvl, disp, str(item.get("label", "")), str(item.get("target", "")),
                                 str(item.get("ctas", "")), str(item.get("mts", "")))  # fmt: skip
        if set(out) != {1, 2, 3, 4, 5} and not self.errs.items:
            self.errs.add(value, None, "levels must define 1, 2, 3, 4 and 5")
        return out

    def _provenance(self, value: LDict) -> dict[str, dict[str, str]]:
        out = {}
        for key, item in value.items():
            if not isinstance(item, LDict) or not isinstance(item.get("title"), str):
                self.errs.add(value, value.line_of(key), f"provenance {key!r} needs a 'title'")
                continue
            out[str(key)] = {"title": item["title"], "url": str(item.get("url", "") or "")}
        return out

    def _normaliser(self, lexicon: dict[str, Any], merged: dict) -> Normaliser:
        fillers = lexicon.get("fillers", [])
        filler_phrases = lexicon.get("filler_phrases", [])
        rewrites = lexicon.get("rewrites", {})
        ok = True
        for name, val, kind in (
            ("fillers", fillers, list),
            ("filler_phrases", filler_phrases, list),
            ("rewrites", rewrites, dict),
        ):
            if not isinstance(val, kind):
                doc = merged[name][1] if name in merged else None
                self.errs.add(
                    doc or "lexicon", doc.line_of(name) if doc else 0, f"'{name}' must be a {kind.__name__}"
                )
                ok = False
        if not ok:
            return Normaliser()
        pairs = [(str(k), str(v)) for k, v in rewrites.items()]
        return Normaliser([str(f) for f in fillers], [str(f) for f in filler_phrases], pairs)

    def _terms(self, value: LDict, normaliser: Normaliser) -> dict[str, tuple[tuple[str, ...], ...]]:
        out = {}
        for name, words in value.items():
            if not re.match(r"^[A-Z][A-Z0-9_]*$", str(name)):
                self.errs.add(value, value.line_of(name), f"term list name {name!r} must be UPPER_CASE")
                continue
            if not isinstance(words, list) or not words:
                self.errs.add(value, value.line_of(name), f"term list {name} must be a non-empty list")
                continue
            seqs = []
            for w in words:
                seq = normaliser.phrase(str(w))
                if not seq:
                    self.errs.add(value, value.line_of(name), f"term {w!r} in {name} normalises to nothing")
                    continue
                seqs.append(seq)
            out[str(name)] = tuple(dict.fromkeys(seqs))
        return out

    def _answers(self, merged: dict, normaliser: Normaliser) -> AnswerLexicon:
        def phrases(section: Any, key: str) -> tuple[tuple[str, ...], ...]:
            if not isinstance(section, LDict) or not isinstance(section.get(key), list):
                self.errs.add(
                    section if isinstance(section, LDict) else "lexicon", 0, f"answers.{key} must be a list"
                )
                return ()
            return tuple(normaliser.phrase(str(p)) for p in section[key] if normaliser.phrase(str(p)))

        ans = merged.get("answers", (LDict(), None))[0]
        quantities = merged.get("quantities", ({}, None))[0]
        units = merged.get("units_hours", ({}, None))[0]
        anchors = merged.get("duration_anchors", ({}, None))[0]
        for name, val in (("quantities", quantities), ("units_hours", units), ("duration_anchors", anchors)):
            if not isinstance(val, dict) or not all(isinstance(v, int | float) for v in val.values()):
                doc = merged[name][1] if name in merged else None
                self.errs.add(
                    doc or "lexicon", doc.line_of(name) if doc else 0, f"'{name}' must map phrases to numbers"
                )
        return AnswerLexicon(
            unsure=phrases(ans, "unsure"),
            yes=phrases(ans, "yes"),
            no=phrases(ans, "no"),
            quantities=tuple((normaliser.phrase(str(k)), float(v)) for k, v in dict(quantities).items()),
            units_hours={
                normaliser.phrase(str(k))[0]: float(v)
                for k, v in dict(units).items()
                if normaliser.phrase(str(k))
            },
            duration_anchors=tuple((normaliser.phrase(str(k)), float(v)) for k, v in dict(anchors).items()),
        )

    def _concepts(self, value: LList) -> dict[str, Concept]:
        out: dict[str, Concept] = {}
        for i, item in enumerate(value):
            if not isinstance(item, LDict):
                self.errs.add(value, value.line_of(i), "each concept must be a mapping")
                continue
            cid = str(item.get("id", ""))
            where = Where(item.file, item.line)
            if not _ID_RE.match(cid):
                self.errs.add(item, item.line_of("id"), f"bad concept id {cid!r}")
                continue
            if cid in out:
                self.errs.add(
                    item, item.line_of("id"), f"duplicate concept id {cid!r} (first at {out[cid].where})"
                )
                continue
            unknown = set(item) - {"id", "label", "patterns", "negative_patterns", "implies", "overrides", "sets",
                                   "answer_only", "family_history", "lasting", "request"}  # fmt: skip
            for key in unknown:
                self.errs.add(item, item.line_of(key), f"unknown concept field {key!r}")
            answer_only = bool(item.get("answer_only", False))
            patterns = _str_list(self.errs, item, "patterns")
            if not patterns and not answer_only:
                self.errs.add(
                    item, item.line, f"concept {cid!r} has no patterns (mark answer_only: true if intended)"
                )
            sets = item.get("sets", {})
            if not isinstance(sets, dict):
                self.errs.add(item, item.line_of("sets"), "'sets' must be a mapping")
                sets = {}
            for key, val in sets.items():
                if key not in KNOWN_FACTS:
                    self.errs.add(
                        item, item.line_of("sets"), f"'sets' key {key!r} must be one of {KNOWN_FACTS}"
                    )
                elif key == "age_band" and val not in AGE_BANDS:
                    self.errs.add(item, item.line_of("sets"), f"age_band {val!r} is not one of {AGE_BANDS}")
                elif key == "subject" and val not in SUBJECTS:
                    self.errs.add(item, item.line_of("sets"), f"subject {val!r} is not one of {SUBJECTS}")
                elif key == "pregnant" and not isinstance(val, bool):
                    self.errs.add(item, item.line_of("sets"), "pregnant must be true or false")
            out[cid] = Concept(
                id=cid,
                label=_req_str(self.errs, item, "label"),
                patterns=patterns,
                negative_patterns=_str_list(self.errs, item, "negative_patterns"),
                implies=_str_list(self.errs, item, "implies"),
                overrides=_str_list(self.errs, item, "overrides"),
                sets=tuple(sets.items()),
                answer_only=answer_only,
                family_history=bool(item.get("family_history", False)),
                lasting=bool(item.get("lasting", False)),
                request=bool(item.get("request", False)),
                where=where,
            )
        for c in out.values():
            for ref in c.implies + c.overrides:
                if ref not in out:
                    self.errs.add(c.where, None, f"concept {c.id!r} refers to unknown concept {ref!r}")
        return out

    def _matcher(self, concepts: dict[str, Concept], terms, normaliser: Normaliser) -> PatternMatcher:
        matcher = PatternMatcher()
        for c in concepts.values():
            for negative, pats in ((False, c.patterns), (True, c.negative_patterns)):
                for p in pats:
                    try:
                        matcher.add(c.id, parse_pattern(p, terms, normaliser.phrase), negative)
                    except PatternError as exc:
                        self.errs.add(c.where, None, f"concept {c.id!r} pattern {p!r}: {exc}")
        return matcher

    def _context(self, merged: dict, normaliser: Normaliser) -> tuple[ContextAnalyzer, dict[str, str]]:
        assertions = {
            "negated",
            "hypothetical",
            "historical",
            "other",
            "other_child",
            "uncertain",
            "past",
            "recent",
        }
        cats_doc = merged.get("categories", (LDict(), None))[0]
        term_doc = merged.get("termination", ([], None))[0]
        if not isinstance(cats_doc, LDict) or not cats_doc:
            self.errs.add(
                merged["categories"][1] if "categories" in merged else "context",
                0,
                "context 'categories' missing",
            )
            cats_doc = LDict()

        def phrases(parent: LDict, key: str) -> tuple[tuple[str, ...], ...]:
            vals = _str_list(self.errs, parent, key)
            out = []
            for v in vals:
                seq = normaliser.phrase(v)
                if not seq:
                    self.errs.add(parent, parent.line_of(key), f"cue {v!r} normalises to nothing")
                    continue
                out.append(seq)
            return tuple(out)

        shared = tuple(normaliser.phrase(str(t)) for t in (term_doc or []) if normaliser.phrase(str(t)))
        specs, assertion_of = [], {}
        for name, spec in cats_doc.items():
            if not isinstance(spec, LDict):
                self.errs.add(cats_doc, cats_doc.line_of(name), f"category {name!r} must be a mapping")
                continue
            bucket = str(spec.get("assertion", name))
            if bucket not in assertions:
                self.errs.add(spec, spec.line_of("assertion") if "assertion" in spec else spec.line,
                              f"category {name!r} maps to unknown assertion {bucket!r}; use one of {sorted(assertions)}")  # fmt: skip
                continue
            window = spec.get("window", 5)
            if not isinstance(window, int) or not 1 <= window <= 20:
                self.errs.add(spec, spec.line_of("window"), "window must be an integer 1..20")
                window = 5
            fwin = spec.get("following_window")
            if fwin is not None and (not isinstance(fwin, int) or not 0 <= fwin <= 20):
                self.errs.add(
                    spec, spec.line_of("following_window"), "following_window must be an integer 0..20"
                )
                fwin = None
            specs.append(CategorySpec(str(name), window, phrases(spec, "preceding"), phrases(spec, "following"),
                                      phrases(spec, "pseudo"), phrases(spec, "termination"), fwin, bucket))  # fmt: skip
            assertion_of[str(name)] = bucket
        missing = {"negated", "hypothetical", "historical", "other", "uncertain"} - set(assertion_of.values())
        if missing and "categories" in merged:
            self.errs.add(merged["categories"][1], 0, f"context categories missing for {sorted(missing)}")
        return ContextAnalyzer(specs, shared), assertion_of

    def _text(self, merged: dict, key: str, fmt: dict) -> str:
        if key not in merged or not isinstance(merged[key][0], str):
            self.errs.add(merged[key][1] if key in merged else "scripts", 0, f"'{key}' text is missing")
            return ""
        return self._format(merged[key][0], fmt, merged[key][1], key)

    def _format(self, text: str, fmt: dict, doc: Any, key: Any) -> str:
        try:
            return " ".join(text.format(**fmt).split())
        except (KeyError, IndexError, ValueError) as exc:
            self.errs.add(
                doc, doc.line_of(key) if isinstance(doc, LDict) else 0, f"bad placeholder in text: {exc}"
            )
            return text

    def _clarify_answer(self, merged: dict) -> dict[str, str]:
        doc = merged.get("clarify_answer", (LDict(), None))[0]
        out = {}
        for t in QUESTION_TYPES:
            if not isinstance(doc, LDict) or not isinstance(doc.get(t), str):
                self.errs.add(
                    doc if isinstance(doc, LDict) else "scripts", 0, f"clarify_answer.{t} is missing"
                )
                continue
            out[t] = doc[t]
        return out

    def _dispositions(self, merged: dict, fmt: dict) -> dict[int, str]:
        doc = merged.get("dispositions", (LDict(), None))[0]
        out = {}
        for lvl in (2, 3, 4, 5):
            if not isinstance(doc, LDict) or not isinstance(doc.get(lvl), str):
                self.errs.add(
                    doc if isinstance(doc, LDict) else "scripts", 0, f"dispositions.{lvl} text is missing"
                )
                continue
            out[lvl] = self._format(doc[lvl], fmt, doc, lvl)
        return out

    def _scripts(self, doc: Any, fmt: dict) -> dict[str, Script]:
        out = {}
        if not isinstance(doc, LDict):
            return out
        for sid, item in doc.items():
            if not isinstance(item, LDict) or not isinstance(item.get("text"), str):
                self.errs.add(doc, doc.line_of(sid), f"emergency script {sid!r} needs 'text'")
                continue
            level = item.get("level", 1)
            if level not in (1, 2):
                self.errs.add(item, item.line_of("level"), "emergency script level must be 1 or 2")
            out[str(sid)] = Script(str(sid), self._format(item["text"], fmt, item, "text"), int(level))
        for required in ("emergency_generic", "ed_now"):
            if required not in out:
                self.errs.add(doc, doc.line, f"emergency script {required!r} is required")
        return out

    def _questions(self, value: LList, concepts: dict[str, Concept]) -> dict[str, Question]:
        out: dict[str, Question] = {}
        for i, item in enumerate(value):
            if not isinstance(item, LDict):
                self.errs.add(value, value.line_of(i), "each question must be a mapping")
                continue
            qid = str(item.get("id", ""))
            where = Where(item.file, item.line)
            if not _ID_RE.match(qid) or qid in out:
                self.errs.add(item, item.line_of("id"), f"bad or duplicate question id {qid!r}")
                continue
            qtype = str(item.get("type", ""))
            if qtype not in QUESTION_TYPES:
                self.errs.add(item, item.line_of("type"), f"question type must be one of {QUESTION_TYPES}")
            concept = item.get("concept")
            fact = item.get("fact")
            if qtype == "yes_no" and not concept and fact not in FACTS_BOOL:
                self.errs.add(item, item.line, "a yes_no question needs 'concept' (or fact: pregnant)")
            if concept is not None and concept not in concepts:
                self.errs.add(item, item.line_of("concept"), f"unknown concept {concept!r}")
            ask_if = item.get("ask_if", {})
            conds = []
            if not isinstance(ask_if, dict):
                self.errs.add(item, item.line_of("ask_if"), "ask_if must be a mapping")
            else:
                for key, vals in ask_if.items():
                    if key not in KNOWN_FACTS:
                        self.errs.add(
                            item, item.line_of("ask_if"), f"ask_if key {key!r} must be one of {KNOWN_FACTS}"
                        )
                        continue
                    vals = vals if isinstance(vals, list) else [vals]
                    conds.append((str(key), tuple("unknown" if v is None else str(v).lower() for v in vals)))
            out[qid] = Question(qid, qtype, _req_str(self.errs, item, "text"), concept, fact,
                                bool(item.get("inverted", False)), tuple(conds), where)  # fmt: skip
        return out

    def _complaints(self, value: LList, concepts, questions) -> dict[str, Complaint]:
        out: dict[str, Complaint] = {}
        for i, item in enumerate(value):
            if not isinstance(item, LDict):
                self.errs.add(value, value.line_of(i), "each complaint must be a mapping")
                continue
            cid = str(item.get("id", ""))
            if not _ID_RE.match(cid) or cid in out:
                self.errs.add(item, item.line_of("id"), f"bad or duplicate complaint id {cid!r}")
                continue
            triggers = _str_list(self.errs, item, "triggers", required=True)
            qs = _str_list(self.errs, item, "questions")
            for t in triggers:
                if t not in concepts:
                    self.errs.add(item, item.line_of("triggers"), f"complaint {cid!r}: unknown concept {t!r}")
            for q in qs:
                if q not in questions:
                    self.errs.add(
                        item, item.line_of("questions"), f"complaint {cid!r}: unknown question {q!r}"
                    )
            out[cid] = Complaint(
                cid, _req_str(self.errs, item, "label"), triggers, qs, Where(item.file, item.line)
            )
        return out

    def _rules(self, merged, concepts, provenance, scripts, complaints, questions) -> list[Rule]:
        if "rules" not in merged:
            self.errs.add("rules", 0, "no 'rules' section")
            return []
        # rules may come from several files: collect every document that has a 'rules' list
        rule_items: list[tuple[LDict, LList, int]] = []
        for path_doc in self._rule_docs(merged):
            lst = path_doc["rules"]
            if not isinstance(lst, LList):
                self.errs.add(path_doc, path_doc.line_of("rules"), "'rules' must be a list")
                continue
            rule_items.extend((item, lst, i) for i, item in enumerate(lst))
        out: list[Rule] = []
        seen: dict[str, Where] = {}
        for item, lst, i in rule_items:
            if not isinstance(item, LDict):
                self.errs.add(lst, lst.line_of(i), "each rule must be a mapping")
                continue
            rule = self._rule(item, concepts, provenance, scripts, complaints, questions)
            if rule is None:
                continue
            if rule.id in seen:
                self.errs.add(
                    item, item.line_of("id"), f"duplicate rule id {rule.id!r} (first at {seen[rule.id]})"
                )
                continue
            seen[rule.id] = rule.where
            out.append(rule)
        by_id = {r.id: r for r in out}
        for r in out:
            for s in r.suppresses:
                if s not in by_id:
                    self.errs.add(r.where, None, f"rule {r.id} suppresses unknown rule {s!r}")
                elif by_id[s].escalate:
                    self.errs.add(r.where, None, f"rule {r.id} may not suppress escalating rule {s}")
        return out

    def _rule_docs(self, merged: dict) -> list[LDict]:
        # merged keeps only the last doc per section name; rules legitimately span files
        return [doc for doc in self._all_docs if isinstance(doc, LDict) and "rules" in doc]

    def _rule(self, item: LDict, concepts, provenance, scripts, complaints, questions) -> Rule | None:
        rid = str(item.get("id", ""))
        where = Where(item.file, item.line)
        allowed = {"id", "version", "label", "level", "escalate", "script", "complaint", "when", "pending",
                   "suppresses", "cleared_when_negated", "cleared_level", "provenance", "rationale",
                   "raise_by"}  # fmt: skip
        for key in set(item) - allowed:
            self.errs.add(item, item.line_of(key), f"unknown rule field {key!r}")
        if not _ID_RE.match(rid):
            self.errs.add(item, item.line_of("id"), f"bad rule id {rid!r}")
            return None
        version = str(item.get("version", ""))
        if not version:
            self.errs.add(item, item.line, f"rule {rid}: missing 'version'")
        level = item.get("level")
        if level not in (1, 2, 3, 4, 5):
            self.errs.add(
                item, item.line_of("level") if "level" in item else None, f"rule {rid}: level must be 1..5"
            )
            level = 3
        escalate = item.get("escalate", False)
        if not isinstance(escalate, bool):
            self.errs.add(item, item.line_of("escalate"), f"rule {rid}: escalate must be true or false")
            escalate = True
        script = item.get("script")
        if escalate and script is None:
            self.errs.add(item, item.line, f"rule {rid}: an escalating rule needs a 'script'")
        if script is not None and script not in scripts:
            self.errs.add(item, item.line_of("script"), f"rule {rid}: unknown script {script!r}")
        if level == 1 and not escalate:
            self.errs.add(item, item.line_of("level"), f"rule {rid}: level 1 rules must escalate")
        complaint = item.get("complaint")
        if complaint is not None and complaint not in complaints:
            self.errs.add(item, item.line_of("complaint"), f"rule {rid}: unknown complaint {complaint!r}")
        prov = _str_list(self.errs, item, "provenance", required=True)
        for p in prov:
            if p not in provenance:
                self.errs.add(item, item.line_of("provenance"), f"rule {rid}: unknown provenance {p!r}")
        rationale = _req_str(self.errs, item, "rationale")
        when = self._condition(item, rid, concepts)
        pending = None
        if "pending" in item:
            p = item["pending"]
            if not isinstance(p, LDict):
                self.errs.add(item, item.line_of("pending"), f"rule {rid}: pending must be a mapping")
            else:
                fact = str(p.get("when_unknown", ""))
                if fact not in ("age_band", "pregnant"):
                    self.errs.add(
                        p,
                        p.line_of("when_unknown"),
                        f"rule {rid}: pending.when_unknown must be age_band or pregnant",
                    )
                anys = _str_list(self.errs, p, "any", required=True)
                for c in anys:
                    if c not in concepts:
                        self.errs.add(p, p.line_of("any"), f"rule {rid}: unknown concept {c!r}")
                q = str(p.get("question", ""))
                if q not in questions:
                    self.errs.add(p, p.line_of("question"), f"rule {rid}: unknown question {q!r}")
                plevel = p.get("level", level)
                if plevel not in (1, 2, 3, 4, 5):
                    self.errs.add(p, p.line_of("level"), f"rule {rid}: pending level must be 1..5")
                    plevel = level
                pending = Pending(fact, anys, int(plevel), q)
        cleared = _str_list(self.errs, item, "cleared_when_negated")
        for c in cleared:
            if c not in concepts:
                self.errs.add(
                    item, item.line_of("cleared_when_negated"), f"rule {rid}: unknown concept {c!r}"
                )
        cleared_level = item.get("cleared_level")
        if cleared and cleared_level not in (1, 2, 3, 4, 5):
            self.errs.add(item, item.line, f"rule {rid}: cleared_when_negated needs cleared_level 1..5")
            cleared_level = None
        if cleared and escalate:
            self.errs.add(
                item,
                item.line_of("cleared_when_negated"),
                f"rule {rid}: an escalating rule cannot be cleared",
            )
        if cleared_level is not None and isinstance(level, int) and cleared_level < level:
            self.errs.add(
                item,
                item.line_of("cleared_level"),
                f"rule {rid}: cleared_level cannot be more urgent than level",
            )
        raise_by = item.get("raise_by")
        if raise_by is not None:
            if not isinstance(raise_by, int) or isinstance(raise_by, bool) or not 1 <= raise_by <= 3:
                self.errs.add(item, item.line_of("raise_by"), f"rule {rid}: raise_by must be 1, 2 or 3")
                raise_by = None
            elif escalate or level == 1:
                # a modifier only makes a complaint more urgent; emergencies are named by red flags
                self.errs.add(
                    item, item.line_of("raise_by"), f"rule {rid}: a raise_by modifier cannot escalate"
                )
            elif pending is not None or cleared or item.get("suppresses"):
                self.errs.add(item, item.line_of("raise_by"),
                              f"rule {rid}: a raise_by modifier cannot be pending, cleared or suppress")  # fmt: skip
        return Rule(
            id=rid,
            version=version,
            label=_req_str(self.errs, item, "label"),
            level=int(level),
            when=when,
            escalate=escalate,
            script=script,
            complaint=complaint,
            pending=pending,
            suppresses=_str_list(self.errs, item, "suppresses"),
            cleared_when_negated=cleared,
            cleared_level=cleared_level,
            provenance=prov,
            rationale=rationale,
            raise_by=raise_by,
            where=where,
        )

    def _condition(self, item: LDict, rid: str, concepts) -> Condition:
        when = item.get("when")
        if not isinstance(when, LDict):
            self.errs.add(
                item,
                item.line_of("when") if "when" in item else None,
                f"rule {rid}: 'when' must be a mapping",
            )
            return Condition()
        for key in set(when) - CONDITION_KEYS:
            self.errs.add(when, when.line_of(key), f"rule {rid}: unknown condition {key!r}")
        lists = {k: _str_list(self.errs, when, k) for k in ("all", "any", "and_any", "none")}
        for k, vals in lists.items():
            for c in vals:
                if c not in concepts:
                    self.errs.add(when, when.line_of(k), f"rule {rid}: unknown concept {c!r}")
        age = None
        if "age_band" in when:
            age = _str_list(self.errs, when, "age_band")
            for a in age:
                if a not in AGE_BANDS:
                    self.errs.add(when, when.line_of("age_band"), f"rule {rid}: unknown age band {a!r}")
        subject = None
        if "subject" in when:
            subject = _str_list(self.errs, when, "subject")
            for s in subject:
                if s not in SUBJECTS:
                    self.errs.add(when, when.line_of("subject"), f"rule {rid}: unknown subject {s!r}")
        pregnant = when.get("pregnant")
        if pregnant is not None and not isinstance(pregnant, bool):
            self.errs.add(when, when.line_of("pregnant"), f"rule {rid}: pregnant must be true or false")
            pregnant = None
        nums = {}
        for k in (
            "severity_gte",
            "duration_hours_gte",
            "duration_hours_lt",
            "temperature_gte",
            "age_months_lt",
            "age_months_gte",
        ):
            v = when.get(k)
            if v is not None and not isinstance(v, int | float):
                self.errs.add(when, when.line_of(k), f"rule {rid}: {k} must be a number")
                v = None
            nums[k] = v
        cond = Condition(all=lists["all"], any=lists["any"], and_any=lists["and_any"], none=lists["none"],
                         age_band=age, pregnant=pregnant, subject=subject, **nums)  # fmt: skip
        if not (cond.all or cond.any or cond.severity_gte is not None):
            self.errs.add(when, when.line, f"rule {rid}: 'when' needs 'all', 'any' or a severity condition")
        return cond


def _load(path: Path) -> RuleSet:
    return _Loader(path).load()


_cache: dict[tuple[str, float], RuleSet] = {}
_cache_lock = threading.Lock()


def _stamp(path: Path) -> float:
    root = path if path.is_dir() else path.parent
    try:
        return max(p.stat().st_mtime for p in root.glob("*.y*ml"))
    except ValueError:
        return 0.0


def load_ruleset(path: str | Path | None = None) -> RuleSet:
    """Load (and cache) a rule set: the packaged default, or a directory / ruleset.yaml path.

    Cached per path and file modification time, so editing a rule file and loading again picks
    the change up, while every call of a running service shares one compiled rule set.
    """
    p = Path(path).resolve() if path is not None else DEFAULT_PATH
    if not p.exists():
        raise RuleSetError([(str(p), 0, "rule set path does not exist")])
    key = (str(p), _stamp(p))
    with _cache_lock:
        rs = _cache.get(key)
        if rs is None:
            rs = _load(p)
            _cache[key] = rs
        return rs
