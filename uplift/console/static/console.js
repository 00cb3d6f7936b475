/* The console's script: every action is a call of the service's JSON API. */
"use strict";
(function () {
  const page = document.body.dataset.page;
  const fmt = (v) => (v === null || v === undefined || Number.isNaN(v)) ? "—" :
    Number(v).toLocaleString("en", {maximumFractionDigits: 0});
  async function call(method, url, body) {
    const init = {method, headers: {"X-Uplift-Console": "1"}, credentials: "same-origin"};
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const response = await fetch(url, init);
    let data = null;
    const type = response.headers.get("content-type") || "";
    data = type.includes("json") ? await response.json() : await response.text();
    return {status: response.status, ok: response.ok, data};
  }
  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach((e) => { e.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
  }
  function showErrors(form, detail, rename) {
    const list = Array.isArray(detail) ? detail : [{loc: "", msg: String(detail)}];
    for (const err of list) {
      let loc = Array.isArray(err.loc) ? err.loc.filter((p) => p !== "body").join(".") : (err.loc || "");
      if (rename) loc = rename(loc);
      let slot = form.querySelector(`[data-error-for="${CSS.escape(loc)}"]`);
      if (!slot) slot = form.querySelector('[data-error-for=""]') || form.querySelector("[data-error-for]");
      if (!slot) continue;
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + (slot.dataset.errorFor === loc ? "" : (loc ? loc + ": " : "")) + err.msg;
      const input = form.querySelector(`[name="${CSS.escape(loc)}"]`);
      if (input) { input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", input.id + "-err"); slot.id = input.id + "-err"; }
    }
  }
  const signOut = document.getElementById("sign-out");
  if (signOut) signOut.addEventListener("click", async () => { await call("DELETE", "/v1/session"); location.href = "/login"; });

  if (page === "login") {
    const form = document.getElementById("login-form");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault(); clearErrors(form);
      const r = await call("POST", "/v1/session", {token: form.token.value});
      if (r.ok) { location.href = location.pathname === "/login" ? "/" : location.pathname + location.search; }
      else showErrors(form, r.data.detail);
    });
  }

  if (page === "campaign") {
    const form = document.getElementById("campaign-form");
    let capacityOffers = [];
    let offerIndex = [];                    // the spec's offer i is the form's row offerIndex[i]
    function collect() {
      const spec = {}; const caps = {}; const roi = {}; const drop = new Set();
      for (const el of form.querySelectorAll("input[name], select[name]")) {
        const name = el.name; let value;
        const type = el.dataset.type;
        if (type === "bool") value = el.checked;
        else if (el.value.trim() === "") continue;
        else if (type === "number") value = Number(el.value);
        else if (type === "int") value = Number(el.value);
        else if (type === "list") value = el.value.split(",").map((s) => s.trim()).filter(Boolean);
        else value = el.value;
        const parts = name.split(".");
        if (parts[0] === "drop") { if (value) drop.add(Number(parts[1])); continue; }
        if (parts[0] === "cap") { (caps[parts[1]] = caps[parts[1]] || {})[parts[2]] = value; continue; }
        if (parts[0] === "roi") { roi[parts[1]] = value; continue; }
        let node = spec;
        for (let i = 0; i < parts.length - 1; i++) {
          const key = parts[i]; const nextIsIndex = /^\d+$/.test(parts[i + 1]);
          if (node[key] === undefined) node[key] = nextIsIndex ? [] : {};
          node = node[key];
        }
        node[parts[parts.length - 1]] = value;
      }
      offerIndex = [];
      (spec.offers || []).forEach((o, i) => { if (o && !drop.has(i)) offerIndex.push(i); });
      if (spec.offers) spec.offers = offerIndex.map((i) => spec.offers[i]);
      const kept = (el) => offerIndex.includes(Number(el.dataset.offerIndex));
      if (spec.segment_quotas) spec.segment_quotas = spec.segment_quotas.filter((q) => q && q.segment !== undefined);
      if (spec.segment_quotas && !spec.segment_quotas.length) delete spec.segment_quotas;
      const capField = (key) => form.querySelector(`[name="cap.${key}.max_count"]`);
      // the saved order of the capacity rules is kept (a diff then shows only real changes)
      const order = JSON.parse(form.dataset.capOrder || "[]");
      const rank = (key) => { const i = order.indexOf(key); return i < 0 ? order.length : i; };
      capacityOffers = Object.keys(caps).filter((key) => kept(capField(key)))
        .sort((a, b) => rank(a) - rank(b));
      const rows = form.querySelectorAll("[name$='.name'][name^='offers.']");
      const names = Array.from(rows).map((r) => r.value);
      spec.capacities = capacityOffers.map((key) => ({offer: names[Number(capField(key).dataset.offerIndex)] || key, ...caps[key]}));
      if (!spec.capacities.length) delete spec.capacities;
      const roiOut = {};
      for (const key of Object.keys(roi)) {
        const field = form.querySelector(`[name="roi.${key}"]`);
        if (kept(field)) roiOut[names[Number(field.dataset.offerIndex)] || key] = roi[key];
      }
      if (Object.keys(roiOut).length) spec.min_roi = roiOut;
      return spec;
    }
    function rename(loc) {
      const o = loc.match(/^offers\.(\d+)(.*)$/);
      if (o && offerIndex[Number(o[1])] !== undefined) return `offers.${offerIndex[Number(o[1])]}${o[2]}`;
      const m = loc.match(/^capacities\.(\d+)\.(.*)$/);
      if (m && capacityOffers[Number(m[1])]) return `cap.${capacityOffers[Number(m[1])]}.${m[2]}`;
      const r = loc.match(/^min_roi\.(.*)$/);
      if (r) return `roi.${r[1]}`;
      return loc;
    }
    const status = document.getElementById("validity");
    let timer = null;
    async function validate() {
      clearErrors(form);
      const r = await call("POST", "/v1/campaigns/validate", collect());
      if (r.status === 403) { status.textContent = ""; return; }
      if (r.ok) status.textContent = "Valid campaign. " + (r.data.notes || []).join("; ");
      else { status.textContent = "Not valid: see the fields marked."; showErrors(form, r.data.detail, rename); }
    }
    if (document.getElementById("save-campaign")) {
      form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(validate, 250); });
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault(); clearErrors(form);
      const r = await call("POST", "/v1/campaigns", collect());
      if (r.status === 201) { status.textContent = `Saved as version ${r.data.version}.`; location.href = `/campaign?version=${r.data.version}`; }
      else { status.textContent = "Not saved: see the fields marked."; showErrors(form, r.data.detail, rename); }
    });
  }

  if (page === "tiers") {
    const form = document.getElementById("tiers-form");
    const status = document.getElementById("tiers-status");
    const values = () => Object.fromEntries(Array.from(form.querySelectorAll("input[type=range]")).map((e) => [e.name, Number(e.value)]));
    async function refresh() {
      clearErrors(form);
      form.querySelectorAll("input[type=range]").forEach((e) => { document.getElementById(e.id + "-value").textContent = Number(e.value).toFixed(2); });
      const q = new URLSearchParams(values());
      const r = await call("GET", "/v1/tiers?" + q);
      if (!r.ok) { showErrors(form, r.data.detail); return; }
      const body = document.querySelector("#tier-table tbody");
      body.innerHTML = "";
      for (const t of r.data.tiers) {
        const tr = document.createElement("tr");
        tr.innerHTML = `<td><span class="tier tier-${t.tier}"></span></td><td class="num"></td><td class="num"></td><td class="num"></td>`;
        tr.children[0].firstChild.textContent = t.tier;
        tr.children[1].textContent = t.customers;
        tr.children[2].textContent = t.held_out_customers === null ? "—" : t.held_out_customers;
        tr.children[3].textContent = t.held_out_churn === null ? "—" : (100 * t.held_out_churn).toFixed(1) + "%";
        body.appendChild(tr);
      }
    }
    form.addEventListener("input", refresh);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault(); clearErrors(form);
      const r = await call("POST", "/v1/tiers", {thresholds: values()});
      if (r.status === 201) { status.textContent = `Saved as version ${r.data.version}.`; setTimeout(() => location.reload(), 400); }
      else showErrors(form, r.data.detail);
    });
  }

  if (page === "whatif") {
    const box = document.getElementById("whatif");
    if (!box) return;
    const slider = document.getElementById("budget-slider");
    let data = null;
    const set = (id, text) => { document.getElementById(id).textContent = text; };
    function draw() {
      const svg = document.getElementById("curve");
      const pts = data.points; const maxB = pts[pts.length - 1].budget || 1;
      const maxG = Math.max(1, ...pts.map((p) => p.gain));
      const x = (b) => 40 + 550 * b / maxB; const y = (g) => 185 - 170 * g / maxG;
      const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p.budget).toFixed(1)},${y(p.gain).toFixed(1)}`).join("");
      let dots = "";
      for (const s of data.solved || []) if (s.expected_gain !== null && s.budget !== null)
        dots += `<circle class="dot" cx="${x(Math.min(s.budget, maxB)).toFixed(1)}" cy="${y(s.expected_gain).toFixed(1)}" r="3"><title>solved plan point</title></circle>`;
      svg.innerHTML = `<path class="line" d="${d}"/>${dots}<line id="cursor" class="mark" x1="0" x2="0" y1="10" y2="190"/>` +
        `<text x="40" y="198">0</text><text x="540" y="198">${fmt(maxB)}</text><text x="2" y="20">${fmt(maxG)}</text>`;
    }
    function show() {
      const p = data.points[Number(slider.value)];
      const cur = data.currency;
      const label = `${fmt(p.budget)} ${cur}`;
      set("budget-value", label); slider.setAttribute("aria-valuetext", label);
      set("gain", `${fmt(p.gain)} ${cur}`); set("spend", `${fmt(p.spend)} ${cur}`);
      set("selected", fmt(p.selected)); set("marginal", p.marginal_roi.toFixed(2));
      const mix = document.querySelector("#mix tbody"); mix.innerHTML = "";
      for (const o of data.offers) { const tr = mix.insertRow(); tr.insertCell().textContent = o; const c = tr.insertCell(); c.className = "num"; c.textContent = fmt(p.mix[o]); }
      const bind = document.querySelector("#binding tbody"); bind.innerHTML = "";
      if (!p.binding.length) { const tr = bind.insertRow(); tr.insertCell().textContent = p.binding_note; tr.insertCell(); }
      for (const b of p.binding) { const tr = bind.insertRow(); tr.insertCell().textContent = b.rule; tr.insertCell().textContent = `${b.shadow_price.toFixed(2)} (${b.unit})`; }
      const cursor = document.getElementById("cursor");
      if (cursor) { const xx = 40 + 550 * Number(slider.value) / (data.points.length - 1); cursor.setAttribute("x1", xx); cursor.setAttribute("x2", xx); }
      box.dataset.shown = slider.value;
    }
    (async () => {
      const r = await call("GET", `/v1/plans/${box.dataset.plan}/curve`);
      if (!r.ok) { set("method", typeof r.data === "string" ? r.data : JSON.stringify(r.data.detail)); return; }
      data = r.data;
      slider.max = String(data.points.length - 1);
      const planAt = data.points.findIndex((p) => p.budget >= data.plan_budget);
      slider.value = String(planAt >= 0 ? planAt : Math.floor(data.points.length / 2));
      set("method", `Precomputed for ${fmt(data.candidates)} scored customers: ${data.method}. Dots: the plan report's curve points.`);
      const ex = document.querySelector("#excluded tbody");
      for (const [rule, n] of Object.entries(data.excluded)) { const tr = ex.insertRow(); tr.insertCell().textContent = rule; const c = tr.insertCell(); c.className = "num"; c.textContent = fmt(n); }
      draw(); show();
      slider.addEventListener("input", show);
      box.dataset.ready = "1";
    })();
    const sform = document.getElementById("scenario-form");
    if (sform) sform.addEventListener("submit", async (ev) => {
      ev.preventDefault(); clearErrors(sform);
      const p = data.points[Number(slider.value)];
      const r = await call("POST", "/v1/scenarios", {name: sform.name.value, plan_id: Number(box.dataset.plan), budget: Math.max(p.budget, 0.01)});
      if (r.status === 201) location.reload(); else showErrors(sform, r.data.detail);
    });
  }

  if (page === "plans") {
    const form = document.getElementById("propose-form");
    if (form) form.addEventListener("submit", async (ev) => {
      ev.preventDefault(); clearErrors(form);
      const budget = form.budget.value.trim() === "" ? null : Number(form.budget.value);
      const r = await call("POST", "/v1/plans", {budget, campaign_version: Number(form.campaign_version.value)});
      if (r.status === 202) location.href = `/plans/${r.data.id}`;
      else showErrors(form, r.data.detail);
    });
  }

  if (page === "plan") {
    const form = document.getElementById("review-form");
    if (form) form.addEventListener("submit", async (ev) => {
      ev.preventDefault(); clearErrors(form);
      const action = ev.submitter && ev.submitter.value === "reject" ? "reject" : "approve";
      const r = await call("POST", `/v1/plans/${form.dataset.plan}/${action}`, {comment: form.comment.value});
      if (r.ok) location.reload();
      else showErrors(form, typeof r.data === "string" ? r.data : r.data.detail);
    });
  }

  if (page === "results") {
    const form = document.getElementById("results-form");
    if (form) form.addEventListener("submit", async (ev) => {
      ev.preventDefault(); clearErrors(form);
      const file = form.file.files[0];
      if (!file) { showErrors(form, [{loc: "csv", msg: "choose an outcomes file"}]); return; }
      const body = {csv: await file.text()};
      for (const k of ["arm", "control", "metric", "cost", "value", "segment", "strata", "propensity"]) if (form[k].value.trim()) body[k] = form[k].value.trim();
      body.retention = form.retention.checked;
      const r = await call("POST", "/v1/results", body);
      if (!r.ok) { showErrors(form, r.data.detail); return; }
      document.getElementById("results-out").hidden = false;
      document.getElementById("results-report").srcdoc = r.data.report_html;
    });
  }
})();
