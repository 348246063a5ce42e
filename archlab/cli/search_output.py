"""What ``archlab search`` and ``archlab pareto`` print: the front, how the latency target was
used, how far predictions were off, and where the study is. Every line of fixed text stays under
100 characters; only paths and names may run longer."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pandas as pd
import typer
from rich.table import Table

from archlab.cli.common import FrontFmt, console
from archlab.study.objectives import OBJECTIVES

__all__ = ["plural", "print_front", "print_target_use", "print_where"]

_BY_NAME = {o.name: o for o in OBJECTIVES.values()}
_SHOWN_APART = ("latency_ms", "params", "macs")  # columns of their own in the front table


def plural(n: int, word: str) -> str:
    """'1 trial', '3 trials'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def print_front(study: Any, fmt: FrontFmt = FrontFmt.table) -> None:
    """The feasible front (as judged by :func:`archlab.study.trials.pareto_frame`) and, for a
    predicted-latency study, the members that measured over the target and the prediction check."""
    from archlab.study.trials import over_target_frame, pareto_frame

    front, over = _trained(study, pareto_frame(study)), _trained(study, over_target_frame(study))
    references = _trained_references(study)
    if fmt is FrontFmt.json:
        records = {
            "pareto": _records(front),
            **({"over_target_when_measured": _records(over)} if not over.empty else {}),
            **({"trained_references": references} if references else {}),
        }
        typer.echo(json.dumps({"study": study.study_name, **records}, indent=2, default=str))
        return
    if fmt is FrontFmt.csv:
        if not over.empty:
            front = pd.concat([front.assign(on_front=True), over.assign(on_front=False)])
        typer.echo(front.to_csv(index=False), nl=False)
        return
    if front.empty:
        console.print("[yellow]No feasible completed trial yet: the Pareto front is empty.[/]")
    else:
        console.print(_front_table(front, f"Feasible Pareto front of {study.study_name!r}"))
    if not over.empty:
        target = _target_ms(study)
        console.print(_front_table(over, f"Over the {_ms(target)} target when measured", ci=True))
    _print_prediction_check(study, len(front))
    for source in dict.fromkeys(r["source"] for r in references.values()):
        shown = ", ".join(
            f"{n} {r['accuracy']:.4f}" for n, r in references.items() if r["source"] == source
        )
        console.print(f"Reference models trained the same way ({source}): {shown}.")
    _print_accuracy_evidence(study)


def _trained(study: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the trained accuracy of its trials if ``archlab train`` trained any of the
    study's trials (else as it is)."""
    from archlab.study.trials import trained_outcomes, with_trained_accuracy

    return with_trained_accuracy(frame, study) if trained_outcomes(study.user_attrs) else frame


def _trained_references(study: Any) -> dict[str, dict[str, Any]]:
    """The study's reference models (its space's ``references`` and the plain CNN) with their
    accuracy trained like its trials, where known (``estimate.evidence.trained_reference``)."""
    from archlab.estimate.evidence import load_evidence, trained_reference
    from archlab.estimate.reference_cnn import REFERENCE_CNN
    from archlab.study.record import load_record
    from archlab.study.storage import StorageError
    from archlab.study.trials import TRAINED_REFERENCES_ATTR, trained_outcomes, trained_recipes

    recipes = trained_recipes(trained_outcomes(study.user_attrs))
    if not recipes:
        return {}
    own = trained_outcomes(study.user_attrs, TRAINED_REFERENCES_ATTR)
    try:
        names = [*load_record(study).space().references, *own]
    except (StorageError, ValueError):
        names = list(own)
    evidence = load_evidence()
    out = {}
    for name in dict.fromkeys([*names, REFERENCE_CNN]):
        found = trained_reference(name, own, recipes, evidence)
        if found is not None:
            out[name] = {"accuracy": found[0], "source": found[1]}
    return out


def _print_accuracy_evidence(study: Any) -> None:
    """Under the front, how far each accuracy estimate among its objectives ranks like training."""
    from archlab.estimate.evidence import evidence_sentence
    from archlab.study.record import load_record
    from archlab.study.storage import StorageError

    try:
        space = load_record(study).space_name
    except StorageError:
        return
    for name in study.metric_names or []:
        if _is_estimate(name):
            console.print(f"[dim]{evidence_sentence(name, space)}[/]")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts: a missing value (NaN) becomes null, since NaN is not JSON."""
    if frame.empty:
        return []
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _target_ms(study: Any) -> float:
    from archlab.study.measured_front import target_ms

    return target_ms(study) or float("nan")


def _ms(value: float) -> str:
    return f"{value:.3g} ms" if value < 1000 else f"{value / 1e3:.3g} s"


def _is_estimate(name: str) -> bool:
    objective = _BY_NAME.get(name)
    return objective is not None and objective.description.startswith("accuracy estimate")


def _estimate_header(name: str) -> str:
    return f"{name} (estimate)" if _is_estimate(name) else name


def _front_table(frame: pd.DataFrame, title: str, ci: bool = False) -> Table:
    """Trial, objectives, params, MACs and latency: under 100 columns with full headers."""
    from archlab.report.tables import fmt_count

    predicted = "latency_ms_predicted" in frame and frame["latency_ms_predicted"].notna().any()
    objectives = [
        c
        for c in frame.columns
        if c.startswith("objective:") and c.removeprefix("objective:") not in _SHOWN_APART
    ]
    table = Table(title=title, title_justify="left")
    table.add_column("trial", justify="right")
    for col in objectives:
        table.add_column(_estimate_header(col.removeprefix("objective:")), justify="right")
    for header in ("params", "MACs"):
        table.add_column(header, justify="right")
    table.add_column("lat ms (meas) ± IQR" if predicted else "latency ms ± IQR", justify="right")
    if predicted:
        table.add_column("lat ms (pred)", justify="right")
    if ci:
        table.add_column("95% CI", justify="right")
    from archlab.study.trials import TEST_ACCURACY, TRAINED_ACCURACY

    trained = TRAINED_ACCURACY in frame and frame[TRAINED_ACCURACY].notna().any()
    if trained:
        table.add_column("trained acc", justify="right")
    tested = TEST_ACCURACY in frame and frame[TEST_ACCURACY].notna().any()
    if tested:
        table.add_column("test acc", justify="right")
    for _, row in frame.iterrows():
        cells = [str(row["number"]), *(f"{row[c]:.4g}" for c in objectives)]
        cells += [fmt_count(row["params"]), fmt_count(row["macs"]), _latency_cell(row)]
        if predicted:
            cells.append(_number(row.get("latency_ms_predicted")))
        if ci:
            cells.append(f"±{100 * row['latency_ci_rel']:.1f}%")
        if trained:
            cells.append(_trained_cell(row))
        if tested:
            cells.append(_trained_cell(row, test=True))
        table.add_row(*cells)
    return table


def _trained_cell(row: pd.Series, test: bool = False) -> str:
    """Mean ± SD over seeds of the validation (or ``test``) accuracy; – if not trained."""
    from archlab.study import trials

    accuracy, spread = (
        (row.get(trials.TEST_ACCURACY), row.get(trials.TEST_ACCURACY_STD))
        if test
        else (row.get(trials.TRAINED_ACCURACY), row.get(trials.TRAINED_ACCURACY_STD))
    )
    if accuracy is None or pd.isna(accuracy):
        return "–"
    return f"{accuracy:.4f}" + ("" if spread is None or pd.isna(spread) else f" ± {spread:.4f}")


def _number(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.2f}"


def _latency_cell(row: pd.Series) -> str:
    median, iqr = row.get("latency_ms"), row.get("latency_iqr_ms")
    if median is None or pd.isna(median):
        return "– (not re-measured)"
    return f"{median:.2f} ± {iqr:.2f}" if iqr is not None and not pd.isna(iqr) else f"{median:.2f}"


def _print_prediction_check(study: Any, front_size: int) -> None:
    from archlab.study.measured_front import FRONT_BEFORE_ATTR, REMEASURED_ATTR
    from archlab.study.trials import prediction_check

    check = prediction_check(study)
    if check is None:
        return
    lines = [
        f"Predicted vs re-measured latency of {plural(int(check['models']), 'model')}: "
        f"median error {_pct(check, 'median')}."
    ]
    if "speed_vs_profile" in check:
        lines.append(
            f"Machine speed vs profiling: ×{check['speed_vs_profile']:.2f} (anchors); on the "
            f"profile's time base: {_pct(check, 'profile_time_median')}."
        )
    if "correction_scale" in check:
        lines.append(
            f"Correction fitted on them: ×{check['correction_scale']:.3f} (95% CI "
            f"{check['correction_low']:.3f}–{check['correction_high']:.3f}); unmeasured trials "
            "are judged on it."
        )
    if "corrected_median_error" in check:
        lines.append(
            "Corrected predictions, each by the others' fit: median error "
            f"{_pct(check, 'corrected_median')}."
        )
    before = study.user_attrs.get(FRONT_BEFORE_ATTR)
    if before is not None:
        lines.append(
            f"Front: {plural(front_size, 'member')} after re-measurement, {before} as the search "
            "judged it (archs)."
        )
        if front_size < before:
            remeasured = (study.user_attrs.get(REMEASURED_ATTR) or {}).values()
            over = sum(not r["feasible_measured"] for r in remeasured)
            lines.append(
                f"  {plural(over, 'member')} measured over the target; the others that left"
            )
            lines.append("  were dominated once measured (near-equal members reorder when timed).")
    for line in lines:
        console.print(line, soft_wrap=True, markup=False)


def _pct(check: dict[str, float], key: str) -> str:
    return f"{100 * check[f'{key}_error']:+.1f}% (|{100 * check[f'{key}_abs_error']:.1f}|%)"


def print_target_use(study: Any) -> None:
    """How many trials were within and over the latency target; when the target split nothing,
    say so and what to do, in one line."""
    from archlab.study.measured_front import is_predicted, target_ms
    from archlab.study.trials import trials_frame

    target = target_ms(study)
    frame = trials_frame(study)
    if target is None or frame.empty or "latency_ms" not in frame:
        return
    latency = frame["latency_ms"]
    if "latency_ms_corrected" in frame:
        latency = latency.fillna(frame["latency_ms_corrected"])
    latency = latency[frame["state"] == "COMPLETE"].dropna().astype(float)
    if latency.empty:
        return
    within, over = int((latency <= target).sum()), int((latency > target).sum())
    basis = " (measured where re-measured, else predicted)" if is_predicted(study) else ""
    if over and within:
        console.print(
            f"Latency target {_ms(target)}: {within} within, {over} over{basis}.", markup=False
        )
    elif within:
        console.print(_none_over(within, target, latency.max(), is_predicted(study)), markup=False)
    else:
        console.print(
            f"No trial within the {_ms(target)} target (fastest {_ms(latency.min())}): raise it "
            "or search a smaller space.",
            markup=False,
        )


def _none_over(n: int, target: float, slowest: float, predicted: bool) -> str:
    head = f"All {plural(n, 'trial')} within {_ms(target)} (slowest {_ms(slowest)})"
    if predicted:
        return f"{head}: the target cut nothing; lower --target-latency."
    return f"{head}: lower it, or use --latency-model SLOWER_DEVICE.json"


def print_where(study_name: str, storage: str | None) -> None:
    """Where the study is and how to see it again, the storage's password masked."""
    from archlab.study.storage import default_storage_url, masked_url, optuna_url

    url = storage or default_storage_url()
    console.print(f"Storage: {masked_url(url)}", soft_wrap=True, markup=False)
    console.print(f"Study:   {study_name}", soft_wrap=True, markup=False)
    if optuna_url(url) != url:
        console.print(
            f"  plain Optuna: optuna.load_study(storage={masked_url(optuna_url(url))!r}, ...)",
            soft_wrap=True,
            markup=False,
        )
    storage_opt = f" --storage {shlex.quote(storage)}" if storage else ""
    if storage and masked_url(storage) != storage:  # the password stays in the environment
        storage_opt = ""
        console.print("With $ARCHLAB_STORAGE set to the storage URL:", markup=False)
    console.print(
        f"Front again: archlab pareto --study {shlex.quote(study_name)}{storage_opt}",
        soft_wrap=True,
        markup=False,
    )
    console.print(
        f"Dashboard:   archlab dashboard{storage_opt}   (then open the URL it prints)",
        soft_wrap=True,
        markup=False,
    )
    console.print(
        "             without an activated venv, from a clone: .venv/bin/archlab dashboard",
        markup=False,
    )
