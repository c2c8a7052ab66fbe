"""The architecture as the design card states it, checked on the source: dependencies point one way
(evals -> service -> ingest), only the CLI wires evals in, nothing imports tests, and every package
ships."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("ingest", "service", "evals")


def _imports(path: Path) -> set[str]:
    """Top-level package names a module imports, wherever the import stands (lazy ones count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_no_source_module_imports_tests(package: str) -> None:
    offenders = [str(p.relative_to(REPO)) for p in _modules(package) if "tests" in _imports(p)]
    assert not offenders


def test_only_the_cli_imports_evals_from_the_service() -> None:
    offenders = [str(p.relative_to(REPO)) for p in _modules("service") + _modules("ingest") if "evals" in _imports(p)]
    assert offenders == ["service/cli.py"]


def test_ingest_depends_on_neither_service_nor_evals() -> None:
    offenders = {str(p.relative_to(REPO)): _imports(p) & {"service", "evals"} for p in _modules("ingest")}
    assert not {k: v for k, v in offenders.items() if v}


def test_every_package_directory_is_listed_for_the_wheel() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for package in PACKAGES
        for init in (REPO / package).rglob("__init__.py")
    }
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert "stride_prompts" in listed


def test_every_data_file_beside_the_code_ships_in_the_wheel() -> None:
    # An editable install reads them from the tree whatever pyproject says; a wheel has only those listed.
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    unlisted = []
    for package in PACKAGES:
        for init in (REPO / package).rglob("__init__.py"):
            folder = init.parent
            patterns = data.get(".".join(folder.relative_to(REPO).parts), [])
            for f in folder.iterdir():
                if f.is_file() and f.suffix in (".json", ".html", ".css", ".js", ".j2", ".jsonl", ".md") \
                        and not any(f.relative_to(folder).match(pat) for pat in patterns):
                    unlisted.append(str(f.relative_to(REPO)))
    assert not unlisted, f"add to [tool.setuptools.package-data]: {unlisted}"


def test_the_answering_rooms_are_where_the_readme_says() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rooms = [p.name for p in (REPO / "service").iterdir() if (p / "__init__.py").exists()]
    assert sorted(rooms) == ["answering", "api", "coverage", "feedback", "mcp"]
    assert all(f"service/{room}/" in readme for room in rooms)
    answering = sorted(p.stem for p in (REPO / "service" / "answering").glob("*.py") if p.stem != "__init__")
    assert all(f"`{m}`" in readme for m in answering), [m for m in answering if f"`{m}`" not in readme]
