/* The case page: profile, timeline (inline SVG), linked accounts, similar past cases, the latest report whose
   citations link to their evidence, the chat (SSE read from fetch's stream) and the decision form. */
"use strict";

(() => {
  const { api, describe, notice, el, untrusted, when } = FA;
  const caseId = document.body.dataset.caseId;
  const CHAT_KEY = `fa.chat.${caseId}`;
  const ID_TOKEN = /\[?((?:txn|score|acct|dev|case|fact):[A-Za-z0-9_.\-]*[A-Za-z0-9_])\]?/g;
  const SPEND = new Set(["purchase", "subscription", "wallet_topup", "gift_card_purchase"]);
  const BACK = new Set(["refund_request", "refund", "chargeback"]);
  const CREDENTIAL = new Set(["password_reset", "email_change", "mfa_change"]);
  let detail = null;
  let items = new Map();

  /* ---------- citations ---------- */

  function showEvidence(id) {
    const target = document.getElementById(`ev-${id}`);
    if (!target) return;
    for (const old of document.querySelectorAll(".evidence-item.highlight")) old.classList.remove("highlight");
    target.classList.add("highlight");
    target.scrollIntoView({ block: "center" });
    target.focus({ preventScroll: true });
  }

  function cite(id) {
    if (!items.has(id)) return el("span", { class: "cite missing", title: "not in this case's evidence" }, id);
    return el("a", {
      href: `#ev-${id}`, class: "cite", "data-cite": id,
      onclick: (event) => { event.preventDefault(); showEvidence(id); },
    }, id);
  }

  /** Text with every evidence id in it turned into a citation link. */
  function withCitations(text) {
    const out = [];
    let last = 0;
    for (const match of text.matchAll(ID_TOKEN)) {
      out.push(text.slice(last, match.index), cite(match[1]));
      last = match.index + match[0].length;
    }
    out.push(text.slice(last));
    return out;
  }

  /* ---------- header, profile, links, similar cases, evidence ---------- */

  function renderMeta() {
    const r = detail.record;
    const c = r.case;
    document.getElementById("case-meta").replaceChildren(
      el("span", { class: `prio prio-${c.priority}` }, c.priority), " ",
      el("span", { class: `status status-${r.status}` }, r.status),
      ` · opened ${when(c.opened_at)} · trigger ${c.trigger.kind}${c.trigger.detail ? ": " + c.trigger.detail : ""}`,
      ` · top score ${r.max_score == null ? "–" : r.max_score.toFixed(2)}`,
      ` · assignee ${r.assignee || "none"}`,
      r.suggested_typology ? ` · suggested ${r.suggested_typology}` : "",
    );
    document.getElementById("assign-box").hidden = !(FA.isAnalyst() && r.status === "open");
  }

  function renderProfile() {
    const c = detail.record.case;
    const acct = items.get(`acct:${c.account_id}`);
    const d = acct ? acct.data : {};
    const rows = [["Account", c.account_id], ["Created", when(d.created_at)], ["Country", d.country],
                  ["Tier", d.tier], ["Email domain", d.email_domain]];
    const dl = document.getElementById("profile");
    dl.replaceChildren(...rows.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    if (acct && acct.untrusted) dl.append(el("dt", {}, "Display name"), el("dd", {}, untrusted(acct.untrusted)));
    if (!acct) dl.append(el("dt", {}, "Profile"), el("dd", {}, "not found in the history store"));
    const note = document.getElementById("case-note");
    note.replaceChildren(...(c.note ? [el("p", {}, el("strong", {}, "Case note: "), untrusted(c.note))] : []));
  }

  function renderLinked() {
    const own = `acct:${detail.record.case.account_id}`;
    const linked = [...items.values()].filter((i) => i.kind === "acct" && i.id !== own);
    const devices = [...items.values()].filter((i) => i.kind === "dev");
    const list = document.getElementById("linked");
    const rows = linked.map((i) => el("li", {},
      cite(i.id), " ",
      el("span", {}, Object.entries(i.data.shared || {}).map(([via, ids]) => `shares ${via} (${ids.length} events)`).join("; ")),
      i.untrusted ? el("div", {}, untrusted(i.untrusted)) : null));
    for (const d of devices) {
      rows.push(el("li", {}, cite(d.id), " ", d.line));
    }
    list.replaceChildren(...(rows.length ? rows : [el("li", { class: "muted" }, "No account shares a device or payment instrument with this one.")]));
  }

  function renderSimilar() {
    const similar = [...items.values()].filter((i) => i.kind === "case");
    const report = detail.latest_report;
    document.getElementById("similar-summary").textContent = report && report.similar_cases_summary ? report.similar_cases_summary : "";
    document.getElementById("similar").replaceChildren(...(similar.length ? similar.map((i) => el("li", {},
      cite(i.id), " ",
      el("span", { class: `outcome outcome-${i.data.disposition}` }, (i.data.disposition || "").replaceAll("_", " ")),
      ` · ${i.data.typology} · similarity ${(i.data.similarity ?? 0).toFixed(2)}`,
      el("div", { class: "muted" }, `actions: ${(i.data.actions || []).join(", ") || "none"}`),
      i.untrusted ? el("div", {}, untrusted(i.untrusted)) : null,
    )) : [el("li", { class: "muted" }, "No similar past case found.")]));
  }

  const KIND_NAMES = { fact: "Computed facts", txn: "Events", score: "Model scores", acct: "Accounts", dev: "Devices", case: "Past cases" };

  function renderEvidence() {
    const groups = new Map(Object.keys(KIND_NAMES).map((k) => [k, []]));
    for (const i of items.values()) (groups.get(i.kind) || groups.set(i.kind, []).get(i.kind)).push(i);
    const box = document.getElementById("evidence");
    box.replaceChildren();
    for (const [kind, list] of groups) {
      if (!list.length) continue;
      box.append(el("h3", {}, KIND_NAMES[kind] || kind), el("ul", { class: "evidence-list" }, list.map((i) =>
        el("li", { id: `ev-${i.id}`, class: "evidence-item", tabindex: "-1", "data-evidence-id": i.id },
          el("code", { class: "ev-id" }, i.id), " ", el("span", {}, i.line),
          i.untrusted ? el("div", {}, untrusted(i.untrusted)) : null))));
    }
    if (detail.evidence_cuts.length) box.append(el("p", { class: "muted" }, `Cut: ${detail.evidence_cuts.join("; ")}`));
    const failed = Object.entries(detail.evidence_sources).filter(([, v]) => v !== "ok");
    if (failed.length) box.append(el("p", { class: "warn" }, `Sources not read: ${failed.map(([k, v]) => `${k} (${v})`).join(", ")}`));
  }

  /* ---------- the timeline ---------- */

  function renderTimeline() {
    // The case account's own events; a linked account's events (cited by the link) stay with that account.
    const owner = detail.record.case.account_id;
    const events = [...items.values()].filter((i) => i.kind === "txn" && i.data.ts && i.data.account_id === owner)
      .map((i) => ({ id: i.id, ...i.data, t: Date.parse(i.data.ts), amt: i.data.amount ? Number(i.data.amount) : null }))
      .sort((a, b) => a.t - b.t);
    const scores = new Map([...items.values()].filter((i) => i.kind === "score").map((i) => [i.data.event_id, i]));
    const box = document.getElementById("timeline");
    if (!events.length) { box.replaceChildren(el("p", { class: "muted" }, "No events in the window.")); return; }
    const W = 720, H = 284, L = 56, R = 44, T = 26, B = 84;
    const base = H - B;
    let t0 = events[0].t, t1 = events[events.length - 1].t;
    if (t1 - t0 < 3600e3) { t0 -= 1800e3; t1 += 1800e3; }
    const pad = (t1 - t0) * 0.03;
    t0 -= pad; t1 += pad;
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const maxAmt = Math.max(1, ...events.map((e) => e.amt || 0));
    const yAmt = (a) => base - (a / maxAmt) * (base - T);
    const yScore = (s) => base - s * (base - T);
    const S = { svg: true };
    const svg = el("svg", { ...S, viewBox: `0 0 ${W} ${H}`, width: "100%", role: "group", class: "timeline-svg",
      "aria-label": `Timeline of ${events.length} events from ${when(events[0].ts)} to ${when(events[events.length - 1].ts)}` });
    // axes and labels
    svg.append(el("line", { ...S, x1: L, x2: W - R, y1: base, y2: base, class: "axis" }),
      el("line", { ...S, x1: L, x2: L, y1: T, y2: base, class: "axis" }),
      el("line", { ...S, x1: W - R, x2: W - R, y1: T, y2: base, class: "axis score-axis" }),
      el("text", { ...S, x: L - 6, y: T + 4, class: "tick end" }, maxAmt.toFixed(0)),
      el("text", { ...S, x: L - 6, y: base, class: "tick end" }, "0"),
      el("text", { ...S, x: L, y: T - 12, class: "tick middle" }, "amount"),
      el("text", { ...S, x: W - R + 4, y: T + 4, class: "tick score-label" }, "1.0"),
      el("text", { ...S, x: W - R + 4, y: base, class: "tick score-label" }, "0"),
      el("text", { ...S, x: W - R, y: T - 12, class: "tick middle score-label" }, "score"));
    for (const f of [0, 0.5, 1]) {
      const t = t0 + pad + f * (t1 - t0 - 2 * pad);
      svg.append(el("text", { ...S, x: x(t), y: H - 6, class: `tick ${f === 0 ? "" : f === 1 ? "end" : "middle"}` },
        new Date(t).toISOString().slice(0, 16).replace("T", " ")));
    }
    const lane = base + 18, devLane = base + 36;
    svg.append(el("text", { ...S, x: 4, y: lane + 4, class: "tick" }, "events"),
      el("text", { ...S, x: 4, y: devLane + 4, class: "tick" }, "device/ip"));
    const seenDevices = new Set();
    let lastCountry = null;
    for (const e of events) {
      const cx = x(e.t);
      const label = `${e.id}: ${e.type}${e.amt != null ? ` ${e.amount} ${e.currency || ""}` : ""} at ${when(e.ts)}` +
        `${e.device_id ? `, device ${e.device_id}` : ""}${e.ip_country ? `, ip country ${e.ip_country}` : ""}`;
      const link = el("a", { ...S, href: `#ev-${e.id}`, class: `ev ev-${e.type}`, "data-cite": e.id, "aria-label": label,
        onclick: (event) => { event.preventDefault(); showEvidence(e.id); } }, el("title", { ...S }, label));
      if (CREDENTIAL.has(e.type)) {
        svg.append(el("line", { ...S, x1: cx, x2: cx, y1: T, y2: lane, class: "credential-line" }));
        link.append(el("polygon", { ...S, points: `${cx},${lane - 6} ${cx + 6},${lane} ${cx},${lane + 6} ${cx - 6},${lane}`, class: "credential" }));
      } else if (e.amt != null) {
        const kind = SPEND.has(e.type) ? "spend" : BACK.has(e.type) ? "back" : "other-money";
        link.append(el("rect", { ...S, x: cx - 3, y: yAmt(e.amt), width: 6, height: Math.max(1, base - yAmt(e.amt)), class: `bar ${kind}${e.status && e.status !== "settled" ? " not-settled" : ""}` }));
        link.append(el("circle", { ...S, cx, cy: lane, r: 3, class: `dot ${kind}` }));
      } else {
        link.append(el("circle", { ...S, cx, cy: lane, r: 4, class: `dot ${e.type === "login" ? "login" : "other"}` }));
      }
      svg.append(link);
      if (e.device_id && !seenDevices.has(e.device_id)) {
        seenDevices.add(e.device_id);
        const first = seenDevices.size > 1;
        svg.append(el("polygon", { ...S, points: `${cx - 5},${devLane + 5} ${cx + 5},${devLane + 5} ${cx},${devLane - 4}`, class: first ? "device new-device" : "device" },
          el("title", { ...S }, `${first ? "new " : ""}device ${e.device_id} first seen`)),
          el("text", { ...S, x: cx + 6, y: devLane + 4, class: "tick device-label" }, e.device_id));
      }
      if (e.ip_country && e.ip_country !== lastCountry) {
        svg.append(el("text", { ...S, x: cx, y: devLane + 18, class: `tick middle country${lastCountry ? " country-change" : ""}` },
          lastCountry ? `→${e.ip_country}` : e.ip_country));
        lastCountry = e.ip_country;
      }
    }
    const points = events.filter((e) => scores.has(e.id.slice(4))).map((e) => [x(e.t), yScore(scores.get(e.id.slice(4)).data.score), e]);
    if (points.length > 1) svg.append(el("polyline", { ...S, points: points.map(([px, py]) => `${px},${py}`).join(" "), class: "score-line" }));
    for (const [px, py, e] of points) {
      const s = scores.get(e.id.slice(4));
      svg.append(el("a", { ...S, href: `#ev-${s.id}`, "aria-label": `${s.id}: score ${s.data.score.toFixed(2)}`, "data-cite": s.id,
        onclick: (event) => { event.preventDefault(); showEvidence(s.id); } },
        el("circle", { ...S, cx: px, cy: py, r: 4, class: "score-dot" }), el("title", { ...S }, `score ${s.data.score.toFixed(2)} (${s.data.model_version})`)));
    }
    box.replaceChildren(svg);
    document.getElementById("timeline-legend").replaceChildren(
      ...[["spend", "payments (bar height: amount)"], ["back", "refunds and chargebacks"], ["credential", "credential change"],
          ["login", "login / other event"], ["new-device", "new device first seen"], ["score", "model score (right axis)"],
          ["country", "IP country (→ change)"]].map(([k, t]) => el("li", {}, el("span", { class: `swatch sw-${k}`, "aria-hidden": "true" }), t)));
  }

  /* ---------- the report ---------- */

  function renderReport() {
    const box = document.getElementById("report");
    const r = detail.latest_report;
    document.getElementById("draft-box").hidden = !(FA.canRead() && detail.record.status === "open");
    if (!r) { box.replaceChildren(el("p", { class: "muted" }, "No report yet.")); return; }
    const pathNames = { llm: "LLM draft", llm_retried: "LLM draft, retried after feedback", fallback: "fallback: built by code", policy: "policy: built by code, no model" };
    const list = (title, values, render = (v) => v) => values && values.length
      ? [el("h3", {}, title), el("ul", {}, values.map((v) => el("li", {}, render(v))))] : [];
    box.replaceChildren(
      el("p", { class: "report-head" },
        el("span", { class: `path path-${r.path}`, title: "how the report was produced" }, pathNames[r.path] || r.path),
        ` ${r.typology} · confidence ${Number(r.confidence).toFixed(2)}${r.abstained ? " · abstained" : ""}`),
      el("p", { class: "versions" }, `model ${r.model} · prompt ${r.prompt_version} · policy ${r.policy_version || "–"}`,
        ` · ${r.report_id} · ${when(r.created_at)}${r.requested_by ? ` · by ${r.requested_by}` : ""}`),
      el("p", { class: "narrative" }, withCitations(r.narrative)),
      el("h3", {}, "Findings"),
      el("ol", { class: "findings" }, r.findings.map((f) => el("li", {},
        withCitations(f.statement), " ",
        el("span", { class: "cites" }, f.evidence_ids.flatMap((id) => [cite(id), " "])),
        f.source !== "model" ? el("span", { class: `source source-${f.source}` }, f.source) : null))),
      el("p", {}, el("strong", {}, "Recommended: "), r.recommended_actions.join(", ").replaceAll("_", " "),
        r.suggested_actions && r.suggested_actions.length ? ` · policy suggests ${r.suggested_actions.join(", ").replaceAll("_", " ")}` : ""),
      ...list("Unknowns", r.unknowns),
      ...list("Claims the verifier removed", r.removed_claims),
      ...list("Problems the checks found", r.problems),
      ...list("Evidence whose customer text looks like instructions", r.injection_flags, (id) => cite(id)),
    );
    setUpVerdict();
  }

  /* ---------- the analyst's verdict on the report ---------- */

  let verdictReport = null;

  function showVerdict(v) {
    const box = document.getElementById("verdict-box");
    for (const button of box.querySelectorAll("button[data-useful]")) {
      button.setAttribute("aria-pressed", String(!!v && String(v.useful) === button.dataset.useful));
    }
    for (const input of box.elements.reasons) input.checked = !!v && v.reasons.includes(input.value);
    box.elements.note.value = v ? v.note || "" : "";
    document.getElementById("verdict-status").textContent = v
      ? `Your verdict: ${v.useful ? "useful" : "not useful"}${v.reasons.length ? ` (${v.reasons.join(", ").replaceAll("_", " ")})` : ""}, ${when(v.at)}. You can change it.`
      : "No verdict from you yet.";
  }

  async function setUpVerdict() {
    const box = document.getElementById("verdict-box");
    const r = detail.latest_report;
    box.hidden = !(r && FA.isAnalyst());
    if (box.hidden || verdictReport === r.report_id) return;
    verdictReport = r.report_id;
    const base = `/v1/cases/${encodeURIComponent(caseId)}/reports/${encodeURIComponent(r.report_id)}/feedback`;
    try {
      const list = await api(base);
      showVerdict(list.items.find((v) => v.analyst === FA.me().name) || null);
    } catch (error) { notice(describe(error)); }
    if (box.dataset.wired) return;
    box.dataset.wired = "1";
    for (const button of box.querySelectorAll("button[data-useful]")) {
      button.addEventListener("click", async () => {
        const data = new FormData(box);
        const path = `/v1/cases/${encodeURIComponent(caseId)}/reports/${encodeURIComponent(verdictReport)}/feedback`;
        button.disabled = true;
        try {
          const v = await api(path, { method: "POST", body: {
            useful: button.dataset.useful === "true", reasons: data.getAll("reasons"), note: data.get("note") || "" } });
          showVerdict(v);
          notice(v.changed ? "Verdict changed." : "Verdict recorded.", "ok");
        } catch (error) { notice(describe(error)); }
        finally { button.disabled = false; }
      });
    }
  }

  /* ---------- chat ---------- */

  function chatMessage(role, text, cited = []) {
    const body = el("div", { class: "chat-text" }, role === "assistant" ? withCitations(text) : text);
    const li = el("li", { class: `chat-msg chat-${role}` }, el("span", { class: "chat-role" }, role === "analyst" ? "You" : "Agent"), body);
    if (cited.length) li.append(el("div", { class: "chat-cites" }, "Cited: ", cited.flatMap((id) => [cite(id), " "])));
    document.getElementById("chat-log").append(li);
    return li;
  }

  async function loadChat() {
    const session = sessionStorage.getItem(CHAT_KEY);
    document.getElementById("chat-log").replaceChildren();
    if (!session) return;
    try {
      const history = await api(`/v1/cases/${encodeURIComponent(caseId)}/chat/${session}`);
      for (const m of history.messages) chatMessage(m.role, m.text, m.cited_ids);
    } catch (error) {
      if (error.status === 404) sessionStorage.removeItem(CHAT_KEY); else notice(describe(error));
    }
  }

  /** Server-sent events from a fetch body: yields [event, data] per blank-line-terminated block. */
  async function* sse(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      const blocks = buffer.split(/\r?\n\r?\n/);
      buffer = done ? "" : blocks.pop();
      for (const block of blocks) {
        let name = "message";
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) yield [name, data.join("\n")];
      }
      if (done) return;
    }
  }

  async function ask(question) {
    const send = document.getElementById("chat-send");
    send.disabled = true;
    chatMessage("analyst", question);
    const li = chatMessage("assistant", "");
    li.setAttribute("aria-busy", "true");
    const text = li.querySelector(".chat-text");
    const session = sessionStorage.getItem(CHAT_KEY);
    try {
      const response = await api(`/v1/cases/${encodeURIComponent(caseId)}/chat`,
        { method: "POST", body: { message: question, ...(session ? { session_id: session } : {}) }, raw: true });
      let streamed = "";
      for await (const [name, data] of sse(response)) {
        const payload = JSON.parse(data);
        if (name === "token") {
          streamed += payload.text;
          text.textContent = streamed;
        } else if (name === "final") {
          sessionStorage.setItem(CHAT_KEY, payload.session_id);
          text.replaceChildren(...withCitations(payload.answer));
          if (payload.cited_ids.length) li.append(el("div", { class: "chat-cites" }, "Cited: ", payload.cited_ids.flatMap((id) => [cite(id), " "])));
          if (payload.model_unavailable) li.append(el("div", { class: "warn" }, "The model was unavailable; this answer was built from the evidence by code."));
          li.classList.add("done");
        }
      }
    } catch (error) {
      text.textContent = describe(error);
      li.classList.add("failed");
    } finally {
      li.removeAttribute("aria-busy");
      send.disabled = false;
    }
  }

  function setUpChat() {
    if (!FA.isAnalyst()) {
      const locked = document.getElementById("chat-locked");
      locked.textContent = `Chat needs the analyst role; your key (${FA.me().name}) has ${FA.me().roles.join(", ")}.`;
      locked.hidden = false;
      return;
    }
    document.getElementById("chat-box").hidden = false;
    document.getElementById("chat-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = document.getElementById("chat-input");
      const question = input.value.trim();
      if (!question) return;
      input.value = "";
      ask(question);
    });
    document.getElementById("chat-input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); document.getElementById("chat-form").requestSubmit(); }
    });
    document.getElementById("chat-new").addEventListener("click", () => { sessionStorage.removeItem(CHAT_KEY); loadChat(); });
    loadChat();
  }

  /* ---------- drafting a report, streamed ---------- */

  /** One line of the drafting log; `title` is text, the rest are nodes or text. */
  function stage(kind, title, ...rest) {
    const li = el("li", { class: `stage stage-${kind}` }, el("span", { class: "stage-title" }, title), ...rest);
    document.getElementById("draft-stages").append(li);
    return li;
  }

  /** POST /report/stream and show its events as they come: the evidence gathered, each model call with its
      narrative as it forms, the checks on each draft; then the final report in the report card. */
  async function draftStreamed() {
    const box = document.getElementById("draft-progress");
    document.getElementById("draft-stages").replaceChildren();
    box.hidden = false;
    const started = performance.now();
    let drafting = null;   // the current attempt's line
    let narrative = null;  // its narrative box
    let updates = 0;
    const done = () => { if (drafting) drafting.removeAttribute("aria-busy"); };
    const response = await api(`/v1/cases/${encodeURIComponent(caseId)}/report/stream`,
      { method: "POST", raw: true, accept: "text/event-stream" });
    for await (const [name, data] of sse(response)) {
      const payload = JSON.parse(data);
      if (name === "evidence") {
        stage("evidence", `Evidence gathered: ${payload.items} items, ${payload.events} events, in ${Number(payload.seconds).toFixed(1)} s.`);
      } else if (name === "drafting") {
        done();
        updates = 0;
        narrative = el("p", { class: "draft-narrative waiting", "aria-live": "off" }, "waiting for the model …");
        drafting = stage("drafting", `Drafting, attempt ${payload.attempt}`, narrative);
        drafting.dataset.attempt = payload.attempt;
        drafting.setAttribute("aria-busy", "true");
      } else if (name === "token" && narrative) {
        updates += 1;
        if (payload.narrative) {
          narrative.classList.remove("waiting");
          narrative.textContent = payload.narrative;
        } else {
          narrative.textContent = `the model is writing the other fields (${updates} updates) …`;
        }
      } else if (name === "checks") {
        done();
        const li = stage("checks", payload.ok ? `Checks passed on attempt ${payload.attempt}.`
          : `Checks failed on attempt ${payload.attempt}${payload.problems.length ? ":" : "."}`);
        li.classList.add(payload.ok ? "passed" : "failed");
        li.dataset.attempt = payload.attempt;
        if (payload.problems.length) li.append(el("ul", { class: "problems" }, payload.problems.map((p) => el("li", {}, p))));
      } else if (name === "report") {
        done();
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        const names = { llm: "the model's draft", llm_retried: "the model's draft after feedback", fallback: "built by code (the drafts were refused or the model was unavailable)", policy: "built by code" };
        stage("report", `Report ready in ${seconds} s: ${names[payload.path] || payload.path}.`);
        detail.latest_report = payload;
        if (payload.typology) detail.record.suggested_typology = payload.typology;
        renderMeta();
        renderReport();
        renderSimilar();
        return payload;
      } else if (name === "error") {
        done();
        const error = new FA.ApiError(payload.status, payload.title, payload.detail);
        stage("error", describe(error));
        throw error;
      }
    }
    done();
    stage("error", "The stream ended before the report arrived; reload the page to see whether it was stored.");
    return null;
  }

  /* ---------- decision, assignment, drafting ---------- */

  function showDecided(decision) {
    document.getElementById("decision-form").hidden = true;
    const done = document.getElementById("decision-done");
    done.replaceChildren(
      el("p", { class: "ok" }, `Closed as ${decision.disposition.replaceAll("_", " ")} (${decision.typology}) by ${decision.analyst} on ${when(decision.decided_at)}.`),
      el("p", {}, `Actions: ${decision.actions.join(", ").replaceAll("_", " ")}`),
      decision.notes ? el("p", {}, "Notes: ", untrusted(decision.notes)) : "",
      el("p", {}, el("a", { href: "/console" }, "Back to the queue")));
    done.hidden = false;
  }

  function setUpDecision() {
    const r = detail.record;
    if (r.status === "closed" && r.decision) { showDecided(r.decision); return; }
    if (!FA.isAnalyst()) {
      const locked = document.getElementById("decision-locked");
      locked.textContent = `Recording a decision needs the analyst role; your key (${FA.me().name}) has ${FA.me().roles.join(", ")}. This page is read-only for you.`;
      locked.hidden = false;
      return;
    }
    const form = document.getElementById("decision-form");
    const typology = (detail.latest_report && detail.latest_report.typology) || r.suggested_typology;
    if (typology) form.elements.typology.value = typology;
    form.hidden = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const actions = data.getAll("actions");
      if (!actions.length) { notice("Tick at least one action taken (close no action is one)."); return; }
      const button = document.getElementById("decide");
      button.disabled = true;
      try {
        const result = await api(`/v1/cases/${encodeURIComponent(caseId)}/decision`, { method: "POST", body: {
          disposition: data.get("disposition"), typology: data.get("typology"), actions, notes: data.get("notes") || "" } });
        notice(`Decision recorded; ${caseId} is closed and has left the queue.${result.indexed ? "" : " (Not yet in the past-case store.)"}`, "ok");
        detail.record.status = "closed";
        renderMeta();
        showDecided(result.decision);
      } catch (error) {
        notice(describe(error));
      } finally {
        button.disabled = false;
      }
    });
  }

  async function load() {
    detail = await api(`/v1/cases/${encodeURIComponent(caseId)}`);
    items = new Map(detail.evidence.map((i) => [i.id, i]));
    renderMeta();
    renderProfile();
    renderEvidence();
    renderTimeline();
    renderLinked();
    renderSimilar();
    renderReport();
  }

  FA.ready(async () => {
    const status = document.getElementById("case-status");
    try {
      await load();
      status.textContent = "";
    } catch (error) {
      status.textContent = "";
      notice(describe(error));
      return;
    }
    setUpChat();
    setUpDecision();
    document.getElementById("assign-me").addEventListener("click", async () => {
      try {
        detail.record = await api(`/v1/cases/${encodeURIComponent(caseId)}/assign`, { method: "POST" });
        renderMeta();
        notice(`Assigned to ${detail.record.assignee}.`, "ok");
      } catch (error) { notice(describe(error)); }
    });
    document.getElementById("draft-report").addEventListener("click", async (event) => {
      event.target.disabled = true;
      status.textContent = "Drafting a report …";
      try {
        const report = await draftStreamed();
        status.textContent = report ? `Report drafted (${report.path.replaceAll("_", " ")}).` : "";
      } catch (error) { status.textContent = ""; notice(describe(error)); }
      finally { event.target.disabled = false; }
    });
    if (location.hash.startsWith("#ev-")) showEvidence(decodeURIComponent(location.hash.slice(4)));
  });
})();
