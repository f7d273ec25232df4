"""YAML loading that remembers where every value came from, so errors can name file and line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class LDict(dict):
    """A mapping from YAML with ``line`` (its own) and ``lines[key]`` (each value's line)."""

    __slots__ = ("file", "line", "lines")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.file = ""
        self.line = 0
        self.lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.lines.get(key, self.line)


class LList(list):
    """A sequence from YAML with ``line`` and ``lines[i]`` per item."""

    __slots__ = ("file", "line", "lines")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.file = ""
        self.line = 0
        self.lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.lines[index] if 0 <= index < len(self.lines) else self.line


class YamlProblem(Exception):
    def __init__(self, file: str, line: int, message: str):
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.message = file, line, message


def _make_loader(file: str, problems: list[YamlProblem]) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    # YAML 1.1 reads bare no / yes / on / off as booleans; rule files are full of the word "no",
    # so only true / false are booleans here (as in YAML 1.2).
    Loader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )

    def construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LDict:
        loader.flatten_mapping(node)
        out = LDict()
        out.file, out.line = file, node.start_mark.line + 1
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                problems.append(YamlProblem(file, key_node.start_mark.line + 1, "keys must be scalars"))
                continue
            if key in out:
                problems.append(YamlProblem(file, key_node.start_mark.line + 1, f"duplicate key {key!r}"))
            out[key] = loader.construct_object(value_node, deep=True)
            out.lines[key] = value_node.start_mark.line + 1
        return out

    def construct_seq(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> LList:
        out = LList()
        out.file, out.line = file, node.start_mark.line + 1
        for child in node.value:
            out.append(loader.construct_object(child, deep=True))
            out.lines.append(child.start_mark.line + 1)
        return out

    Loader.add_constructor("tag:yaml.org,2002:map", construct_map)
    Loader.add_constructor("tag:yaml.org,2002:seq", construct_seq)
    return Loader


def load_yaml(path: Path, display_name: str | None = None) -> tuple[Any, list[YamlProblem]]:
    """Parse one file. Returns (data, problems); a syntax error becomes a problem with its line."""
    name = display_name or str(path)
    problems: list[YamlProblem] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [YamlProblem(name, 0, f"cannot read file: {exc}")]
    try:
        data = yaml.load(text, Loader=_make_loader(name, problems))  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        return None, [YamlProblem(name, line, f"YAML syntax error: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [YamlProblem(name, 0, f"YAML error: {exc}")]
    return data, problems
