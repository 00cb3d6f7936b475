"""The plan's summary as plain text lines for the terminal, leading with what to expect.

Words as defined in :mod:`uplift.allocate.calllist`: selected = contacted + held out; spend =
contacted only; the budget applies to the selection.
"""

from __future__ import annotations

import textwrap

#: characters per line of the long explanations (the effects per offer)
LINE_WIDTH = 100


def wrapped(text: str, indent: str = "  ") -> list[str]:
    """``text`` as lines of at most LINE_WIDTH characters, continued 4 spaces deeper; an
    estimate and its standard error (``0.37 +- 0.07``) stay on one line."""
    glued = text.replace(" +- ", "\0+-\0")                  # same length, no space
    return [line.replace("\0", " ") for line in textwrap.wrap(
        glued, width=LINE_WIDTH, initial_indent=indent, subsequent_indent=indent + "    ",
        break_on_hyphens=False)]


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
        if outlook.get("warning"):
            lines.append(f"warning: {outlook['warning']}")
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
            lines += wrapped(f"{e['offer']}, {e['outcome']} effect: {e['use']} ({e['why']})")
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
        state = ("binding" if c["binding"] else
                 "at its limit" if c.get("at_limit") else "not binding")
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


def ab_lines(result: dict, metric: str, control: str, correction: str,
             alpha: float = 0.05) -> list[str]:
    """The A/B evaluation as terminal lines: lifts per arm (intervals at ``1 - alpha``),
    sample ratio, whole campaign and money per arm."""
    base = result.get("control_mean", next(iter(result["arms"].values()))["mean_control"])
    level = f"{1 - alpha:.0%} CI"
    within = " (lifts within strata, against each arm's own strata's controls)" \
        if result.get("strata") else ""
    lines = [f"{metric}: control {control} mean {base:.4f} over "
             f"{result.get('control_n', 0):,} customers; correction {correction}{within}",
             f"{'arm':<18}{'n':>9}{'mean':>9}{'lift':>9}{level:>22}{'p':>10}{'p adj':>10}"]
    notes = []
    for a, r in result["arms"].items():
        ci = f"[{r['lift_low']:+.4f}, {r['lift_high']:+.4f}]"
        lines.append(f"{a:<18}{r['n']:>9,}{r['mean']:>9.4f}{r['lift']:>+9.4f}{ci:>22}"
                     f"{r['p_value']:>10.2g}{r['p_adjusted']:>10.2g}")
        if r.get("left_out"):
            notes.append(f"{a}: {r['n'] - r['n_compared']:,} of {r['n']:,} left out of the "
                         f"comparison, in strata with fewer than 2 treated or control "
                         f"customers: {_cells(r['left_out'])}")
        if r.get("note"):
            notes.append(f"{a}: {r['note']}")
    lines += [part for note in notes for part in wrapped("note: " + note, indent="")]
    if "sample_ratio" in result:
        s = result["sample_ratio"]
        lines.append(f"sample ratio: chi-square p = {s['p_value']:.4g} "
                     f"({'MISMATCH' if s['mismatch'] else 'no mismatch'} at p < 0.001)")
    total = result.get("campaign")
    if total is not None:
        money = total.get("money")
        net = (f"; net {money['net_profit']:,.0f} [{money['net_profit_low']:,.0f}, "
               f"{money['net_profit_high']:,.0f}]" if money else "")
        lines.append(f"whole campaign ({total['treated']:,} contacted vs {total['control']:,} "
                     f"held out, within strata): change in {total['metric']} summed over the "
                     f"contacted {total['incremental']:+,.1f} [{total['incremental_low']:+,.1f}"
                     f", {total['incremental_high']:+,.1f}]{net}")
        if total.get("left_out"):
            lines += wrapped(f"note: {total['treated_total'] - total['treated']:,} contacted "
                             "customers are left out of the whole campaign's sum, in strata "
                             f"with fewer than 2 treated or control customers: "
                             f"{_cells(total['left_out'])}", indent="")
    for a, m in result.get("money", {}).items():
        roi = (f"ROI {m['roi']:.2f} [{m['roi_low']:.2f}, {m['roi_high']:.2f}] (bootstrap "
               f"[{m['roi_boot_low']:.2f}, {m['roi_boot_high']:.2f}])" if "roi" in m else "")
        lines.append(f"{a}: incremental value {m['incremental_value']:,.0f} "
                     f"[{m['incremental_value_low']:,.0f}, {m['incremental_value_high']:,.0f}]"
                     f", cost {m['cost']:,.0f}, net {m['net_profit']:,.0f} {roi}"
                     + (f" (the {m['treated']:,} compared customers)" if m.get("left_out")
                        else ""))
    return lines


def _cells(cells: dict[str, dict[str, int]], limit: int = 5) -> str:
    shown = ", ".join(f"{name} ({c['treated']:,} treated, {c['control']:,} control)"
                      for name, c in list(cells.items())[:limit])
    return shown + (f" and {len(cells) - limit} more" if len(cells) > limit else "")


def policy_lines(result: dict) -> list[str]:
    """Offline policy values (DR with interval, SNIPW, effective sample size, truth when
    known) and paired DR differences."""
    lines = [f"{'policy':<48}{'treated':>8}{'DR':>9}{'95% CI':>20}{'SNIPW':>9}{'ESS':>9}"
             f"{'truth':>9}"]
    for spec, r in result["policies"].items():
        ci = f"[{r['dr']['low']:.4f}, {r['dr']['high']:.4f}]"
        true = f"{r['true_value']:.4f}" if "true_value" in r else ""
        lines.append(f"{spec[:47]:<48}{r['treated_share']:>8.1%}{r['dr']['value']:>9.4f}"
                     f"{ci:>20}{r['snipw']['value']:>9.4f}{r['effective_sample_size']:>9,.0f}"
                     f"{true:>9}")
    for name, d in result["differences"].items():
        dr = d["dr"]
        lines.append(f"paired DR difference {name[:70]}: {dr['value']:+.4f} "
                     f"[{dr['low']:+.4f}, {dr['high']:+.4f}]")
    return lines


def effects_metric_lines(metrics: dict) -> list[str]:
    """Qini, AUUC and uplift@30% per offer with their bootstrap intervals."""
    lines = [f"{'arm':<16}{'metric':<14}{'value':>10}{'95% low':>10}{'95% high':>10}"]
    for arm, result in metrics.items():
        for metric, (v, low, high) in result.items():
            lines.append(f"{arm:<16}{metric:<14}{v:>10.4f}{low:>10.4f}{high:>10.4f}")
    return lines


def net_value_lines(report: dict, money_text: str) -> list[str]:
    """The recommended policy's net value against simple policies, and its recommended set."""
    lines = [f"net value vs treating no one ({money_text}; {report['design']})",
             f"{'policy':<32}{'treated':>9}{'per customer':>14}{'95% CI':>24}{'total':>14}"]
    for name, r in report["policies"].items():
        ci = f"[{r['low']:+.4f}, {r['high']:+.4f}]"
        lines.append(f"{name[:31]:<32}{r['treated_share']:>9.1%}"
                     f"{r['net_value_per_customer']:>+14.4f}{ci:>24}{r['total']:>+14,.0f}")
    for arm, r in report["recommended_set"].items():
        if "irr" in r:
            lines.append(f"recommended {arm}: {r['recommended']:,} customers; incremental "
                         f"response rate {r['irr']:+.4f}, net incremental revenue "
                         f"{r['nir']:+,.2f} ({r['rows_offer']:,} offer / "
                         f"{r['rows_control']:,} control rows)")
        else:
            lines.append(f"recommended {arm}: {r['recommended']:,} customers; too few "
                         "randomised rows in the set for IRR/NIR")
    return lines
