// The release dashboard's page: plain DOM, no dependencies, no network
// access beyond this API. Every value from the API is set as text, never
// parsed as HTML. The session token lives in sessionStorage (this tab).
"use strict";

const FLAGS = ["drift", "mixed", "digestDrift", "promotionOrderBroken", "rolling", "stale", "consistent"];
const FLAG_LABELS = {
  consistent: "consistent", drift: "drift", mixed: "mixed versions", digestDrift: "digest drift",
  promotionOrderBroken: "promotion order", rolling: "rolling", stale: "stale",
};
const REFRESH_MS = 30000;
let refreshTimer = null;

// Bidirectional overrides and invisible characters in text from clusters
// would let a name read as something else ("invoice-\u202Egnp.exe" reads
// "invoice-exe.png"): they are shown by their code point instead.
const HIDDEN_CHARACTERS = /[\u061C\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/g;
function visible(text) {
  return String(text).replace(HIDDEN_CHARACTERS, (c) => "⟪U+" + c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0") + "⟫");
}

// Appends children to a node, skipping null, undefined and false (the DOM's
// own append would write them as text), with every string shown visibly.
function put(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(visible(child)));
  }
  return node;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "title") node.setAttribute(key, visible(value));
    else node.setAttribute(key, value === true ? "" : value);
  }
  return put(node, children);
}

// A name or version that may be long: cut at the column's width, whole in
// the tooltip.
function clipped(text, extra) {
  return el("span", { class: "clip " + (extra || ""), title: text }, text);
}

function token() { return sessionStorage.getItem("token"); }

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
  if (message) setTimeout(() => { box.hidden = true; }, 6000);
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token()) headers.Authorization = "Bearer " + token();
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (response.status === 401 && token()) {
    sessionStorage.removeItem("token");
    location.hash = "#/login";
  }
  if (!response.ok) {
    const error = new Error((data && data.error && data.error.message) || response.statusText);
    error.status = response.status;
    throw error;
  }
  return { status: response.status, data };
}

async function downloadCsv(path, filename) {
  const response = await fetch(path, { headers: { Accept: "text/csv", Authorization: "Bearer " + token() } });
  if (!response.ok) { showError("download failed: " + response.status); return; }
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(url);
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? "?" + text : "";
}

function route() {
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  return { parts: (path || "/").split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search || "") };
}

function go(hash) { location.hash = hash; }

function age(seconds) {
  if (seconds === undefined || seconds === null) return "never";
  if (seconds < 90) return seconds + " s ago";
  if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
  return Math.round(seconds / 3600) + " h ago";
}

function when(time) { return time ? new Date(time).toLocaleString() : ""; }

function badges(flags) {
  return FLAGS.filter((f) => flags[f]).map((f) => el("span", { class: "badge " + f, title: f }, FLAG_LABELS[f]));
}

// ----- accounts -----

function form(title, fields, submit, extra) {
  const inputs = {};
  const node = el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.value]));
    try { await submit(values); } catch (error) { showError(error.message); }
  } },
  el("h2", {}, title),
  fields.map(([name, label, type]) => {
    inputs[name] = el("input", { name, id: "f-" + name, type: type || "text", required: true, autocomplete: type === "password" ? "current-password" : "on" });
    return [el("label", { for: "f-" + name }, label), inputs[name]];
  }),
  el("button", { type: "submit" }, title),
  extra || null);
  return node;
}

function login(main) {
  put(main, form("Sign in", [["email", "Email", "email"], ["password", "Password", "password"]], async (v) => {
    const answer = await api("POST", "/auth/login", v);
    if (answer.status === 202) { go("#/login-code" + query({ email: v.email, challenge: answer.data.challenge })); return; }
    signedIn(answer.data);
  }, el("p", {}, el("a", { href: "#/signup" }, "Create an account"), " · ", el("a", { href: "#/reset" }, "Forgot password"), " · ", el("a", { href: "#/login-email" }, "Sign in with a code by email"))));
}

function loginEmail(main) {
  put(main, form("Sign in with a code by email", [["email", "Email", "email"]], async (v) => {
    const answer = await api("POST", "/auth/login/email", v);
    go("#/login-code" + query({ email: v.email, challenge: answer.data.challenge }));
  }, el("p", {}, "If the address has an account, a code is mailed to it. This works even while password sign-in is paused after many wrong passwords.")));
}

function loginCode(main, params) {
  put(main, form("Enter the code we mailed", [["code", "Code"]], async (v) => {
    const answer = await api("POST", "/auth/login/code", { email: params.get("email"), challenge: params.get("challenge"), code: v.code });
    signedIn(answer.data);
  }));
}

function signedIn(session) {
  sessionStorage.setItem("token", session.token);
  go("#/");
}

// The password chosen at sign-up, kept in memory only (never in the URL or
// storage): the verification code works only together with it.
let signupPassword = null;

function signup(main) {
  put(main, form("Sign up", [["name", "Name"], ["email", "Email", "email"], ["password", "Password (8 or more characters)", "password"]], async (v) => {
    await api("POST", "/auth/signup", v);
    signupPassword = v.password;
    go("#/verify" + query({ email: v.email }));
  }));
}

function verify(main, params) {
  const fields = [["code", "Code from the email"]];
  if (!signupPassword) fields.push(["password", "The password you chose at sign-up", "password"]);
  put(main, form("Verify your address", fields, async (v) => {
    await api("POST", "/auth/verify", { email: params.get("email"), code: v.code, password: signupPassword || v.password });
    signupPassword = null;
    go("#/login");
  }, el("p", {}, "A code was sent to ", params.get("email") || "your address", ".")));
}

function reset(main, params) {
  if (!params.get("email")) {
    put(main, form("Reset your password", [["email", "Email", "email"]], async (v) => {
      await api("POST", "/auth/password/forgot", v);
      go("#/reset" + query({ email: v.email }));
    }));
    return;
  }
  put(main, form("Choose a new password", [["code", "Code from the email"], ["newPassword", "New password", "password"]], async (v) => {
    await api("POST", "/auth/password/reset", { email: params.get("email"), ...v });
    go("#/login");
  }));
}

// ----- dashboards -----

async function dashboards(main) {
  const { data } = await api("GET", "/dashboards");
  put(main, el("h2", {}, "Dashboards"), el("ul", { class: "plain" }, data.items.map((d) =>
    el("li", {}, el("a", { href: "#/d/" + encodeURIComponent(d.name) }, d.title), " ", el("small", {}, d.columns.join(" → "))))));
  if (data.items.length === 0) {
    const me = await api("GET", "/auth/me");
    put(main, el("p", { class: "empty", id: "sees" }, "Nothing to show yet. You see " + me.data.sees + "."));
  }
}

// Where a cell's versions came from (a label, an annotation, a container's
// tag), for its tooltip.
function versionSources(cell) {
  const sources = [...new Set(cell.placements.map((p) => p.versionFrom).filter(Boolean))];
  return sources.length ? "\nfrom the " + sources.join("; ") : "";
}

function cellNode(cell) {
  if (!cell) return el("td", { class: "cell empty" }, "—");
  const classes = ["cell"];
  if (cell.freshness.stale) classes.push("stale");
  if (cell.versions.length > 1) classes.push("mixed");
  if (cell.rolling) classes.push("rolling");
  const clusters = [...new Set(cell.placements.map((p) => p.cluster))];
  return el("td", { class: classes.join(" "), title: cell.images.map((i) => i.image + (i.digest ? "@" + i.digest : "")).join("\n") },
    el("span", { class: "clip v", title: cell.versions.join(", ") + versionSources(cell) }, cell.versions.join(", ")),
    el("small", {}, cell.ready + "/" + cell.desired + " ready · " + clusters.length + " cluster" + (clusters.length === 1 ? "" : "s")),
    el("small", {}, "since " + when(cell.lastChange)),
    cell.freshness.lastAttemptFailed ? el("small", {}, "last refresh failed") : null);
}

async function matrix(main, name, params) {
  const filters = { namespace: params.get("namespace"), q: params.get("q"), problems: params.get("problems"), cursor: params.get("cursor") };
  const { data } = await api("GET", "/dashboards/" + encodeURIComponent(name) + query(filters));
  const columns = data.columns.map((c) => c.environment);
  const namespace = el("input", { name: "namespace", placeholder: "namespace", value: filters.namespace || "" });
  const search = el("input", { name: "q", placeholder: "service", value: filters.q || "" });
  const problems = el("input", { type: "checkbox", name: "problems", checked: filters.problems === "true" });
  const apply = () => go("#/d/" + encodeURIComponent(name) + query({ namespace: namespace.value, q: search.value, problems: problems.checked ? "true" : "" }));
  const from = el("select", { name: "from" }, columns.map((c) => el("option", {}, c)));
  const to = el("select", { name: "to" }, columns.map((c, i) => el("option", { selected: i === columns.length - 1 }, c)));
  put(main, 
    el("h2", {}, data.dashboard.title),
    el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); apply(); } },
      namespace, search, el("label", {}, problems, " only problems"), el("button", { type: "submit" }, "Filter"),
      el("button", { type: "button", class: "link", onclick: () => downloadCsv("/dashboards/" + encodeURIComponent(name) + query({ namespace: filters.namespace, q: filters.q, problems: filters.problems }), name + ".csv") }, "Download CSV"),
      el("span", {}, " Compare "), from, " → ", to,
      el("button", { type: "button", onclick: () => go("#/d/" + encodeURIComponent(name) + "/compare" + query({ from: from.value, to: to.value })) }, "Compare")),
    el("div", { class: "summary", id: "summary" }, Object.entries(data.summary).filter(([k]) => k !== "services").map(([k, n]) =>
      el("span", { class: "badge " + k }, FLAG_LABELS[k] + ": " + n)), el("span", {}, data.summary.services + " services")),
    el("table", { id: "matrix" },
      el("thead", {}, el("tr", {}, el("th", {}, "Service"), data.columns.map((c) =>
        el("th", {}, c.environment, el("small", { class: c.freshness.stale ? "stale" : "" }, (c.freshness.stale ? "stale · " : "") + age(c.freshness.ageSeconds)))))),
      el("tbody", {}, data.items.map((row) => el("tr", { class: FLAGS.filter((f) => row.flags[f]).join(" "), "data-service": row.service },
        el("td", {}, el("a", { href: "#/d/" + encodeURIComponent(name) + "/s/" + encodeURIComponent(row.service) }, clipped(row.service)), el("div", {}, badges(row.flags))),
        row.cells.map((cell) => cellNode(cell)))))),
    data.next ? el("p", { class: "pager" }, el("a", { href: "#/d/" + encodeURIComponent(name) + query({ ...filters, cursor: data.next }) }, "Next page")) : null);
}

async function compare(main, name, params) {
  const { data } = await api("GET", "/dashboards/" + encodeURIComponent(name) + "/compare" + query({ from: params.get("from"), to: params.get("to") }));
  const side = (s) => (s ? s.versions.join(", ") : "—");
  put(main, 
    el("h2", {}, data.dashboard.title + ": " + data.from + " → " + data.to),
    el("div", { class: "toolbar" },
      el("a", { href: "#/d/" + encodeURIComponent(name) }, "Back to the matrix"),
      el("button", { type: "button", class: "link", onclick: () => downloadCsv("/dashboards/" + encodeURIComponent(name) + "/compare" + query({ from: data.from, to: data.to }), name + "-" + data.from + "-" + data.to + ".csv") }, "Download CSV")),
    el("div", { class: "summary" }, Object.entries(data.summary).map(([k, n]) => el("span", { class: "badge rolling" }, k + ": " + n))),
    data.items.length === 0 ? el("p", { class: "empty" }, "No differences.") :
      el("table", { id: "compare" },
        el("thead", {}, el("tr", {}, ["Service", data.from, data.to, "Standing", "Since"].map((h) => el("th", {}, h)))),
        el("tbody", {}, data.items.map((d) => el("tr", { "data-service": d.service },
          el("td", {}, d.service), el("td", {}, side(d.from)), el("td", {}, side(d.to)),
          el("td", {}, d.standing + (d.basis ? " (" + (d.basis === "semanticVersion" ? "version" : "time") + ")" : "")),
          el("td", {}, when(d.since)))))));
}

function historyTable(items) {
  if (!items.length) return el("p", { class: "empty" }, "No changes recorded.");
  return el("table", {},
    el("thead", {}, el("tr", {}, ["When", "Change", "Service", "Environment", "Cluster", "From", "To"].map((h) => el("th", {}, h)))),
    el("tbody", {}, items.map((e) => el("tr", {},
      el("td", {}, when(e.at)), el("td", {}, e.change), el("td", {}, e.service), el("td", {}, e.environment),
      el("td", {}, e.cluster), el("td", {}, e.fromVersion || ""), el("td", {}, e.toVersion || "")))));
}

async function service(main, name, serviceName) {
  const { data } = await api("GET", "/dashboards/" + encodeURIComponent(name) + "/services/" + encodeURIComponent(serviceName));
  put(main, 
    el("h2", {}, serviceName + " in " + data.dashboard.title), el("div", {}, badges(data.row.flags)),
    el("table", {}, el("thead", {}, el("tr", {}, ["Environment", "Cluster", "Namespace", "Workload", "Version", "Ready", "Since"].map((h) => el("th", {}, h)))),
      el("tbody", {}, data.row.cells.flatMap((cell, i) => (cell ? cell.placements : []).map((p) => el("tr", {},
        el("td", {}, data.columns[i].environment), el("td", {}, p.cluster), el("td", {}, p.namespace), el("td", {}, p.kind + "/" + p.name),
        el("td", {}, p.version), el("td", {}, p.ready + "/" + p.desired), el("td", {}, when(p.changedAt))))))),
    el("h2", {}, "History"), historyTable(data.history.items));
}

async function images(main, params) {
  const q = params.get("q") || "";
  const input = el("input", { name: "q", placeholder: "shop/cart, shop/cart:1.2.0 or sha256:…", value: q, size: 50 });
  put(main, el("h2", {}, "Where does an image run?"),
    el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); go("#/images" + query({ q: input.value })); } }, input, el("button", { type: "submit" }, "Search")));
  if (!q) return;
  const { data } = await api("GET", "/images" + query({ q }));
  put(main, data.items.length === 0 ? el("p", { class: "empty" }, "Not running anywhere you can see.") :
    el("table", {}, el("thead", {}, el("tr", {}, ["Image", "Digest", "Environment", "Cluster", "Workload"].map((h) => el("th", {}, h)))),
      el("tbody", {}, data.items.map((p) => el("tr", {}, el("td", {}, p.image), el("td", {}, (p.digest || "").slice(0, 19)),
        el("td", {}, p.environment), el("td", {}, p.cluster), el("td", {}, p.namespace + "/" + p.workload))))));
}

async function history(main) {
  const { data } = await api("GET", "/history" + query({ limit: "100" }));
  put(main, el("h2", {}, "Recent changes"), historyTable(data.items));
}

// ----- the page -----

async function render() {
  const main = document.getElementById("main");
  const { parts, params } = route();
  const open = ["login", "login-email", "login-code", "signup", "verify", "reset"].includes(parts[0]);
  if (!token() && !open) { go("#/login"); return; }
  document.getElementById("nav").hidden = !token();
  const next = el("main", { id: "main", "aria-live": "polite" });
  try {
    if (parts[0] === "login") login(next);
    else if (parts[0] === "login-email") loginEmail(next);
    else if (parts[0] === "login-code") loginCode(next, params);
    else if (parts[0] === "signup") signup(next);
    else if (parts[0] === "verify") verify(next, params);
    else if (parts[0] === "reset") reset(next, params);
    else if (parts[0] === "d" && parts[2] === "compare") await compare(next, parts[1], params);
    else if (parts[0] === "d" && parts[2] === "s") await service(next, parts[1], parts[3]);
    else if (parts[0] === "d") await matrix(next, parts[1], params);
    else if (parts[0] === "images") await images(next, params);
    else if (parts[0] === "history") await history(next);
    else await dashboards(next);
    showError("");
  } catch (error) {
    showError(error.message);
  }
  main.replaceWith(next);
  if (token()) {
    api("GET", "/auth/me").then(({ data }) => { document.getElementById("who").textContent = data.name + " (" + data.role + ")"; }).catch(() => {});
  }
}

function autoRefresh() {
  clearInterval(refreshTimer);
  refreshTimer = setInterval(() => {
    const { parts } = route();
    // Views of data refresh themselves; forms are left alone.
    if (token() && (parts.length === 0 || ["d", "history"].includes(parts[0]))) render();
  }, REFRESH_MS);
}

document.getElementById("logout").addEventListener("click", async () => {
  try { await api("POST", "/auth/logout"); } catch (_) { /* the session is gone either way */ }
  sessionStorage.removeItem("token");
  go("#/login");
});
window.addEventListener("hashchange", render);
render();
autoRefresh();
