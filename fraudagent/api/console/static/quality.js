/* The quality page: GET /v1/quality for the figures, and /v1/quality/chart.svg for each chart (rendered by the
   server, read with the key and inserted as SVG nodes: no inline script or style, so the CSP stays strict). */
"use strict";

(() => {
  const { api, describe, notice, el } = FA;
  const pct = (v) => (v === null || v === undefined ? "n/a" : `${Math.round(v * 100)}%`);
  const num = (v) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(1));
  const GROUPS = { day: "by_day", model: "by_model", prompt_version: "by_prompt_version",
                   policy_version: "by_policy_version", typology: "by_typology" };

  function query(form) {
    const params = new URLSearchParams();
    for (const name of ["since", "until"]) if (form.elements[name].value) params.set(name, form.elements[name].value);
    return params;
  }

  async function chart(figure, by, params) {
    const p = new URLSearchParams(params);
    p.set("figure", figure);
    p.set("by", by);
    const response = await api(`/v1/quality/chart.svg?${p}`, { raw: true, accept: "image/svg+xml" });
    const doc = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
    const svg = doc.documentElement;
    if (svg.nodeName !== "svg" || svg.querySelector("script")) throw new Error("not a chart");
    return document.importNode(svg, true);
  }

  async function show(form) {
    const status = document.getElementById("quality-status");
    status.textContent = "Loading …";
    const params = query(form);
    const by = form.elements.by.value;
    const q = await api(`/v1/quality?${params}`);
    const t = q.total;
    document.getElementById("q-total").replaceChildren(...[
      ["period", `${q.since} – ${q.until || "today"}`], ["reports", t.reports],
      ["agreement with decisions", `${pct(t.agreement_rate)} of ${t.decided} decided`],
      ["reports with a verdict", `${pct(t.verdict_rate)} (${t.judged})`], ["verdicts saying useful", pct(t.useful_rate)],
      ["fallback", pct(t.fallback_rate)], ["seconds per report", num(t.mean_latency_s)],
      ["tokens per report", num(t.mean_tokens)],
      ["reasons given", Object.entries(t.reasons).map(([k, v]) => `${k.replaceAll("_", " ")} ${v}`).join(", ") || "none"],
    ].flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
    document.querySelector("#q-table tbody").replaceChildren(...q[GROUPS[by]].map((r) => el("tr", { "data-key": r.key },
      el("td", {}, r.key), el("td", {}, r.reports), el("td", {}, pct(r.agreement_rate)), el("td", {}, r.decided),
      el("td", {}, pct(r.verdict_rate)), el("td", {}, pct(r.useful_rate)), el("td", {}, pct(r.fallback_rate)),
      el("td", {}, num(r.mean_latency_s)), el("td", {}, num(r.mean_tokens)))));
    await Promise.all([...document.querySelectorAll("#q-charts figure")].map(async (fig) => {
      fig.querySelector(".svg").replaceChildren(await chart(fig.dataset.figure, by, params));
    }));
    status.textContent = q.cut ? "More reports than the limit: the figures cover the oldest ones only." : "";
  }

  FA.ready(async () => {
    const form = document.getElementById("quality-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try { await show(form); } catch (error) { document.getElementById("quality-status").textContent = ""; notice(describe(error)); }
    });
    if (!FA.has("evaluator")) {
      document.getElementById("quality-status").textContent = "";
      notice(`The quality figures are for evaluators and admins; your key (${FA.me().name}) has ${FA.me().roles.join(", ")}.`, "warn");
      return;
    }
    try { await show(form); } catch (error) { document.getElementById("quality-status").textContent = ""; notice(describe(error)); }
  });
})();
