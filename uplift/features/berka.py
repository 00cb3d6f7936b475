"""Map the PKDD'99 Berka bank tables onto the customers / events contract.

One *customer* is one Berka account (``account_id``). Mapping:

* ``customers``: ``open_date`` = account creation date; ``segment`` = the best card of the
  account's owners (``gold_card``, ``classic_card``, ``junior_card``) or ``no_card``;
  ``products_held`` = 1 + card + loan + standing orders (0/1 each); ``aum`` = balance before the
  account's first transaction in the log (0 when it has none); no ``close_date`` (Berka records
  no closures); ``marketing_consent`` true.
* ``events`` from ``trans_partial.asc`` (or ``trans.asc``), amounts in CZK, time 12:00:

  =================================  ============================  ========
  Berka type / operation / k_symbol  event_type                    channel
  =================================  ============================  ========
  PRIJEM / VKLAD (cash credit)       deposit                       branch
  PRIJEM / PREVOD Z UCTU             deposit (incl. pensions)      web
  PRIJEM / (none) / UROK interest    deposit                       web
  VYDAJ|VYBER / VYBER (cash)         withdrawal                    atm
  VYDAJ / VYBER KARTOU               card_spend                    pos
  VYDAJ / PREVOD NA UCET, payments   transfer_out (SIPO, POJISTNE,  web
    (household, insurance, leasing,  LEASING, UVER)
    loan)
  VYDAJ / PREVOD NA UCET, no symbol  transfer_out_competitor       web
  =================================  ============================  ========

  Fees and penalty interest (SLUZBY, SANKC. UROK) are withdrawals.

Features that Berka cannot supply (logins, page views, branch visits, service contacts,
complaints, campaign opens/responses, product buys/redemptions, external data) are filled by
the feature SQL with the documented neutral values: 0 for counts, amounts, shares and trends,
730 for ``days_since_*``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from uplift.errors import InputError

REQUIRED_FILES = ("account.asc", "disp.asc", "card.asc", "loan.asc", "order.asc")
TRANSFER_SYMBOLS = {"SIPO", "POJISTNE", "LEASING", "UVER"}
CARD_RANK = {"gold": 3, "classic": 2, "junior": 1}


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep=";", low_memory=False)
    except Exception as exc:
        raise InputError(f"{path}: cannot be read as a Berka table ({exc})") from exc


def _date(values: pd.Series, path: Path, column: str) -> pd.Series:
    text = values.astype(str).str.slice(0, 6)
    parsed = pd.to_datetime("19" + text, format="%Y%m%d", errors="coerce")
    if parsed.isna().any():
        bad = np.flatnonzero(parsed.isna().to_numpy())[:5] + 1
        raise InputError(f"{path}: column '{column}': unparseable YYMMDD dates in rows "
                         f"{', '.join(map(str, bad))}")
    return parsed


def load_berka(src: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the Berka folder ``src``; return (customers, events) in the tool's contract."""
    if not src.is_dir():
        raise InputError(f"{src}: Berka folder not found")
    missing = [f for f in REQUIRED_FILES if not (src / f).exists()]
    trans_path = src / "trans.asc" if (src / "trans.asc").exists() else src / "trans_partial.asc"
    if not trans_path.exists():
        missing.append("trans.asc or trans_partial.asc")
    if missing:
        raise InputError(f"{src}: missing Berka file(s): {', '.join(missing)}")
    account = _read(src / "account.asc")
    disp = _read(src / "disp.asc")
    card = _read(src / "card.asc")
    loan = _read(src / "loan.asc")
    order = _read(src / "order.asc")
    trans = _read(trans_path)

    card_rank = card.merge(disp[["disp_id", "account_id"]], on="disp_id")
    card_rank["rank"] = card_rank["type"].map(CARD_RANK).fillna(0)
    best = card_rank.groupby("account_id")["rank"].max()
    names = {3: "gold_card", 2: "classic_card", 1: "junior_card"}
    segment = account["account_id"].map(best).map(names).fillna("no_card")

    trans["ts"] = _date(trans["date"], trans_path, "date") + pd.Timedelta(hours=12)
    op = trans["operation"].fillna("").str.strip()
    symbol = trans["k_symbol"].fillna("").str.strip()
    kind = trans["type"].str.strip()
    event_type = np.select(
        [kind.eq("PRIJEM"), op.eq("VYBER KARTOU"), op.eq("PREVOD NA UCET") & symbol.isin(
            TRANSFER_SYMBOLS), op.eq("PREVOD NA UCET")],
        ["deposit", "card_spend", "transfer_out", "transfer_out_competitor"],
        default="withdrawal")
    channel = np.select(
        [op.eq("VKLAD"), op.eq("VYBER KARTOU"), op.eq("VYBER")], ["branch", "pos", "atm"],
        default="web")
    signed = np.where(kind.eq("PRIJEM"), trans["amount"], -trans["amount"])
    trans = trans.assign(event_type=event_type, channel=channel, signed=signed)
    first = trans.sort_values(["ts", "trans_id"]).groupby("account_id").first()
    start_balance = (first["balance"] - first["signed"]).clip(lower=0)

    products = (1 + account["account_id"].isin(card_rank["account_id"]).astype(int)
                + account["account_id"].isin(loan["account_id"]).astype(int)
                + account["account_id"].isin(order["account_id"]).astype(int))
    customers = pd.DataFrame({
        "customer_id": account["account_id"].astype("int64"),
        "segment": segment,
        "open_date": _date(account["date"], src / "account.asc", "date"),
        "aum": account["account_id"].map(start_balance).fillna(0.0).round(2),
        "products_held": products.astype("int64"),
        "marketing_consent": True,
    })
    events = pd.DataFrame({
        "customer_id": trans["account_id"].astype("int64"),
        "ts": trans["ts"].astype("datetime64[us]"),
        "event_type": trans["event_type"],
        "amount": trans["amount"].abs().astype("float64"),
        "channel": trans["channel"],
        "page": pd.Series(None, index=trans.index, dtype="string"),
        "topic": pd.Series(None, index=trans.index, dtype="string"),
    }).sort_values(["customer_id", "ts"], kind="stable").reset_index(drop=True)
    return customers, events
