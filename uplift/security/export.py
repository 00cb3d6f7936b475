"""The call list for the campaign system, with raw customer ids: the one audited step that
turns a pseudonymised plan back into ids.

A plan with raw ids is listed as it is. A pseudonymised plan needs the pseudonym key and the
customers table; every pseudonym must map back to a customer. The release is written to the
audit log (and synced) *before* any raw id is written, and nothing is released if it cannot
be logged; the list is readable by its owner only (0600).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from uplift import io
from uplift.errors import InputError

PLAN_COLUMNS = ("customer_id", "holdout", "offer", "expected_gain")


def export_call_list(plan: Path, out: Path, *, customers: Callable[[], Path],
                     include_holdout: bool = False,
                     customers_named: bool = False) -> tuple[int, bool]:
    """Write the call list of ``plan`` to ``out`` (contacted customers ranked by expected net
    gain; with ``include_holdout`` every plan row). ``customers`` gives the customers table,
    needed for a pseudonymised plan; a plan with raw ids is checked against it when the user
    named it (``customers_named``: every planned customer must be there). Ids are written in
    canonical form; the holdout column is read as a yes/no flag. Returns (rows written,
    whether ids were re-identified)."""
    from uplift.allocate.calllist import call_list, check_holdout
    from uplift.ids import canonical_ids, check_join, parse_ids
    from uplift.schema import CUSTOMERS, parse_flags, validate
    from uplift.security import audit
    from uplift.security.keys import pseudonym_key
    from uplift.security.pseudonym import is_pseudonym, pseudonymise

    table = io.read_table(plan, derived=True)
    if missing := [c for c in PLAN_COLUMNS if c not in table.columns]:
        raise InputError(f"{plan}: not a plan written by `uplift plan` or `allocate` (missing "
                         f"column(s) {', '.join(missing)})")
    held = parse_flags(table["holdout"], "holdout", str(plan))
    check_holdout(table, held, str(plan))
    table = table.assign(holdout=held.astype(int))
    pseudo = is_pseudonym(table["customer_id"])
    if not pseudo.any():
        table = table.assign(customer_id=parse_ids(table["customer_id"], source=str(plan))
                             .to_numpy(dtype=object))
        source = customers() if customers_named else None
        io.ensure_not_input([out], [plan, source])
        if source is not None:
            known = validate(io.read_table(source), CUSTOMERS, source=str(source))
            check_join(table["customer_id"], known["customer_id"], what="planned customers",
                       source=str(plan), reference=str(source), min_share=1.0)
        chosen = table if include_holdout else call_list(table)
        io.write_table(chosen.reset_index(drop=True), out, protect=False, mode=0o600)
        _record(plan, out, source, len(chosen), include_holdout)
        return len(chosen), False
    if not pseudo.all():
        row = int((~pseudo).to_numpy().argmax()) + 1
        raise InputError(f"{plan}: column 'customer_id' mixes raw ids and pseudonyms (first "
                         f"raw id: data row {row})")
    key = pseudonym_key()
    if key is None:
        raise InputError("export needs the pseudonym key (UPLIFT_PSEUDONYM_KEY_FILE) to turn "
                         "pseudonyms back into customer ids")
    source = customers()
    io.ensure_not_input([out], [plan, source])
    raw = validate(io.read_table(source), CUSTOMERS, source=str(source))["customer_id"]
    lookup = dict(zip(pseudonymise(raw, key), canonical_ids(raw), strict=True))
    ids = table["customer_id"].map(lookup)
    if ids.isna().any():
        row = int(ids.isna().to_numpy().argmax()) + 1
        raise InputError(f"{plan}: {int(ids.isna().sum())} pseudonym(s) match no customer in "
                         f"{source} with the configured key (first: data row {row}); wrong "
                         "key or customers table (ids padded differently?)")
    # ranked after re-identification, so ties order exactly as in an unprotected plan
    raw_plan = table.assign(customer_id=ids.to_numpy())
    listed = (raw_plan if include_holdout else call_list(raw_plan)).reset_index(drop=True)
    try:
        audit.append("export (release)", [f"--plan={plan}", f"--out={out}"], audit.Recorder(
            inputs={str(plan.resolve()): len(table)}, outputs={str(out.resolve()): len(listed)}),
            exit_code=0, message=f"releasing {len(listed):,} raw customer ids", seconds=0.0)
    except (OSError, audit.AuditError) as exc:
        raise InputError(f"cannot record the export in the audit log ({exc}); nothing was "
                         "released") from exc
    io.write_table(listed, out, protect=False, mode=0o600)
    _record(plan, out, source, len(listed), include_holdout)
    return len(listed), True


def _record(plan: Path, out: Path, customers: Path | None, rows: int,
            include_holdout: bool) -> None:
    """The list's manifest (counts and input fingerprints; no id)."""
    io.record_run(out, "export", {"plan": plan, "out": out, "customers": customers,
                                  "include_holdout": include_holdout},
                  seed=None, inputs=[plan, customers], outputs={out.name: rows})
