"""The plan's summary as plain text lines for the terminal, leading with what to expect.

Words as defined in :mod:`uplift.allocate.calllist`: selected = contacted + held out; spend =
contacted only; the budget applies to the selection.
"""

from __future__ import annotations


def _n(value: float) -> str:
    return f"{value:,.0f}"


def expectation_lines(summary: dict, outlook: dict) -> list[str]:
    """What the bank should expect: the forecast net gain (backtest-adjusted when a backtest
    exists) and its interval, customers expected to be kept, and the split of the gain."""
    cur = summary["currency"]
    lines = []
    if "forecast" in outlook:
        lines.append(
            f"what to expect: net gain {_n(outlook['forecast'])} {cur} "
            f"(95% interval {_n(outlook['forecast_low'])} .. {_n(outlook['forecast_high'])}; "
            f"the model's {_n(outlook['expected_gain'])} x {outlook['realisation']:.2f}, the "
            "share a plan made this way realised on the past campaign)")
    else:
        lines.append(f"what to expect: net gain {_n(outlook['expected_gain'])} {cur} (model "
                     "estimate; no backtest available, and such estimates tend to run high)")
    if "customers_kept" in outlook:
        if "forecast_kept" in outlook:
            lines.append(f"  customers kept who would otherwise leave within 30 days: about "
                         f"{_n(outlook['forecast_kept'])} ({_n(outlook['forecast_kept_low'])} .. "
                         f"{_n(outlook['forecast_kept_high'])}) of "
                         f"{outlook['contacted']:,} contacted")
        else:
            lines.append(f"  customers kept who would otherwise leave within 30 days: about "
                         f"{_n(outlook['customers_kept'])} ({_n(outlook['customers_kept_low'])}"
                         f" .. {_n(outlook['customers_kept_high'])}) of "
                         f"{outlook['contacted']:,} contacted")
        lines.append(f"  model's expected net gain {_n(outlook['expected_gain'])} {cur} = "
                     f"retained value {_n(outlook['retained_value'])} + new-business margin "
                     f"{_n(outlook['new_business_margin'])} - cost {_n(outlook['cost'])}")
    return lines


def plan_lines(summary: dict, excluded: dict[str, int], outlook: dict | None = None,
               files: dict[str, str] | None = None) -> list[str]:
    """The whole console summary of a plan (or an allocation when ``outlook`` is None)."""
    cur = summary["currency"]
    lines = [f"campaign {summary['campaign']}: budget {_n(summary['budget'])} {cur}, "
             f"{summary['customers_scored']:,} customers scored"]
    if outlook is not None:
        lines += expectation_lines(summary, outlook)
    files = files or {}
    contact_file = f" (call list {files['contacts']})" if "contacts" in files else ""
    holdout_file = f" ({files['holdout']})" if "holdout" in files else ""
    lines.append(f"contacted {summary['treated']:,}{contact_file}; held out "
                 f"{summary['held_out']:,}{holdout_file}, not to be contacted; spend "
                 f"{_n(summary['spend'])} {cur} (contacted only)")
    lines.append(f"{'offer':<16}{'contacted':>10}{'spend':>14}{'expected net gain':>20}")
    for offer, v in summary["per_offer"].items():
        lines.append(f"{offer:<16}{v['treated']:>10,}{_n(v['spend']):>14}"
                     f"{_n(v['expected_gain']):>20}")
    if summary.get("offer_effects"):
        lines.append("effects per offer (held-out calibration test, slope +- SE):")
        for e in summary["offer_effects"]:
            lines.append(f"  {e['offer']}, {e['outcome']} effect: {e['use']} ({e['why']})")
    roi = f"{summary['roi']:.2f}" if summary["roi"] is not None else "n/a"
    lines.append(f"ROI (net gain / spend) {roi}; the selection (contacted + held out) uses "
                 f"{_n(summary['budget_used'])} {cur} of the budget")
    lines.append(f"optimality: selection worth {_n(summary['plan_value_before_holdout'])} vs "
                 f"proven bound {_n(summary['bound'])}: gap {summary['gap']:.4%} "
                 f"({summary['solver']}, {summary['solver_seconds']:.2f} s)")
    if summary.get("solver_note"):
        lines.append(f"  {summary['solver_note']}")
    for c in summary["constraints"]:
        price = ("" if c["shadow_price"] is None
                 else f"; loosening it by one unit is worth {c['shadow_price']:,.4g} {cur}")
        state = "binding" if c["binding"] else "not binding"
        lines.append(f"  rule {c['constraint']}: used {_n(c['used'])} ({state}{price})")
    for rule in summary.get("curve_rules", []):
        lines.append(f"  budget curve: {rule} at smaller budgets")
    for note in summary.get("notes", []):
        lines.append(f"note: {note}")
    left = summary.get("left_out")
    if left:
        lines.append("left out (final reason per customer):")
        for reason, count in left.items():
            lines.append(f"  {reason}: {count:,}")
    elif excluded:
        for reason, count in excluded.items():
            if count:
                lines.append(f"  excluded: {reason}: {count:,}")
    return lines
