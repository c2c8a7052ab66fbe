"""Prompt templates are files in ``prompts/`` (installed as package data of ``stride_prompts``), loaded
by name; provenance records the file and its hash."""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


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


def load_prompt(name: str, directory: Path | None = None) -> Prompt:
    """``<name>.md`` from ``directory``, or from the installed prompts when none is given."""
    filename = f"{name}.md"
    source = directory / filename if directory is not None else resources.files("stride_prompts").joinpath(filename)
    return Prompt(name=filename, template=source.read_text(encoding="utf-8"))
