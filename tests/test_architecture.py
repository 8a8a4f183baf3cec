"""Which way imports point (DESIGN.md section 2), and what workflow code must never use."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import fiflow

PACKAGE = Path(fiflow.__file__).resolve().parent
LAYERS = ("domain", "integrations", "activities", "workflows", "workers", "starters", "sandbox")

# For each layer, the fiflow layers its modules may import (itself included).
ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset({"domain"}),
    "integrations": frozenset({"integrations", "domain"}),
    "activities": frozenset({"activities", "integrations", "domain"}),
    "workflows": frozenset({"workflows", "activities", "domain"}),
    "workers": frozenset({"workers", "workflows", "activities", "integrations", "domain"}),
    # The CLI is the one place that launches workers and the sandbox.
    "starters": frozenset(
        {"starters", "workers", "workflows", "activities", "integrations", "domain", "sandbox"}
    ),
    "sandbox": frozenset({"sandbox"}),
}

# Libraries that do I/O or are non-deterministic: never in workflow code.
WORKFLOW_FORBIDDEN_MODULES = frozenset(
    {"httpx", "sqlalchemy", "psycopg", "requests", "aiohttp", "random", "uuid", "secrets"}
)
WORKFLOW_FORBIDDEN_TEXT = (
    "datetime.now(",
    "datetime.utcnow(",
    "date.today(",
    "time.time(",
    "uuid.uuid4(",
    "import random",
    "from random",
)


def module_name(root: Path, path: Path) -> str:
    """Dotted module name of a file under the package root ("fiflow.domain.keys")."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(root: Path, path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (also inside functions and `with` blocks)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    this = module_name(root, path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                module = f"{prefix}.{node.module}" if node.module else prefix
            else:
                module = node.module or ""
            found.add(module)
            # `from fiflow import workers` / `from . import sandbox` import a subpackage.
            found.update(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def layer_of(module: str, root_name: str) -> str | None:
    """The layer a dotted fiflow module belongs to (None for the package itself)."""
    parts = module.split(".")
    if parts[0] != root_name or len(parts) < 2:
        return None
    return parts[1]


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def layer_violations(root: Path) -> list[str]:
    """Every import that points the wrong way, as "module -> imported (why)"."""
    problems: list[str] = []
    root_name = root.name
    for path in python_files(root):
        this = module_name(root, path)
        own = layer_of(this, root_name)
        if own is None:
            continue
        allowed = ALLOWED.get(own)
        if allowed is None:
            problems.append(f"{this}: not in any known layer {LAYERS}")
            continue
        # One problem per forbidden layer a file reaches, however many names it takes from it.
        reached: dict[str, str] = {}
        for imported in sorted(imported_modules(root, path)):
            target = layer_of(imported, root_name)
            if target in LAYERS and target not in allowed:
                reached.setdefault(target, imported)
        problems.extend(
            f"{this} -> {imported} ({own} may not import {target})"
            for target, imported in sorted(reached.items())
        )
    return problems


def workflow_violations(root: Path) -> list[str]:
    """I/O libraries and non-deterministic calls in workflow modules."""
    problems: list[str] = []
    workflows = root / "workflows"
    for path in python_files(workflows) if workflows.is_dir() else []:
        this = module_name(root, path)
        for imported in sorted(imported_modules(root, path)):
            if imported.split(".")[0] in WORKFLOW_FORBIDDEN_MODULES:
                problems.append(f"{this} imports {imported}")
        code = path.read_text(encoding="utf-8")
        for needle in WORKFLOW_FORBIDDEN_TEXT:
            # Not preceded by a letter, so `mytime.time(` or `nouuid.uuid4(` do not count.
            if re.search(r"(?<!\w)" + re.escape(needle), code):
                problems.append(f"{this} uses {needle}")
    return problems


# --- the real package -------------------------------------------------------------------


def test_every_layer_directory_exists() -> None:
    for layer in LAYERS:
        assert (PACKAGE / layer / "__init__.py").is_file(), layer


def test_the_scan_sees_the_code() -> None:
    modules = {module_name(PACKAGE, p) for p in python_files(PACKAGE)}
    assert "fiflow.domain.replies" in modules
    assert "fiflow.integrations.twilio_signature" in modules
    imports = imported_modules(PACKAGE, PACKAGE / "domain" / "conversations.py")
    assert "fiflow.domain.replies" in imports


def test_every_module_is_in_a_layer() -> None:
    stray = [
        module_name(PACKAGE, p)
        for p in python_files(PACKAGE)
        if layer_of(module_name(PACKAGE, p), "fiflow") not in (*LAYERS, None)
    ]
    assert stray == []


def test_imports_point_down_the_layers() -> None:
    assert layer_violations(PACKAGE) == []


def test_workflows_stay_deterministic() -> None:
    assert workflow_violations(PACKAGE) == []


# --- the checker catches what it is meant to catch --------------------------------------


def make_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "fiflow"
    for layer in LAYERS:
        (root / layer).mkdir(parents=True, exist_ok=True)
        (root / layer / "__init__.py").write_text("", encoding="utf-8")
    (root / "__init__.py").write_text("", encoding="utf-8")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("rel", "source", "offence"),
    [
        ("domain/m.py", "from fiflow.integrations import http\n", "domain may not import"),
        ("domain/m.py", "import fiflow.activities.rules\n", "domain may not import activities"),
        ("domain/m.py", "from ..workflows import x\n", "domain may not import workflows"),
        ("integrations/m.py", "from fiflow.activities.x import A\n", "may not import activities"),
        ("activities/m.py", "from fiflow.workflows.x import W\n", "may not import workflows"),
        (
            "workflows/m.py",
            "from temporalio import workflow\n"
            "with workflow.unsafe.imports_passed_through():\n"
            "    from fiflow.integrations.sms import SmsClient\n",
            "workflows may not import integrations",
        ),
        ("workflows/m.py", "def f():\n    from fiflow.workers import main\n", "import workers"),
        ("workers/m.py", "from fiflow.starters import cli\n", "workers may not import starters"),
        ("domain/m.py", "from fiflow import starters\n", "domain may not import starters"),
        ("sandbox/m.py", "from fiflow.domain.keys import address_hash\n", "sandbox may not"),
        ("sandbox/routes/r.py", "from ...integrations import http\n", "sandbox may not"),
        ("integrations/m.py", "from fiflow.sandbox.ids import new_id\n", "may not import sandbox"),
        ("workers/m.py", "import fiflow.sandbox.app\n", "workers may not import sandbox"),
    ],
)
def test_layer_checker_catches_a_violation(
    tmp_path: Path, rel: str, source: str, offence: str
) -> None:
    problems = layer_violations(make_package(tmp_path, {rel: source}))
    assert len(problems) == 1
    assert offence in problems[0]


def test_layer_checker_allows_the_intended_directions(tmp_path: Path) -> None:
    root = make_package(
        tmp_path,
        {
            "domain/a.py": "from fiflow.domain.b import x\nfrom . import b\nimport pydantic\n",
            "integrations/a.py": "from fiflow.domain import keys\nfrom .http import send\n",
            "activities/a.py": "from fiflow.integrations.sms import S\nfrom fiflow.domain import k",
            "workflows/a.py": "from fiflow.activities.a import A\nfrom fiflow.domain import k",
            "workers/a.py": "from fiflow.workflows.a import W\nfrom fiflow.integrations import t",
            "starters/cli.py": "from fiflow.workers.a import run\nfrom fiflow.sandbox import app",
            "sandbox/routes/a.py": "from ..state import get_state\nfrom fiflow.sandbox import ids",
        },
    )
    assert layer_violations(root) == []


def test_layer_checker_flags_an_unknown_layer(tmp_path: Path) -> None:
    root = make_package(tmp_path, {"api/app.py": "from fiflow.domain import keys\n"})
    assert layer_violations(root) == ["fiflow.api.app: not in any known layer " + str(LAYERS)]


@pytest.mark.parametrize(
    ("source", "offence"),
    [
        ("import httpx\n", "imports httpx"),
        ("from sqlalchemy.orm import Session\n", "imports sqlalchemy"),
        ("import random\n", "import random"),
        ("from uuid import uuid4\n", "imports uuid"),
        ("from datetime import datetime\nx = datetime.now()\n", "datetime.now("),
        ("import datetime\nx = datetime.datetime.now()\n", "datetime.now("),
        ("import time\nx = time.time()\n", "time.time("),
    ],
)
def test_workflow_checker_catches_non_determinism(
    tmp_path: Path, source: str, offence: str
) -> None:
    root = make_package(tmp_path, {"workflows/w.py": source})
    problems = workflow_violations(root)
    assert problems
    assert any(offence in p for p in problems)


def test_workflow_checker_allows_the_workflow_api(tmp_path: Path) -> None:
    source = (
        "from datetime import timedelta\n"
        "from temporalio import workflow\n"
        "x = workflow.now()\n"
        "y = workflow.uuid4()\n"
        "z = workflow.random().randint(1, 6)\n"
    )
    root = make_package(tmp_path, {"workflows/w.py": source})
    assert workflow_violations(root) == []


# --- subprocesses ------------------------------------------------------------------------


def preexec_fn_uses(root: Path) -> list[str]:
    """Calls passing `preexec_fn=`: unsafe while other threads run (the subprocess docs).

    `fiflow up` pumps each part's output on threads while it starts parts; a new session
    (`start_new_session=True`) or `process_group=` does what preexec_fn was used for.
    """
    found = []
    for path in python_files(root):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and any(k.arg == "preexec_fn" for k in node.keywords):
                found.append(f"{module_name(root, path)}:{node.lineno}")
    return found


def test_no_subprocess_uses_preexec_fn() -> None:
    assert preexec_fn_uses(PACKAGE) == []


def test_preexec_fn_checker_catches_a_use(tmp_path: Path) -> None:
    source = "import subprocess\nsubprocess.Popen(['true'], preexec_fn=lambda: None)\n"
    root = make_package(tmp_path, {"starters/up.py": source})
    assert preexec_fn_uses(root) == ["fiflow.starters.up:2"]
