from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RELEASE = Path(__file__).resolve().parents[1] / "release.py"

CHANGELOG = """# Changelog of opsin-demo-pkg

## Unreleased

### Added

- A feature.

## [0.1.0] - 2026-01-01

- First.
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    pkg = tmp_path / "packages" / "demo-pkg"
    (pkg / "src" / "opsin" / "demo").mkdir(parents=True)
    (pkg / "src" / "opsin" / "demo" / "__init__.py").write_text('"""Demo."""\n\n__version__ = "0.1.3"\n')
    (pkg / "CHANGELOG.md").write_text(CHANGELOG)
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.invalid")
    git(tmp_path, "config", "user.name", "t")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "init")
    return tmp_path


def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(RELEASE), *args, "--root", str(repo), "--date", "2026-11-22"]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.mark.parametrize(("part", "expected"), [("patch", "0.1.4"), ("minor", "0.2.0"), ("major", "1.0.0")])
def test_bump_dates_changelog_commits_and_tags(repo: Path, part: str, expected: str) -> None:
    result = run(repo, "demo-pkg", part)
    assert result.returncode == 0, result.stderr
    tag = f"opsin-demo-pkg-v{expected}"
    assert result.stdout.strip().splitlines()[-1] == tag
    init = (repo / "packages/demo-pkg/src/opsin/demo/__init__.py").read_text()
    assert f'__version__ = "{expected}"' in init
    log = (repo / "packages/demo-pkg/CHANGELOG.md").read_text()
    assert log.index("## Unreleased") < log.index(f"## [{expected}] - 2026-11-22") < log.index("- A feature.")
    assert log.index("- A feature.") < log.index("## [0.1.0]")
    unreleased = log.split("## Unreleased")[1].split("## [")[0]
    assert unreleased.strip() == ""
    assert git(repo, "tag", "--list").split() == [tag]
    assert git(repo, "status", "--porcelain") == ""


def test_refuses_dirty_tree(repo: Path) -> None:
    (repo / "stray.txt").write_text("x")
    result = run(repo, "demo-pkg", "patch")
    assert result.returncode == 1
    assert "uncommitted changes" in result.stderr
    assert '"0.1.3"' in (repo / "packages/demo-pkg/src/opsin/demo/__init__.py").read_text()


def test_refuses_empty_unreleased(repo: Path) -> None:
    assert run(repo, "demo-pkg", "patch").returncode == 0
    result = run(repo, "demo-pkg", "patch")
    assert result.returncode == 1
    assert "empty" in result.stderr
    assert git(repo, "tag", "--list").split() == ["opsin-demo-pkg-v0.1.4"]


def test_unknown_folder(repo: Path) -> None:
    result = run(repo, "nope", "patch")
    assert result.returncode == 1
    assert "packages/nope" in result.stderr


def test_repository_packages_are_releasable() -> None:
    # Every real package must have the layout the tool expects (a version file and an Unreleased section).
    sys.path.insert(0, str(RELEASE.parent))
    import release

    root = RELEASE.parents[1]
    for pkg in sorted((root / "packages").iterdir()):
        assert release.VERSION_RE.search(release.version_file(root, pkg.name).read_text())
        assert "## Unreleased" in (pkg / "CHANGELOG.md").read_text()
