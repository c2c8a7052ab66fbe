"""Prompt templates are files in ``prompts/``, loaded by name; provenance records file and hash."""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


@dataclass(frozen=True)
class Prompt:
    name: str
    template: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.template.encode()).hexdigest()

    @property
    def placeholders(self) -> set[str]:
        return {field for _, field, _, _ in string.Formatter().parse(self.template) if field}

    def render(self, **values: str) -> str:
        missing = self.placeholders - set(values)
        if missing:
            raise KeyError(f"prompt {self.name} needs {sorted(missing)}")
        return self.template.format(**values)


def load_prompt(name: str, directory: Path = PROMPTS_DIR) -> Prompt:
    path = directory / f"{name}.md"
    return Prompt(name=path.name, template=path.read_text(encoding="utf-8"))
