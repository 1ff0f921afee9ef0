"""Regenerate constraints.txt: exact pins for every dependency of every package, its extras and test group,
and the tools the nox sessions install.

    python tools/update_constraints.py          # needs uv; resolves for Python 3.11 on this platform family

torch stays at the CPU wheel's version (a newer torch would not be on our machines' disk and would pull CUDA).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ["nox", "ruff", "mypy", "check-jsonschema", "build", "mkdocs-material", "mkdocstrings[python]", "pytest"]
FIXED = {"torch": "torch==2.13.0"}
HEADER = """\
# Pins for reproducible developer and CI installs; every install passes `-c constraints.txt`.
# Regenerate with `python tools/update_constraints.py` after changing a dependency.
# torch: the CPU wheel lies in PIP_FIND_LINKS on our machines; an unpinned range would pull a multi-GB CUDA build.
"""


def requirements() -> list[str]:
    reqs: set[str] = set(TOOLS)
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text())
        project = data["project"]
        found = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            found += extra
        for group in data.get("dependency-groups", {}).values():
            found += [item for item in group if isinstance(item, str)]
        reqs.update(r for r in found if not r.startswith("opsin-"))
    name = re.compile(r"^[A-Za-z0-9_.\-]+")
    out = []
    for req in sorted(reqs):
        match = name.match(req)
        out.append(FIXED.get(match.group(0).lower(), req) if match else req)
    return out


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        req_in = Path(tmp) / "requirements.in"
        req_in.write_text("\n".join(requirements()) + "\n")
        # Seeding the output file with today's pins makes uv keep them where they still fit (no silent upgrades).
        req_out = Path(tmp) / "constraints.txt"
        # (torch is seeded as the local CPU build; its public-version pin would pull CUDA packages into the pins.)
        seed = (ROOT / "constraints.txt").read_text().replace("\ntorch==2.13.0\n", "\ntorch==2.13.0+cpu\n")
        req_out.write_text(seed)
        result = subprocess.run(
            ["uv", "pip", "compile", str(req_in), "--python-version", "3.11", "--no-header", "--no-annotate",
             "--quiet", "--output-file", str(req_out)],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            return result.returncode
        compiled = req_out.read_text()
    pins = [line for line in compiled.splitlines() if line and not line.startswith("#")]
    # Resolution picks the local "+cpu" build; pin the public version, which matches it and PyPI's CPU index alike.
    pins = [FIXED.get(line.split("==")[0].lower(), line) for line in pins]
    (ROOT / "constraints.txt").write_text(HEADER + "\n".join(pins) + "\n")
    print(f"wrote {len(pins)} pins to constraints.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
