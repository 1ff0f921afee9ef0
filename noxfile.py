"""Developer and CI entry points for the opsin monorepo.

    nox -l                         list sessions
    nox -s tests                   every package's test suite (one venv per package)
    nox -s "tests(iq-experiments)" one package; `nox -t iq-experiments` runs all of that package's sessions
    nox -s lint typecheck build    static checks and wheel smoke tests
    nox -s docs demo bench         documentation site, the end-to-end demo, benchmarks (`-- --quick`)

Every install passes `-c constraints.txt`: an unpinned torch range would pull a multi-GB CUDA build.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
CONSTRAINTS = str(ROOT / "constraints.txt")

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests", "tools", "lint"]

# uv ignores pip's configuration; the local CPU torch wheel is only found through find-links.
if os.environ.get("PIP_FIND_LINKS") and not os.environ.get("UV_FIND_LINKS"):
    os.environ["UV_FIND_LINKS"] = os.environ["PIP_FIND_LINKS"]

# folder -> (import name, extras installed for tests and demos)
PACKAGES: dict[str, tuple[str, str]] = {
    "core-utils": ("core", "dask"),
    "synth-client": ("synth", "all"),
    "iq-experiments": ("iq", "dask"),
    "event-flow": ("eventflow", ""),
}
FOLDERS = list(PACKAGES)
# ids equal the folder names, and each parametrization is tagged with its folder: `nox -t event-flow`.
PARAMS = [nox.param(folder, id=folder, tags=[folder]) for folder in FOLDERS]


def _spec(folder: str, *, editable: bool = True) -> list[str]:
    extras = PACKAGES[folder][1]
    target = f"packages/{folder}" + (f"[{extras}]" if extras else "")
    return ["-e", target] if editable else [target]


def _install_package(session: nox.Session, folder: str, *extra: str) -> None:
    """Install one package (editable) with its opsin siblings from this checkout and its test group."""
    args = ["-c", CONSTRAINTS]
    if folder != "core-utils":
        args += _spec("core-utils")
    args += _spec(folder)
    args += ["--group", f"packages/{folder}/pyproject.toml:test", *extra]
    session.install(*args)


def _scripts(folder: str) -> list[str]:
    data = tomllib.loads((ROOT / "packages" / folder / "pyproject.toml").read_text())
    return sorted(data.get("project", {}).get("scripts", {}))


@nox.session(tags=["tests"])
@nox.parametrize("package", PARAMS)
def tests(session: nox.Session, package: str) -> None:
    """Run one package's test suite (pytest; `-- ARGS` are passed to pytest)."""
    _install_package(session, package)
    # tools/pytest_gate.py turns "no tests collected" (exit 5) into a failure with a clear message.
    session.run(
        "python",
        str(ROOT / "tools" / "pytest_gate.py"),
        f"packages/{package}/tests",
        "-q",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"OPSIN_NO_PROGRESS": "1", "MPLBACKEND": "Agg"},
    )


@nox.session(name="tests_postgres")
def tests_postgres(session: nox.Session) -> None:
    """The synth service tests on PostgreSQL: Debian's server (installed when missing) in a temporary cluster."""
    if not any(Path(p).is_dir() for p in ("/usr/lib/postgresql",)) and not shutil.which("initdb"):
        if not shutil.which("apt-get") or os.geteuid() != 0:
            session.skip("no PostgreSQL server binaries, and no root apt-get to install Debian's postgresql package")
        apt_env = {"DEBIAN_FRONTEND": "noninteractive"}
        session.run("apt-get", "update", "-q", external=True, env=apt_env)
        session.run("apt-get", "install", "-y", "-q", "postgresql", external=True, env=apt_env)
    _install_package(session, "synth-client", "psycopg[binary]")
    session.run("python", str(ROOT / "tools" / "pytest_gate.py"), "packages/synth-client/tests/server", "-q", "-p",
                "no:cacheprovider", "-m", "not slow", *session.posargs,
                env={"OPSIN_SYNTH_TEST_POSTGRES": "1", "OPSIN_NO_PROGRESS": "1", "MPLBACKEND": "Agg"})  # fmt: skip


@nox.session(name="portal_browser")
def portal_browser(session: nox.Session) -> None:
    """The synth portal in headless Chromium: installs Debian's chromium when missing, keeps the screenshots."""
    if not any(shutil.which(name) for name in ("chromium", "chromium-browser")):
        if not shutil.which("apt-get") or os.geteuid() != 0:
            session.skip("no Chromium on PATH, and no root apt-get to install Debian's chromium package")
        apt_env = {"DEBIAN_FRONTEND": "noninteractive"}
        session.run("apt-get", "update", "-q", external=True, env=apt_env)
        session.run("apt-get", "install", "-y", "-q", "chromium", external=True, env=apt_env)
    _install_package(session, "synth-client")
    shots = Path(session.create_tmp()) / "screenshots"
    test = "packages/synth-client/tests/server/test_portal_browser.py"
    session.run("python", str(ROOT / "tools" / "pytest_gate.py"), test, "-q", "-p", "no:cacheprovider",
                env={"OPSIN_SCREENSHOT_DIR": str(shots), "OPSIN_NO_PROGRESS": "1"})  # fmt: skip
    session.log(f"screenshots: {shots}")


@nox.session(name="tools")
def tools_tests(session: nox.Session) -> None:
    """Tests of the repository tooling (tools/: release helper, pytest gate)."""
    session.install("-c", CONSTRAINTS, "pytest")
    session.run("python", str(ROOT / "tools" / "pytest_gate.py"), "tools/tests", "-q", "-p", "no:cacheprovider")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format) and the GitHub workflow schemas."""
    session.install("-c", CONSTRAINTS, "ruff", "check-jsonschema")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)


@nox.session
@nox.parametrize("package", PARAMS)
def typecheck(session: nox.Session, package: str) -> None:
    """Mypy over one package's sources (strict settings in mypy.ini)."""
    _install_package(session, package, "mypy")
    module = PACKAGES[package][0]
    session.run("mypy", "--config-file", str(ROOT / "mypy.ini"), "-p", f"opsin.{module}")


@nox.session
@nox.parametrize("package", PARAMS)
def build(session: nox.Session, package: str) -> None:
    """Build sdist and wheel, then install the wheel alone in a fresh venv and smoke-test it.

    Only the opsin siblings' wheels are offered next to it, so a file missing from the wheel, or a dependency
    on a sibling that is not declared, fails here although editable installs hide it.
    """
    session.install("-c", CONSTRAINTS, "build")
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir(parents=True)
    needed = ["core-utils", package] if package != "core-utils" else [package]
    for folder in needed:
        session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(dist), f"packages/{folder}")
    dist_name = f"opsin_{package.replace('-', '_')}"
    wheels = sorted(dist.glob(f"{dist_name}-*.whl"))
    if not wheels or not list(dist.glob(f"{dist_name}-*.tar.gz")):
        session.error(f"no wheel or sdist for {package} in {dist}")
    smoke = Path(session.create_tmp()) / "smoke-venv"
    shutil.rmtree(smoke, ignore_errors=True)
    session.run("uv", "venv", "--quiet", "--python", sys.executable, str(smoke), external=True)
    py = str(smoke / "bin" / "python")
    session.run(
        "uv", "pip", "install", "--python", py, "-c", CONSTRAINTS, "--find-links", str(dist), str(wheels[-1]),
        external=True,
    )  # fmt: skip
    module = PACKAGES[package][0]
    session.run(py, "-c", f"import opsin.{module} as m; print('opsin.{module}', m.__version__)", external=True)
    for script in _scripts(package):
        session.run(str(smoke / "bin" / script), "--help", external=True, silent=True)
    if package == "iq-experiments":
        # The image-quality package must never drag in torch (a multi-GB dependency it does not use).
        session.run(
            py, "-c", "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)", external=True
        )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with `mkdocs build --strict` (API pages read the sources directly)."""
    session.install("-c", CONSTRAINTS, "mkdocs-material", "mkdocstrings[python]")
    site = Path(session.create_tmp()) / "site"
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site), env={"NO_MKDOCS_2_WARNING": "1"})
    session.log(f"site built: {site / 'index.html'}")


# package -> the commands of its end-to-end demo; {out} is the demo's output folder.
DEMOS: dict[str, list[list[str]]] = {
    "synth-client": [
        # Starts the self-hosted service on a free loopback port, renders shapes scenes and VisionFit videos, downloads.
        ["opsin-synth", "demo", "--out-dir", "{out}/synth"],
    ],
    "iq-experiments": [
        # Synthetic dataset, JPEG quality x learning rate grid tracked in mlflow, SNR/sharpness, a PNG plot.
        ["opsin-iq", "demo", "--out-dir", "{out}/iq", "--workers", "2"],
    ],
    "event-flow": [
        # A small synthetic event dataset with exact ground-truth flow, then its event_cube features.
        ["opsin-eventflow", "synth", "--out-dir", "{out}/event-flow/raw", "--num-sequences", "6", "--height", "64",
         "--width", "64", "--duration-us", "500000", "--delta-t", "10000", "--seed", "0"],
        ["opsin-eventflow", "precompute", "{out}/event-flow/raw", "--out-dir", "{out}/event-flow/features",
         "--preprocess", "event_cube", "--delta-t", "10000"],
        # A brief CPU training (the shipped demo config: 2 epochs), then AEE / %Out of the model, zero flow and
        # Farneback on the labelled test recording.
        ["opsin-eventflow", "fit", "--config", "demo", "--data.data_dir", "{out}/event-flow/features",
         "--data.test_data_dir", "{out}/event-flow/raw/test", "--trainer.default_root_dir", "{out}/event-flow/runs",
         "--trainer.enable_progress_bar", "false"],
        ["opsin-eventflow", "evaluate", "--ckpt",
         "{out}/event-flow/runs/lightning_logs/version_0/checkpoints/last.ckpt",
         "--dir", "{out}/event-flow/raw/test", "--farneback", "--json", "{out}/event-flow/evaluate.json"],
        # Flow of a 320x240 recording with the pretrained model shipped in the package, as a video.
        ["opsin-eventflow", "synth", "--out-dir", "{out}/event-flow/video", "--num-sequences", "1", "--height", "240",
         "--width", "320", "--duration-us", "2000000", "--delta-t", "50000", "--seed", "7", "--max-speed", "250"],
        ["opsin-eventflow", "demo", "--input", "{out}/event-flow/video/train/seq_0000_td.dat", "--out",
         "{out}/event-flow/flow.mp4", "--mode", "dense"],
    ],
}  # fmt: skip


@nox.session
def demo(session: nox.Session) -> None:
    """Run every package's end-to-end demo on embedded defaults (output under .nox/demo/tmp/out)."""
    missing = [folder for folder in FOLDERS if folder not in DEMOS]
    args = ["-c", CONSTRAINTS]
    for folder in FOLDERS:
        args += _spec(folder, editable=False)
    session.install(*args)
    out = Path(session.create_tmp()) / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for folder, commands in DEMOS.items():
        session.log(f"demo of {folder}")
        for command in commands:
            session.run(*(part.format(out=out) for part in command))
    # The packages meet through files: a shapes job rendered by the synth service is an iq-experiments dataset.
    shapes_jobs = sorted(p.parent for p in (out / "synth").glob("*/*/annotations.json"))
    if shapes_jobs:
        session.log(f"iq-experiments on the synth service's shapes job {shapes_jobs[0].name}")
        session.run("opsin-iq", "sanity", str(shapes_jobs[0]), "--out-dir", str(out / "iq-sanity"), "--out",
                    str(out / "iq-sanity.json"))  # fmt: skip
        session.run("opsin-iq", "stats", str(shapes_jobs[0]), "--out-dir", str(out / "iq-stats"), "--out",
                    str(out / "iq-stats.json"))  # fmt: skip
    for folder in missing:
        session.log(f"{folder}: no demo entry point yet (it is a library, or its demo lands with a later issue)")
    video = out / "event-flow" / "flow.mp4"
    if video.is_file():
        session.log(f"event-flow: flow video of the pretrained model: {video}")
    session.log(f"demo output: {out}")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every package's benchmarks (packages/*/benchmarks/bench_*.py); `-- --quick` for a short pass."""
    scripts = sorted((ROOT / "packages").glob("*/benchmarks/bench_*.py"))
    with_bench = sorted({p.parents[1].name for p in scripts})
    args = ["-c", CONSTRAINTS]
    for folder in with_bench:
        args += _spec(folder)
        args += ["--group", f"packages/{folder}/pyproject.toml:test"]
    if with_bench and "core-utils" not in with_bench:
        args += _spec("core-utils")
    if len(args) > 2:
        session.install(*args)
    for folder in with_bench:  # bench-only dependencies (e.g. the C reader the event decoders are compared with)
        pyproject = ROOT / "packages" / folder / "pyproject.toml"
        if "bench" in tomllib.loads(pyproject.read_text()).get("dependency-groups", {}):
            session.install("-c", CONSTRAINTS, "--group", f"{pyproject.relative_to(ROOT)}:bench")
    for script in scripts:
        session.log(f"benchmark {script.relative_to(ROOT)}")
        session.run("python", str(script), *session.posargs, env={"OPSIN_NO_PROGRESS": "1", "MPLBACKEND": "Agg"})
    for folder in FOLDERS:
        if folder not in with_bench:
            session.log(f"{folder}: no benchmark yet")
