"""`fiflow rules list|diff|activate`: rule set versions through the admin API.

Activating needs an admin person's key; a four-eyes rule set (the rules directory's
`activation.yaml`) only asks, and a second admin approves by activating the same version.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fiflow.starters.staff_api import (
    API_OPTION,
    JSON_OPTION,
    REFUSED,
    StaffApi,
    interruptible,
    key_option,
    out,
    print_json,
    short_time,
    stop,
)

ADMIN_KEY = "local-admin-1-key"
RULES = "/v1/admin/rules"


def rules_list(
    as_json: bool = JSON_OPTION,
    api: str = API_OPTION,
    key: str = key_option(ADMIN_KEY),
) -> None:
    """Every rule set: the active version, the versions kept, four eyes, pending activations.

    Exit codes: 0 done; 1 refused by the API (4xx: not an admin); 2 usage error; 3 API
    unreachable or failing (5xx); 130 interrupted (Ctrl-C).
    """
    sets = StaffApi(api, key).get(RULES)
    if as_json:
        print_json(sets)
        return
    table = Table(title="Rule sets", title_justify="left")
    for column in ("rule set", "active", "versions", "four eyes", "pending"):
        table.add_column(column)
    for rule_set in sets:
        versions = ", ".join(
            f"{v['version']}{' (file)' if v['source'] == 'file' else ''}"
            for v in rule_set["versions"]
        )
        pending = ", ".join(
            f"{p['version']} by {p['requested_by']}" for p in rule_set.get("pending") or []
        )
        active = rule_set.get("active_version") or "-"
        if rule_set.get("problem"):
            active += f"\n[red]{rule_set['problem']}[/]"
        table.add_row(
            rule_set["name"],
            active,
            versions or "-",
            "yes" if rule_set.get("second_admin_required") else "no",
            pending or "-",
        )
    out.print(table)


def rules_diff(
    name: str = typer.Argument(..., help="alerts, credit, triggers or conditions."),
    old: str = typer.Argument(..., help="The version to compare from."),
    new: str = typer.Argument(..., help="The version to compare to."),
    context: int = typer.Option(3, min=0, help="Lines of context around each change."),
    api: str = API_OPTION,
    key: str = key_option(ADMIN_KEY),
) -> None:
    """A unified diff between two versions of a rule set (stored, pending or the file's).

    Exit codes: 0 done (whether or not they differ); 1 a version or the rule set not found,
    or refused by the API (4xx); 2 usage error; 3 API unreachable or failing (5xx); 130
    interrupted (Ctrl-C).
    """
    client = StaffApi(api, key)
    before = client.get(f"{RULES}/{name}/versions/{old}")
    after = client.get(f"{RULES}/{name}/versions/{new}")
    lines = list(
        difflib.unified_diff(
            as_yaml(before["content"]).splitlines(keepends=True),
            as_yaml(after["content"]).splitlines(keepends=True),
            fromfile=f"{name} {old} ({before['source']})",
            tofile=f"{name} {new} ({after['source']})",
            n=context,
        )
    )
    if not lines:
        out.print(f"{name} {old} and {new} have the same rules")
        return
    for line in lines:
        out.print(diff_line(line.rstrip("\n")))


def as_yaml(content: dict[str, Any]) -> str:
    """A rule document as YAML, keys in their written order (what a reviewer reads)."""
    return yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100)


def diff_line(line: str) -> Text:
    """One line of a unified diff, colored like git's."""
    if line.startswith(("+++", "---")):
        return Text(line, style="bold")
    if line.startswith("@@"):
        return Text(line, style="cyan")
    if line.startswith("+"):
        return Text(line, style="green")
    if line.startswith("-"):
        return Text(line, style="red")
    return Text(line)


def rules_activate(
    name: str = typer.Argument(..., help="alerts, credit, triggers or conditions."),
    version: str = typer.Argument(..., help="The version to make active."),
    file: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="A new version from this rule file (its version must be VERSION); without it, "
        "a version the API already knows (a rollback, or another admin's pending one).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    api: str = API_OPTION,
    key: str = key_option(ADMIN_KEY),
) -> None:
    """Activate a version: new runs use it, runs in flight keep theirs.

    On a four-eyes rule set the first admin's activation only asks (shown as pending); a
    second admin approves it by activating the same version.

    Exit codes: 0 activated, or asked and now pending a second admin; 1 refused by the API
    (4xx: not an admin person, a conflicting version, your own pending activation) or not
    confirmed; 2 usage error; 3 API unreachable or failing (5xx); 130 interrupted (Ctrl-C).
    """
    client = StaffApi(api, key)
    rule_set = _rule_set(client, name)
    if rule_set.get("active_version") == version and file is None:
        out.print(f"{name} {version} is already the active version")
        return
    pending = next((p for p in rule_set.get("pending") or [] if p["version"] == version), None)
    if pending is not None and file is None:
        _confirm(yes, f"approve {pending['requested_by']}'s activation of {name} {version}?")
        response = client.call("POST", f"{RULES}/{name}/versions/{version}/approve", accept=(403,))
        if response.status_code == 403:
            out.print(pending_panel(name, rule_set, version))
            stop(
                f"{response.json().get('message', 'refused')}: another admin must approve",
                REFUSED,
            )
        out.print(f"{name} {version} approved and active (asked by {pending['requested_by']})")
        return
    document = _document(client, name, version, file)
    _confirm(yes, f"activate {name} {version}?")
    response = client.call("PUT", f"{RULES}/{name}", body=document)
    after = response.json()
    if response.status_code == 202:
        out.print(pending_panel(name, after, version))
        return
    out.print(f"{name} {after['active_version']} is active")


def _rule_set(client: StaffApi, name: str) -> dict[str, Any]:
    for rule_set in client.get(RULES):
        if rule_set["name"] == name:
            return dict(rule_set)
    stop(f"no rule set {name!r}", REFUSED)


def _document(client: StaffApi, name: str, version: str, file: Path | None) -> dict[str, Any]:
    if file is None:
        return dict(client.get(f"{RULES}/{name}/versions/{version}")["content"])
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}", param_hint="--file") from None
    if not isinstance(document, dict):
        raise typer.BadParameter(f"{file} is not a rule document", param_hint="--file")
    if str(document.get("version")) != version:
        raise typer.BadParameter(
            f"{file} is version {document.get('version')!r}, not {version!r}", param_hint="--file"
        )
    if document.get("name", name) != name:
        raise typer.BadParameter(f"{file} holds the {document['name']} rules", param_hint="--file")
    return document


def _confirm(yes: bool, question: str) -> None:
    if not yes and not typer.confirm(question, default=False):
        stop("nothing activated", REFUSED)


def pending_panel(name: str, rule_set: dict[str, Any], version: str) -> Panel:
    """A pending four-eyes activation: who asked, when, and what the next admin does."""
    pending = next((p for p in rule_set.get("pending") or [] if p["version"] == version), None)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("state", "[yellow]pending: waiting for a second admin[/]")
    if pending is not None:
        grid.add_row("asked by", pending["requested_by"])
        grid.add_row("asked at", short_time(pending["requested_at"]))
    grid.add_row("still active", str(rule_set.get("active_version") or "-"))
    grid.add_row("to approve", f"another admin runs `fiflow rules activate {name} {version}`")
    return Panel(grid, title=f"{name} {version}", title_align="left")


def register_rules_commands(rules_app: typer.Typer) -> None:
    """Add `list`, `diff` and `activate` to the `fiflow rules` group (beside `check`)."""
    rules_app.command("list")(interruptible(rules_list))
    rules_app.command("diff")(interruptible(rules_diff))
    rules_app.command("activate")(interruptible(rules_activate))
