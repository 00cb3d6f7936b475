"""HTML reports for A/B evaluations and policy simulations (self-contained, inline SVG)."""

from __future__ import annotations

import html

import pandas as pd

from uplift.report import figure, kpis, page, svg, table


def _lift_chart(rows: pd.DataFrame, label: str) -> str:
    fig, ax = figure(6.0, 0.6 + 0.5 * len(rows))
    y = range(len(rows))
    ax.errorbar(rows["value"], list(y), xerr=[rows["value"] - rows["low"],
                                              rows["high"] - rows["value"]],
                fmt="o", color="#1f6feb", capsize=4)
    ax.axvline(0, color="#9aa5b1", linestyle="--")
    ax.set_yticks(list(y), rows["name"].tolist())
    ax.set_xlabel(label)
    return svg(fig)


def ab_html(result: dict, title: str) -> str:
    arms = pd.DataFrame([{"arm": a, **{k: v for k, v in r.items()
                                       if not isinstance(v, dict) and k != "note"}}
                         for a, r in result["arms"].items()])
    body = (f"<p>Metric <b>{html.escape(result['metric'])}</b> "
            f"({'rate' if result['binary'] else 'mean'}), each arm against "
            f"<b>{html.escape(result['control'])}</b>; {int((1 - result['alpha']) * 100)}% "
            f"intervals; p-values corrected across arms with <b>{result['correction']}</b>. "
            + (f"Control mean {result['control_mean']:.4f} over {result['control_n']:,} "
               "customers" if "control_mean" in result else "")
            + ("; lifts within strata, against each arm's own strata's controls"
               if result.get("strata") else "") + ".</p>")
    for a, r in result["arms"].items():
        if r.get("left_out"):
            cells = ", ".join(f"{html.escape(k)} ({v['treated']:,} treated, {v['control']:,} "
                              "control)" for k, v in r["left_out"].items())
            body += (f"<p class=\"note\">{html.escape(a)}: {r['n'] - r['n_compared']:,} of "
                     f"{r['n']:,} left out of the comparison and of its money, in strata with "
                     f"fewer than 2 treated or control customers: {cells}.</p>")
        if r.get("note"):
            body += f"<p class=\"note\">{html.escape(a)}: {html.escape(r['note'])}.</p>"
    chart = pd.DataFrame({"name": arms["arm"], "value": arms["lift"], "low": arms["lift_low"],
                          "high": arms["lift_high"]})
    body += "<h2>Lift against control</h2>" + _lift_chart(chart, "absolute lift") + table(arms)
    cup = {a: r["cuped"] for a, r in result["arms"].items() if "cuped" in r}
    if cup:
        body += "<h2>CUPED (pre-period adjustment)</h2>" + table(
            pd.DataFrame([{"arm": a, **c} for a, c in cup.items()]))
    if "sample_ratio" in result:
        s = result["sample_ratio"]
        body += "<h2>Sample-ratio check</h2>" + kpis({
            "chi-square p-value": f"{s['p_value']:.4g}",
            "mismatch (p < 0.001)": "YES - investigate the split" if s["mismatch"] else "no"})
    if "money" in result:
        rows = []
        for a, m in result["money"].items():
            rows.append({"arm": a, **{k: v for k, v in m.items()
                                      if k not in ("by_segment", "left_out")}})
            for seg, sm in m.get("by_segment", {}).items():
                rows.append({"arm": f"{a} / {seg}",
                             **{k: v for k, v in sm.items() if k != "left_out"}})
        body += "<h2>Money</h2>" + table(pd.DataFrame(rows))
    return page(title, body)


def policy_html(result: dict, title: str) -> str:
    rows = []
    for name, r in result["policies"].items():
        for est in ("dm", "ipw", "snipw", "dr"):
            if est in r:
                rows.append({"policy": name, "estimator": est, **r[est]})
        if "true_value" in r:
            rows.append({"policy": name, "estimator": "truth", "value": r["true_value"]})
    frame = pd.DataFrame(rows)
    body = (f"<p>Outcome <b>{html.escape(result['outcome'])}</b> (mean per customer, "
            f"{html.escape(result['goal'])} is better), {result['rows']:,} logged rows.</p>")
    dr = frame[frame["estimator"] == "dr"] if "dr" in set(frame["estimator"]) else \
        frame[frame["estimator"] == "snipw"]
    body += "<h2>Estimated value per policy</h2>" + _lift_chart(
        dr.rename(columns={"policy": "name"}), "estimated mean outcome") + table(frame)
    overlap = pd.DataFrame([{"policy": n, "match share": r["match_share"],
                             "effective sample size": r["effective_sample_size"],
                             "max weight": r["max_weight"]}
                            for n, r in result["policies"].items()])
    body += "<h2>Overlap</h2>" + table(overlap)
    if result.get("differences"):
        diffs = pd.DataFrame([{"comparison": k, "estimator": e, **v}
                              for k, d in result["differences"].items() for e, v in d.items()])
        body += "<h2>Paired differences against the first policy</h2>" + table(diffs)
    return page(title, body)
