/* The queue: open cases from GET /v1/cases with the API's filters and cursor paging; the column buttons sort
   the page in view. */
"use strict";

(() => {
  const { api, describe, notice, el, age } = FA;
  const PRIORITY = { critical: 4, high: 3, medium: 2, low: 1 };
  const state = { cursors: [null], page: 0, next: null, items: [], sort: null, dir: -1 };

  const sortKeys = {
    case: (c) => c.case.case_id,
    priority: (c) => PRIORITY[c.case.priority] || 0,
    score: (c) => c.max_score ?? -1,
    typology: (c) => c.suggested_typology || "",
    age: (c) => -Date.parse(c.case.opened_at),
    assignee: (c) => c.assignee || "",
  };

  function params() {
    const form = document.getElementById("filters");
    const query = new URLSearchParams({ status: "open" });
    for (const [name, value] of new FormData(form)) {
      const text = String(value).trim();
      if (!text) continue;
      if (name === "age") {  // days: negative = opened within, positive = older than
        const days = Number(text);
        const edge = new Date(Date.now() - Math.abs(days) * 86400e3).toISOString();
        query.set(days < 0 ? "opened_after" : "opened_before", edge);
      } else {
        query.set(name, text);
      }
    }
    const cursor = state.cursors[state.page];
    if (cursor) query.set("cursor", cursor);
    return query;
  }

  async function load() {
    const status = document.getElementById("queue-status");
    status.textContent = "Loading …";
    try {
      const page = await api(`/v1/cases?${params()}`);
      state.items = page.items;
      state.next = page.next_cursor;
      notice(null);
      render();
      status.textContent = page.items.length
        ? `${page.items.length} case(s) on this page${page.next_cursor ? "; more on the next page" : ""}.`
        : (page.next_cursor ? "No match on this page; the search continues on the next page." : "No open case matches.");
    } catch (error) {
      status.textContent = "";
      notice(describe(error));
    }
  }

  function render() {
    const items = [...state.items];
    if (state.sort) {
      const keyOf = sortKeys[state.sort];
      items.sort((a, b) => {
        const x = keyOf(a), y = keyOf(b);
        return (x < y ? -1 : x > y ? 1 : 0) * state.dir;
      });
    }
    const body = document.querySelector("#queue tbody");
    body.replaceChildren(...items.map((c) => el("tr", { "data-case-id": c.case.case_id },
      el("th", { scope: "row" }, el("a", { href: `/console/cases/${encodeURIComponent(c.case.case_id)}` }, c.case.case_id)),
      el("td", {}, el("span", { class: `prio prio-${c.case.priority}` }, c.case.priority)),
      el("td", { class: "num" }, c.max_score == null ? "–" : c.max_score.toFixed(2)),
      el("td", {}, c.suggested_typology || "–"),
      el("td", { title: c.case.opened_at }, age(c.case.opened_at)),
      el("td", {}, c.assignee || "–"),
      el("td", {}, `${c.case.trigger.kind}${c.case.trigger.detail ? ": " + c.case.trigger.detail : ""}`),
    )));
    for (const th of document.querySelectorAll("#queue thead th")) th.removeAttribute("aria-sort");
    if (state.sort) {
      const button = document.querySelector(`#queue button[data-sort="${state.sort}"]`);
      button.parentElement.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
    }
    document.getElementById("page-no").textContent = `page ${state.page + 1}`;
    document.getElementById("next-page").disabled = !state.next;
    document.getElementById("first-page").disabled = state.page === 0;
  }

  FA.ready(async () => {
    const form = document.getElementById("filters");
    const restart = () => { state.cursors = [null]; state.page = 0; load(); };
    form.addEventListener("submit", (event) => { event.preventDefault(); restart(); });
    form.addEventListener("reset", () => setTimeout(restart, 0));
    document.getElementById("next-page").addEventListener("click", () => {
      if (!state.next) return;
      state.cursors = state.cursors.slice(0, state.page + 1).concat([state.next]);
      state.page += 1;
      load();
    });
    document.getElementById("first-page").addEventListener("click", restart);
    for (const button of document.querySelectorAll("#queue button.sort")) {
      button.addEventListener("click", () => {
        const name = button.dataset.sort;
        state.dir = state.sort === name ? -state.dir : (name === "case" || name === "assignee" || name === "typology" ? 1 : -1);
        state.sort = name;
        render();
      });
    }
    await load();
  });
})();
