"""Release one opsin package: bump its version, date its changelog section, commit and tag.

    python tools/release.py iq-experiments minor

The version lives in packages/<folder>/src/opsin/<module>/__init__.py (read by hatchling); the tag is
`opsin-<folder>-vX.Y.Z`, which the release workflow checks against that file before building and publishing.
The tool refuses to run on a dirty work tree or when the `## Unreleased` section of the changelog is empty.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

VERSION_RE = re.compile(r'^__version__ = "(\d+)\.(\d+)\.(\d+)"$', re.MULTILINE)
UNRELEASED = "## Unreleased"


class ReleaseError(Exception):
    """The release cannot proceed; the message says why."""


def bump(version: tuple[int, int, int], part: str) -> tuple[int, int, int]:
    major, minor, patch = version
    if part == "major":
        return major + 1, 0, 0
    if part == "minor":
        return major, minor + 1, 0
    if part == "patch":
        return major, minor, patch + 1
    raise ReleaseError(f"unknown part {part!r}: use major, minor or patch")


def version_file(root: Path, folder: str) -> Path:
    src = root / "packages" / folder / "src" / "opsin"
    if not src.is_dir():
        raise ReleaseError(f"no package folder packages/{folder} (expected {src})")
    candidates = [p for p in src.glob("*/__init__.py") if VERSION_RE.search(p.read_text())]
    if len(candidates) != 1:
        raise ReleaseError(f"expected one __init__.py with __version__ under {src}, found {len(candidates)}")
    return candidates[0]


def date_changelog(text: str, version: str, date: str) -> str:
    """Turn the Unreleased section into a dated version section, leaving an empty Unreleased on top."""
    start = text.find(UNRELEASED)
    if start < 0:
        raise ReleaseError(f"CHANGELOG.md has no '{UNRELEASED}' section")
    body_start = start + len(UNRELEASED)
    nxt = re.search(r"^## ", text[body_start:], re.MULTILINE)
    body_end = body_start + nxt.start() if nxt else len(text)
    body = text[body_start:body_end]
    entries = [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise ReleaseError(f"the '{UNRELEASED}' section of CHANGELOG.md is empty: nothing to release")
    dated = f"{UNRELEASED}\n\n## [{version}] - {date}\n{body.rstrip()}\n\n"
    return text[:start] + dated + text[body_end:].lstrip("\n")


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def release(root: Path, folder: str, part: str, date: str, *, commit: bool = True) -> str:
    """Perform the release and return the tag name."""
    if git(root, "status", "--porcelain").strip():
        raise ReleaseError("the work tree has uncommitted changes; commit or stash them first")
    vfile = version_file(root, folder)
    source = vfile.read_text()
    match = VERSION_RE.search(source)
    assert match is not None  # version_file only returns files that match
    old = tuple(int(g) for g in match.groups())
    new = ".".join(str(n) for n in bump(old, part))  # type: ignore[arg-type]
    changelog = root / "packages" / folder / "CHANGELOG.md"
    if not changelog.is_file():
        raise ReleaseError(f"missing {changelog}")
    new_changelog = date_changelog(changelog.read_text(), new, date)
    vfile.write_text(VERSION_RE.sub(f'__version__ = "{new}"', source, count=1))
    changelog.write_text(new_changelog)
    tag = f"opsin-{folder}-v{new}"
    if commit:
        git(root, "add", str(vfile), str(changelog))
        git(root, "commit", "-m", f"release: opsin-{folder} {new}")
        git(root, "tag", "-a", tag, "-m", f"opsin-{folder} {new}")
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="package folder under packages/, e.g. iq-experiments")
    parser.add_argument("part", choices=["major", "minor", "patch"], help="which version component to bump")
    parser.add_argument("--date", default=dt.date.today().isoformat(), help="release date (default: today)")
    parser.add_argument("--no-commit", action="store_true", help="edit the files only; no commit, no tag")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        tag = release(args.root, args.folder, args.part, args.date, commit=not args.no_commit)
    except ReleaseError as exc:
        print(f"release.py: {exc}", file=sys.stderr)
        return 1
    print(f"released {args.folder}; push with:\n  git push origin HEAD {tag}")
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
