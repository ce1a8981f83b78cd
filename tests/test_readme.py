"""Every ```bash and ```python snippet of README.md runs as written, in order, as a new user would.

README.md is parsed when the tests run (no copied snippets). The snippets share one workspace: a fresh folder
standing for the user's clone (cwd), a private ``STYLECLS_CACHE`` holding the demo set, ``datasets/`` (the default
data root) and ``../shared/data`` pointing at the real data subsets, and the user's own input files the snippets
name (``photo.png``, ``photos/``, ``scans/``, ``cat.jpg``: demo images; ``resnet50-weights.pth``: a torchvision
state dict; torchvision's ImageNet weights in a private ``TORCH_HOME``: random, there is no internet here). The
quick start's training runs once, for real, in a session fixture; ``runs/<run>`` placeholders stand for the run
folder it makes. A command is run unless ``SKIP`` says why not, so a new snippet that cannot run here fails until
it is decided on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"  # as in conftest.py
#: The run folder the quick start's `stylecls train --block srm` makes (and prints last).
QUICK_RUN = "runs/demo-cifar_resnet20-srm-s0"
QUICK_START = "stylecls train --block srm"

#: Commands (regex, matched at the start of one `&&`-separated command, its comment removed) not run here.
SKIP: dict[str, str] = {
    r"pip install": "installs packages from the package registries; the tests run in the installed dev environment",
    r"pytest$": "the test suite itself, which runs this test",
    r"stylecls data download --dataset dtd$": "downloads DTD (needs the internet)",
    r"stylecls data import --dataset pacs --from PACS\.zip": "needs a PACS archive the user already has",
    r"stylecls sweep .*--seed 2 --out runs/demo --jobs 2$": "9 trainings of 10 epochs (8.1 min, idle 2-core CPU)",
    r"stylecls sweep --dataset pacs .*--out runs/pacs --jobs 2$": "12 trainings on PACS (6.6 min, idle 2-core CPU)",
    r"jupyter lab": "starts an interactive server (the notebooks are executed by tests/test_notebooks.py)",
    r"stylecls report runs/ \[": "usage synopsis: the bracketed parts are alternatives, not one command",
    r"stylecls models .*--time": "times every block (~1 min a block, idle 2-core CPU): a benchmark, not a test",
}
#: Commands whose documented exit code is not 0, with why.
EXIT_CODES: dict[str, tuple[int, str]] = {
    r"stylecls data check --dataset pacs --deep": (1, "the PACS copy in datasets/ is a subset: incomplete"),
}
#: Commands that need the real data (datasets/ and ../shared/data); skipped where it is absent.
NEEDS_DATA = (r"stylecls data (check|prepare) --dataset pacs", r"stylecls sweep --preset pacs-lodo")


@dataclass(frozen=True)
class Snippet:
    """One fenced block of README.md: its language, first line number and text."""

    lang: str
    line: int
    text: str


@dataclass(frozen=True)
class Command:
    """One shell command of a ```bash block (continuations joined, `a && b` split)."""

    line: int
    text: str

    @property
    def key(self) -> str:
        """The command without its trailing comment: what SKIP and EXIT_CODES match."""
        return re.sub(r"\s+#\s.*$", "", self.text).strip()


def readme_snippets() -> list[Snippet]:
    """The ```bash and ```python blocks of README.md, in order."""
    found, lang, start, body = [], None, 0, []
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if lang is None and (match := re.fullmatch(r"```(\w+)\s*", line)):
            lang, start, body = match.group(1), number + 1, []
        elif lang is not None and line.strip() == "```":
            if lang in ("bash", "python"):
                found.append(Snippet(lang, start, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
    return found


def bash_commands(snippet: Snippet) -> list[Command]:
    """Each command of a bash block; a line ending in a backslash, or followed by an indented one, continues."""
    commands: list[Command] = []
    pending, first = "", 0
    for offset, line in enumerate(snippet.text.splitlines()):
        if line[:1].isspace() and line.strip() and commands and not pending:
            last = commands.pop()  # an indented line goes on the previous one (a usage synopsis)
            pending, first = last.text + " ", last.line
        elif not pending:
            first = snippet.line + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined = " ".join((pending + line).split())
        pending = ""
        if joined and not joined.startswith("#"):
            commands += [Command(first, part.strip()) for part in joined.split(" && ")]
    return commands


def all_commands() -> list[Command]:
    return [c for s in readme_snippets() if s.lang == "bash" for c in bash_commands(s)]


def matching(table: dict[str, object] | tuple[str, ...], key: str) -> str | None:
    return next((pattern for pattern in table if re.match(pattern, key)), None)


def test_readme_has_a_quick_start_and_names_its_run() -> None:
    keys = [c.key for c in all_commands()]
    assert QUICK_START in keys, f"the quick start `{QUICK_START}` is gone from README.md: update this test"
    assert f"stylecls evaluate {QUICK_RUN}" in keys, "the quick start's next step should name the run it makes"


def test_command_blocks_are_tagged_bash() -> None:
    """An untagged block of commands would be left out of the test: tag it ```bash (or ```python)."""
    untagged, fence = [], None
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            fence = (line.strip(), number) if fence is None else None
        elif fence is not None and fence[0] == "```" and re.match(r"(stylecls|pip|python|torchrun) ", line):
            untagged.append(f"README line {number}: {line}")
    assert not untagged, "commands in a block without a language:\n" + "\n".join(untagged)


def test_every_skip_entry_still_matches_a_readme_command() -> None:
    keys = [c.key for c in all_commands()]
    stale = [p for p in (*SKIP, *EXIT_CODES, *NEEDS_DATA) if not any(re.match(p, k) for k in keys)]
    assert not stale, f"entries that match no README command any more (remove them): {stale}"


# --- the workspace a new user would have after the quick start -------------------------------------------------


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory, demo_cache: Path) -> tuple[Path, dict[str, str]]:
    """The user's clone (cwd) after the quick start's `stylecls train --block srm`, and the environment."""
    from PIL import Image

    root = tmp_path_factory.mktemp("newuser")
    clone, cache = root / "clone", root / "cache"
    clone.mkdir()
    shutil.copytree(demo_cache / "demo", cache / "demo")
    if SHARED_DATA.is_dir():
        (root / "shared").symlink_to(SHARED_DATA.parent, target_is_directory=True)
        (clone / "datasets").symlink_to(SHARED_DATA, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STYLECLS_", "HF_"))}
    env |= {"STYLECLS_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TORCH_HOME": str(root / "torch")}
    images = sorted((cache / "demo").glob("*/*/*.png"))[::400]  # four domains
    shutil.copy(images[0], clone / "photo.png")
    (clone / "photos").mkdir()
    shutil.copy(images[1], clone / "photos" / "texture.png")
    (clone / "scans" / "2024").mkdir(parents=True)
    shutil.copy(images[2], clone / "scans" / "2024" / "scan.png")
    Image.open(images[3]).convert("RGB").save(clone / "cat.jpg")

    done = subprocess.run(["bash", "-c", QUICK_START], cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert QUICK_RUN in last, f"the quick start should print its run folder last, printed: {last!r}"
    assert (clone / QUICK_RUN / "best.pt").is_file()
    return clone, env


def _resnet50_weights(clone: Path) -> None:
    """The local torchvision state dict the models snippet loads (random weights: only the keys matter)."""
    import torch
    from torchvision.models import resnet50

    torch.save(resnet50().state_dict(), clone / "resnet50-weights.pth")


def _imagenet_weights(text: str, torch_home: Path) -> None:
    """Pre-fill torchvision's weights cache for `pretrained="imagenet"` (no internet here): random weights under the
    real file name; torchvision loads a cached file without fetching it, so only the keys and shapes matter."""
    import torch
    from torchvision.models import get_model, get_model_weights

    for arch in re.findall(r'build_model\(\s*"(\w+)"[^)]*pretrained="imagenet"', text):
        target = torch_home / "hub" / "checkpoints" / Path(get_model_weights(arch).DEFAULT.url).name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            torch.save(get_model(arch).state_dict(), target)


def _run_bash(command: Command, clone: Path, env: dict[str, str]) -> None:
    key = command.key
    if re.match(re.escape(QUICK_START) + "$", key):
        return  # the workspace fixture ran it
    if (pattern := matching(SKIP, key)) is not None:
        pytest.skip(SKIP[pattern])
    if matching(NEEDS_DATA, key) and not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    expected = EXIT_CODES[p][0] if (p := matching(EXIT_CODES, key)) else 0
    text = command.text.replace("runs/<run>", QUICK_RUN)
    done = subprocess.run(["bash", "-c", text], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    output = (done.stdout[-4000:] + "\n" + done.stderr[-4000:]).strip()
    assert done.returncode == expected, f"README line {command.line}: `{text}` exited {done.returncode}\n{output}"
    assert "Traceback (most recent call last)" not in output, f"README line {command.line}: `{text}`\n{output}"


#: Runs a doctest read from stdin in a fresh interpreter, as a user would paste it into one.
DOCTEST = """
import doctest, sys
name, line = sys.argv[1], int(sys.argv[2])
test = doctest.DocTestParser().get_doctest(sys.stdin.read(), {}, name, "README.md", line - 1)
runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
sys.exit(1 if runner.run(test).failed else 0)
"""


def _run_python(snippet: Snippet, clone: Path, env: dict[str, str]) -> None:
    if "resnet50-weights.pth" in snippet.text and not (clone / "resnet50-weights.pth").exists():
        _resnet50_weights(clone)
    _imagenet_weights(snippet.text, Path(env["TORCH_HOME"]))
    if snippet.text.lstrip().startswith(">>>"):
        argv = [sys.executable, "-c", DOCTEST, f"README.md:{snippet.line}", str(snippet.line)]
    else:
        argv = [sys.executable, "-c", snippet.text]
    done = subprocess.run(argv, input=snippet.text, cwd=clone, env=env, capture_output=True, text=True)
    output = (done.stdout[-6000:] + "\n" + done.stderr[-4000:]).strip()
    assert done.returncode == 0, f"README line {snippet.line}:\n{snippet.text}\n{output}"


def _cases() -> list:
    cases = []
    for snippet in readme_snippets():
        if snippet.lang == "python":
            cases.append(pytest.param(snippet, id=f"L{snippet.line}-python"))
        else:
            for command in bash_commands(snippet):
                words = "-".join(command.key.split()[:3])
                cases.append(pytest.param(command, id=f"L{command.line}-{words}"))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("item", _cases())
def test_readme_snippet_runs_as_written(
    item: Snippet | Command, workspace: tuple[Path, dict[str, str]]
) -> None:
    clone, env = workspace
    if isinstance(item, Snippet):
        _run_python(item, clone, env)
    else:
        _run_bash(item, clone, env)
