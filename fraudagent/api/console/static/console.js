/* The console's shared part: the API key (sessionStorage only), API calls with problem+json errors turned
   into readable messages, role checks, and a small DOM helper that only ever sets text (never HTML). */
"use strict";

const FA = (() => {
  const KEY = "fa.key";

  class ApiError extends Error {
    constructor(status, title, detail) {
      super(detail || title || `HTTP ${status}`);
      this.status = status;
      this.title = title;
      this.detail = detail;
    }
  }

  function key() { return sessionStorage.getItem(KEY); }

  async function problemOf(response) {
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    return new ApiError(response.status, body && body.title, body && body.detail);
  }

  /** fetch against this API with the Bearer key; JSON in and out; a problem+json answer throws ApiError. */
  async function api(path, { method = "GET", body, raw = false, accept = "application/json" } = {}) {
    const headers = { Authorization: `Bearer ${key() || ""}`, Accept: accept };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (_) {
      throw new ApiError(0, "Network error", "the API could not be reached; is the server running?");
    }
    if (!response.ok) throw await problemOf(response);
    return raw ? response : response.json();
  }

  let me = null;

  /** A message a person can act on, for any failed call. */
  function describe(error) {
    if (!(error instanceof ApiError)) return `Something went wrong in the page: ${error.message}`;
    switch (error.status) {
      case 0: return "The API could not be reached. Is the server still running?";
      case 401: return "This API key was not accepted: it is wrong, unknown or revoked. Sign in again with a valid key.";
      case 403: {
        const roles = me ? me.roles.join(", ") : "unknown";
        return `Your key (${me ? me.name : "?"}, role ${roles}) is not allowed to do this: ${error.detail}.`;
      }
      case 404: return `Not found: ${error.detail}`;
      case 409: return `Not possible now: ${error.detail}`;
      case 422: return `The request was refused: ${error.detail}`;
      case 429: return `Too many requests with this key: ${error.detail}`;
      case 503: return `A service behind the API is unavailable (${error.detail}). Try again shortly.`;
      default: return `The API answered ${error.status} ${error.title || ""}: ${error.detail || ""}`;
    }
  }

  function notice(text, kind = "error") {
    const box = document.getElementById("notice");
    if (!text) { box.hidden = true; box.textContent = ""; return; }
    box.className = `notice ${kind}`;
    box.textContent = text;
    box.hidden = false;
  }

  /** el("a", {href: "#x", class: "c"}, "text", child) — text children become text nodes. */
  function el(tag, attrs = {}, ...children) {
    const svg = ["svg", "g", "line", "rect", "circle", "path", "polyline", "text", "title", "a", "polygon"].includes(tag)
      && attrs.svg;
    const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "svg" || value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Customer-written text: visibly marked, inserted as text only. */
  const CONTROL = /[\u0000-\u001f\u007f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g;  // no bidi or control tricks

  function untrusted(text) {
    text = String(text).replace(CONTROL, " ");
    return el("span", { class: "untrusted" },
      el("span", { class: "untrusted-tag", title: "written by a customer: data, not instructions" }, "customer-written"),
      el("q", {}, text));
  }

  const has = (...roles) => !!me && (me.roles.includes("admin") || roles.some((r) => me.roles.includes(r)));
  const canRead = () => has("analyst", "evaluator");
  const isAnalyst = () => has("analyst");

  function showSignin(message) {
    document.getElementById("app").hidden = true;
    document.getElementById("who").hidden = true;
    document.getElementById("signin").hidden = false;
    if (message) notice(message);
    document.getElementById("signin-key").focus();
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    me = null;
    notice(null);
    showSignin();
  }

  async function identify() {
    me = await api("/v1/me");
    document.getElementById("who-name").textContent = `${me.name} · ${me.roles.join(", ")}`;
    document.getElementById("who").hidden = false;
    return me;
  }

  /** Run `start(me)` once a valid key is known: from this tab's session, or after the sign-in form. */
  function ready(start) {
    document.addEventListener("DOMContentLoaded", () => {
      document.getElementById("sign-out").addEventListener("click", signOut);
      const enter = async () => {
        try {
          await identify();
        } catch (error) {
          if (error instanceof ApiError && error.status === 401) sessionStorage.removeItem(KEY);
          showSignin(describe(error));
          return;
        }
        notice(null);
        document.getElementById("signin").hidden = true;
        if (!canRead()) {
          notice(`Signed in as ${me.name} with the role ${me.roles.join(", ")}. The console needs the analyst role ` +
                 "(or evaluator, read-only). Ticketing keys reach cases only through the summaries API.", "warn");
          return;
        }
        document.getElementById("app").hidden = false;
        await start(me);
      };
      document.getElementById("signin-form").addEventListener("submit", (event) => {
        event.preventDefault();
        const value = document.getElementById("signin-key").value.trim();
        if (!value) return;
        sessionStorage.setItem(KEY, value);
        document.getElementById("signin-key").value = "";
        enter();
      });
      if (key()) enter(); else showSignin();
    });
  }

  function age(iso) {
    const s = (Date.now() - Date.parse(iso)) / 1000;
    if (s < 3600) return `${Math.max(0, Math.round(s / 60))} min`;
    if (s < 86400 * 2) return `${Math.round(s / 3600)} h`;
    return `${Math.round(s / 86400)} d`;
  }

  const when = (iso) => iso ? iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC") : "";

  return { api, ApiError, describe, notice, el, untrusted, ready, has, canRead, isAnalyst, age, when,
           me: () => me };
})();
