"""`aicp policy ...`: validate a policy directory, run its YAML test cases.

Both load what the gateway loads: the shipped pack (unless `--no-pack`) and
the directory's *.cedar files, validated against the schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aicp.errors import ConfigError

policy_app = typer.Typer(
    no_args_is_help=True, help="Cedar policies: validate a directory, run its test cases."
)

PackOpt = Annotated[
    bool, typer.Option("--pack/--no-pack", help="Include the shipped policy pack (default).")
]


@policy_app.command("validate")
def validate(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="A directory of *.cedar.")],
    pack: PackOpt = True,
) -> None:
    """Parse and validate every policy; print their ids, or the errors (exit 1)."""
    from aicp.policy.policyset import PolicySet

    try:
        policies = PolicySet.load(directory, pack=pack)
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    found = sorted(policies.policies.values(), key=lambda p: (p.source, p.line, p.id))
    shipped = sum(1 for p in found if p.source.startswith("pack/"))
    typer.echo(f"{directory}: ok, {len(found)} policies ({shipped} from the pack)")
    width = max((len(p.id) for p in found), default=0)
    for p in found:
        typer.echo(f"  {p.id:{width}}  {p.effect:6}  {p.source}:{p.line}")


@policy_app.command("test")
def test(
    directory: Annotated[
        Path | None,
        typer.Argument(metavar="[DIR]", help="A policy directory (default: the pack alone)."),
    ] = None,
    cases: Annotated[
        list[Path] | None,
        typer.Argument(metavar="[CASES]...", help="YAML files (default: DIR/tests/**/*.yaml)."),
    ] = None,
    pack: PackOpt = True,
) -> None:
    """Run policy unit tests: one line per case; exit 1 when any fails."""
    from aicp.policy.cases import case_files, run_cases
    from aicp.policy.policyset import PACK_DIR, PolicySet

    try:
        policies = PolicySet.load(directory, pack=pack or directory is None)
        files = list(cases or case_files(directory or PACK_DIR))
        if not files:
            raise ConfigError(f"no test cases under {(directory or PACK_DIR) / 'tests'}")
        results = run_cases(policies, files)
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    for result in results:
        typer.echo(result.line())
    failed = sum(1 for r in results if not r.ok)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)
