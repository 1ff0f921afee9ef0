"""House rules of docs/contributing.md that a machine can check over every package's sources."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(ROOT.glob("packages/*/src/opsin/**/*.py"))
# A numbered section of a document that is not in this repository: "§3.2", "section 4.3", "spec 2.5".
CITATION = re.compile(r"§\s*\d|\b(?:[Ss]ections?|[Ss]pec(?:ification)?)\s+\d+(?:\.\d+)+")
EXCEPTION_BASE = re.compile(r"(?:Error|Exception|Exit)$")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_sources_were_found() -> None:
    assert len(SOURCES) > 50


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_no_citations_of_outside_documents(path: Path) -> None:
    hits = [f"{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1) if CITATION.search(line)]
    assert not hits, "write the rule itself instead of citing a section:\n" + "\n".join(hits)


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_exception_classes_live_in_errors_modules_and_end_in_error(path: Path) -> None:
    problems = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [ast.unparse(base) for base in node.bases]
        if not any(EXCEPTION_BASE.search(base.split(".")[-1]) for base in bases):
            continue
        if path.name != "errors.py":
            problems.append(f"{node.name} (line {node.lineno}) belongs in the package's errors.py")
        if not node.name.endswith("Error"):
            problems.append(f"{node.name} (line {node.lineno}) should end in 'Error' (keep the old name as an alias)")
    assert not problems, "\n".join(problems)
