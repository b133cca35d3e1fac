"""``rater allocate`` and ``rater allocation ...``: the design from the command line.

Every command writes in one transaction (all or nothing); ``--dry-run`` writes nothing.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from rater.allocation import batches, changes, planning
from rater.allocation import calibration as calib
from rater.allocation.errors import AllocationError
from rater.allocation.ordering import QueueOrder
from rater.allocation.settings import get_setting, put_setting
from rater.cli import fail, transaction


def _echo_plan(p: planning.AllocationPlan) -> None:
    click.echo(p.to_text())
    for line in calib.gate_status().lines():
        click.echo(line)


@click.command("allocate")
@click.option(
    "--double-fraction",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of sessions double-coded (default: the stored value, else 0.4).",
)
@click.option(
    "--seed",
    type=click.IntRange(0),
    default=None,
    help="Random seed (default: the stored value, else 0).",
)
@click.option(
    "--calibration",
    "n_calibration",
    type=click.IntRange(1),
    default=None,
    help="Draw N calibration sessions (stratified) first.",
)
@click.option(
    "--exclude-calibration",
    is_flag=True,
    help="Mark drawn calibration sessions excluded ('calibration session').",
)
@click.option(
    "--keep-unstarted", is_flag=True, help="Keep unstarted assignments; place only uncovered work."
)
@click.option("--dry-run", is_flag=True, help="Print the design; write nothing.")
@with_appcontext
def allocate(
    double_fraction: float | None,
    seed: int | None,
    n_calibration: int | None,
    exclude_calibration: bool,
    keep_unstarted: bool,
    dry_run: bool,
) -> None:
    """Design the allocation of the whole study and print its balance report.

    Started work is never touched; unstarted main/double assignments are re-planned.
    """
    try:
        with transaction():
            drawn: list[str] = []
            if n_calibration:
                drawn = calib.draw_sessions(n_calibration, seed or 0)
                click.echo(f"Calibration sessions drawn: {', '.join(drawn)}")
                if not dry_run:
                    calib.add_calibration_sessions(drawn, exclude=exclude_calibration)
            p = planning.plan(
                double_fraction,
                seed,
                keep_unstarted=keep_unstarted,
                calibration=drawn if dry_run else (),
            )
            if dry_run:
                _echo_plan(p)
                click.echo("Dry run: nothing was written.")
                raise _DryRun
            planning.apply_plan(p)
            _echo_plan(p)
    except _DryRun:
        return
    except AllocationError as exc:
        fail(f"Allocation refused: {exc}")


class _DryRun(Exception):
    """Leaves the transaction by rolling back: a dry run cannot write even by accident."""


@click.group("allocation")
def allocation() -> None:
    """Changes to the allocation mid-study, calibration and its gate."""


def _run(action, dry_run: bool = False) -> None:
    try:
        with transaction():
            result = action()
            if isinstance(result, planning.AllocationPlan):
                click.echo("Before:")
                click.echo(result.before.to_text())
                click.echo("")
                click.echo("After:")
                click.echo(result.to_text())
            elif result is not None:
                click.echo(result)
            if dry_run:
                click.echo("Dry run: nothing was written.")
                raise _DryRun
    except _DryRun:
        return
    except AllocationError as exc:
        fail(f"Refused: {exc}")


@allocation.command("add-rater")
@click.argument("username")
@click.option("--dry-run", is_flag=True)
@with_appcontext
def add_rater(username: str, dry_run: bool) -> None:
    """Take USERNAME into allocation: a fair share of the unstarted work."""
    _run(lambda: changes.rater_joins(username, dry_run=dry_run), dry_run)


@allocation.command("remove-rater")
@click.argument("username")
@click.option("--deactivate", is_flag=True, help="Also deactivate the account.")
@click.option("--dry-run", is_flag=True)
@with_appcontext
def remove_rater(username: str, deactivate: bool, dry_run: bool) -> None:
    """Take USERNAME out of allocation; their unstarted work goes to the others."""
    _run(lambda: changes.rater_leaves(username, deactivate=deactivate, dry_run=dry_run), dry_run)


@allocation.command("move")
@click.argument("assignment_id", type=int)
@click.argument("username")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@with_appcontext
def move(assignment_id: int, username: str, reason: str) -> None:
    """Give one unstarted assignment to rater USERNAME (audited)."""

    def action() -> str:
        r = changes.move_assignment(assignment_id, username, reason)
        return "\n".join(
            ["Before:", r.before.to_text(), "", "After:", r.after.to_text(), "", "Moved."]
        )

    _run(action)


@allocation.command("gate")
@click.option("--enable/--disable", default=None, help="Hold main work until calibration passes.")
@click.option("--threshold", type=float, default=None, help="Minimum calibration ICC.")
@with_appcontext
def gate(enable: bool | None, threshold: float | None) -> None:
    """Show or set the calibration gate."""

    def action() -> str:
        if enable is not None or threshold is not None:
            status = calib.gate_status()
            held = calib.set_gate(
                status.enabled if enable is None else enable,
                status.threshold if threshold is None else threshold,
            )
            if held:
                click.echo(f"{held} main assignment(s) held back.")
        status = calib.gate_status()
        lines = status.lines()
        if status.held and status.passes:
            lines.append(
                "Saving the gate does not release held work: run `rater allocation release`"
                " (all of it, or --per-rater N for a batch)."
            )
        return "\n".join(lines)

    _run(action)


@allocation.command("release")
@click.option(
    "--per-rater",
    type=click.IntRange(1),
    default=None,
    help="Release N held sessions per rater (default: all held work).",
)
@click.option("--phase", default=None, help="Only sessions of this phase (e.g. I).")
@click.option("--therapist", default=None, help="Only sessions of this therapist.")
@click.option(
    "--order",
    type=click.Choice([o.value for o in QueueOrder]),
    default=QueueOrder.SHUFFLED.value,
    show_default=True,
    help="Queue order: shuffled by the seed (interleaving patients) or in session order.",
)
@click.option("--seed", type=click.IntRange(0), default=None, help="Seed of the shuffled order.")
@with_appcontext
def release(
    per_rater: int | None, phase: str | None, therapist: str | None, order: str, seed: int | None
) -> None:
    """Release held main work (a batch) once the calibration gate is open; later batches
    stay held."""
    _run(
        lambda: batches.release(
            per_rater=per_rater,
            phase=phase,
            therapist=therapist,
            order=QueueOrder(order),
            seed=seed,
        ).summary()
    )


@allocation.command("batches")
@click.option("--on/--off", "enabled", default=None, help="New main work starts held.")
@with_appcontext
def batches_mode(enabled: bool | None) -> None:
    """Show or set whether new main work is held for release in batches."""

    def action() -> str:
        if enabled is not None:
            put_setting(calib.RELEASE_IN_BATCHES, enabled)
        on = bool(get_setting(calib.RELEASE_IN_BATCHES, False))
        rows = batches.batch_progress()
        lines = [f"Release in batches: {'on' if on else 'off'}."]
        lines += [f"  {b.label}: {b.done} of {b.assigned} done" for b in rows]
        return "\n".join(lines)

    _run(action)


def register(app: Flask) -> None:
    """Add this package's commands to the `rater` group."""
    app.cli.add_command(allocate)
    app.cli.add_command(allocation)
