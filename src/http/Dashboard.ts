/**
 * The dashboard: one self-contained HTML page (inline CSS and script, no external assets) served
 * at `/`. It lists tasks with status, progress, attempts and last error, filters them by status
 * and name, cancels and retries them, follows `GET /events` for live updates and `GET /stats` for
 * the figures. Every value from the API is written with `textContent`, never parsed as HTML. The
 * bearer token, when the API wants one, is typed into the page and kept in `sessionStorage`; the
 * event stream is read with `fetch`, so the token travels in a header, never in a URL.
 *
 * @since 0.1.0
 */


const style = `
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d232b; --muted:#68717d; --line:#e2e5ea; --accent:#3b5bdb;
  --pending:#868e96; --processing:#1c7ed6; --completed:#2f9e44; --failed:#e03131; --cancelled:#f08c00; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; background:var(--bg); color:var(--ink); }
header { display:flex; align-items:center; gap:16px; padding:12px 20px; background:#1d232b; color:#fff; }
header h1 { font-size:17px; margin:0; font-weight:600; letter-spacing:.2px; }
header .spacer { flex:1; }
header input { background:#2b323c; border:1px solid #3d4652; color:#fff; border-radius:6px; padding:5px 8px; width:190px; }
#conn { font-size:12px; padding:2px 8px; border-radius:10px; background:#495057; }
#conn.live { background:var(--completed); }
#conn.down { background:var(--failed); }
main { padding:16px 20px 40px; }
#stats { display:grid; grid-template-columns:repeat(auto-fill,minmax(118px,1fr)); gap:10px; margin-bottom:16px; }
.stat { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:8px 12px; }
.stat .label { color:var(--muted); font-size:11px; text-transform:uppercase; letter-spacing:.5px; }
.stat .value { font-size:21px; font-weight:600; font-variant-numeric:tabular-nums; }
#filters { display:flex; gap:10px; align-items:center; margin-bottom:10px; flex-wrap:wrap; }
#filters select, #filters button { padding:5px 8px; border:1px solid var(--line); border-radius:6px; background:var(--card); font:inherit; }
#message { color:var(--failed); min-height:1em; }
table { width:100%; border-collapse:collapse; background:var(--card); border:1px solid var(--line); border-radius:8px; overflow:hidden; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:11px; color:var(--muted); text-transform:uppercase; letter-spacing:.5px; background:#fafbfc; }
td.progress, td.updated, td.actions, td.id { white-space:nowrap; }
td.id { font-family:ui-monospace,Menlo,Consolas,monospace; font-size:12px; cursor:pointer; color:var(--accent); }
td.payload, td.error { max-width:220px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; font-family:ui-monospace,Menlo,Consolas,monospace; font-size:12px; }
td.error { color:var(--failed); }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; color:#fff; font-size:12px; }
.badge.pending { background:var(--pending); } .badge.processing { background:var(--processing); }
.badge.completed { background:var(--completed); } .badge.failed { background:var(--failed); }
.badge.cancelled { background:var(--cancelled); }
.bar { width:120px; height:10px; background:#e9ecef; border-radius:5px; overflow:hidden; display:inline-block; vertical-align:middle; }
.bar > span { display:block; height:100%; background:var(--processing); transition:width .25s; }
tr[data-status=completed] .bar > span { background:var(--completed); }
tr[data-status=failed] .bar > span { background:var(--failed); }
.pct { font-variant-numeric:tabular-nums; color:var(--muted); margin-left:6px; font-size:12px; }
td.actions button { font:inherit; font-size:12px; padding:2px 8px; margin-right:4px; border:1px solid var(--line); border-radius:5px; background:#fff; cursor:pointer; }
td.actions button:disabled { opacity:.35; cursor:default; }
tr.detail td { background:#fbfbfd; }
tr.detail pre { margin:0; white-space:pre-wrap; word-break:break-word; font-size:12px; }
#more { margin-top:10px; }
.empty { color:var(--muted); padding:20px; text-align:center; }
`

const script = `
"use strict";
var base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
var statuses = ["pending", "processing", "completed", "failed", "cancelled"];
var rows = new Map();
var names = new Set();
var nextCursor = null;
var maxRows = 500;
var $ = function (id) { return document.getElementById(id); };

function el(tag, props, children) {
  var node = document.createElement(tag);
  if (props) for (var key in props) {
    if (key === "text") node.textContent = props[key];
    else if (key === "className") node.className = props[key];
    else node.setAttribute(key, props[key]);
  }
  (children || []).forEach(function (child) { node.appendChild(child); });
  return node;
}
function token() { return sessionStorage.getItem("effect-tasks-token") || ""; }
function headers() {
  var h = { "accept": "application/json" };
  if (token()) h["authorization"] = "Bearer " + token();
  return h;
}
function say(text) { $("message").textContent = text || ""; }
function api(method, path) {
  return fetch(base + path, { method: method, headers: headers() }).then(function (res) {
    if (res.status === 401) { say("Unauthorized: enter the API token above."); throw new Error("401"); }
    if (!res.ok) return res.text().then(function (t) { say(method + " " + path + ": " + res.status + " " + t); throw new Error(String(res.status)); });
    return res.json();
  });
}
function short(value) {
  if (value === undefined || value === null) return "";
  var text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 200 ? text.slice(0, 200) + "\\u2026" : text;
}
function when(iso) { return iso ? new Date(iso).toLocaleTimeString() : ""; }
function matches(record) {
  var s = $("status").value, n = $("name").value;
  return (!s || record.status === s) && (!n || record.name === n);
}
function addName(name) {
  if (names.has(name)) return;
  names.add(name);
  var select = $("name"), current = select.value;
  var sorted = Array.from(names).sort();
  while (select.options.length > 1) select.remove(1);
  sorted.forEach(function (n) { select.appendChild(el("option", { value: n, text: n })); });
  select.value = current;
}

function render(record) {
  var tr = el("tr", { "data-id": record.id, "data-status": record.status, "data-progress": String(record.progress) });
  var idCell = el("td", { className: "id", title: record.id, text: record.id.length > 14 ? record.id.slice(0, 6) + "\\u2026" + record.id.slice(-6) : record.id });
  idCell.addEventListener("click", function () { toggleDetail(record.id); });
  var pct = Math.max(0, Math.min(100, Number(record.progress) || 0));
  var fill = el("span", { style: "width:" + pct + "%" });
  var error = record.error ? record.error.tag + ": " + record.error.message : "";
  var cancel = el("button", { className: "cancel", text: "Cancel", title: "Cancel this task" });
  var retry = el("button", { className: "retry", text: "Retry", title: "Run this task again" });
  cancel.disabled = !(record.status === "pending" || record.status === "processing");
  retry.disabled = !(record.status === "failed" || record.status === "cancelled");
  cancel.addEventListener("click", function () { act(record.id, "cancel"); });
  retry.addEventListener("click", function () { act(record.id, "retry"); });
  [
    idCell,
    el("td", { className: "name", text: record.name }),
    el("td", {}, [el("span", { className: "badge status " + record.status, text: record.status })]),
    el("td", { className: "progress" }, [el("span", { className: "bar", role: "progressbar", "aria-valuenow": String(pct), "aria-valuemin": "0", "aria-valuemax": "100" }, [fill]), el("span", { className: "pct", text: Math.round(pct) + "%" })]),
    el("td", { className: "attempt", text: String(record.attempt) }),
    el("td", { className: "payload", title: short(record.payload), text: short(record.payload) }),
    el("td", { className: "error", title: error, text: error }),
    el("td", { className: "updated", text: when(record.updatedAt) }),
    el("td", { className: "actions" }, [cancel, retry])
  ].forEach(function (td) { tr.appendChild(td); });
  return tr;
}
function toggleDetail(id) {
  var entry = rows.get(id);
  if (!entry) return;
  var next = entry.tr.nextSibling;
  if (next && next.className === "detail") { next.remove(); return; }
  var text = JSON.stringify(entry.record, null, 2);
  var detail = el("tr", { className: "detail" }, [el("td", { colspan: "9" }, [el("pre", { text: text })])]);
  entry.tr.after(detail);
}
function upsert(record, atTop) {
  addName(record.name);
  var entry = rows.get(record.id);
  if (entry && entry.record.updatedAt > record.updatedAt) return;
  if (!matches(record)) {
    if (entry) { removeRow(record.id); }
    return;
  }
  var tr = render(record);
  if (entry) {
    var detail = entry.tr.nextSibling && entry.tr.nextSibling.className === "detail" ? entry.tr.nextSibling : null;
    entry.tr.replaceWith(tr);
    if (detail) detail.querySelector("pre").textContent = JSON.stringify(record, null, 2);
  } else {
    var body = $("tasks");
    if (atTop && body.firstChild) body.insertBefore(tr, body.firstChild); else body.appendChild(tr);
  }
  rows.set(record.id, { record: record, tr: tr });
  while (rows.size > maxRows) {
    var last = $("tasks").lastChild;
    if (!last) break;
    if (last.className === "detail") { last.remove(); continue; }
    removeRow(last.getAttribute("data-id"));
  }
  $("empty").style.display = rows.size === 0 ? "" : "none";
}
function removeRow(id) {
  var entry = rows.get(id);
  if (!entry) return;
  var next = entry.tr.nextSibling;
  if (next && next.className === "detail") next.remove();
  entry.tr.remove();
  rows.delete(id);
  $("empty").style.display = rows.size === 0 ? "" : "none";
}
function query(cursor) {
  var params = new URLSearchParams();
  if ($("status").value) params.set("status", $("status").value);
  if ($("name").value) params.set("name", $("name").value);
  params.set("limit", "50");
  if (cursor) params.set("cursor", cursor);
  return "tasks?" + params.toString();
}
function load() {
  return api("GET", query(null)).then(function (page) {
    rows.forEach(function (_, id) { removeRow(id); });
    page.tasks.forEach(function (record) { upsert(record, false); });
    nextCursor = page.nextCursor;
    $("more").style.display = nextCursor ? "" : "none";
    say("");
  }).catch(function () {});
}
function more() {
  if (!nextCursor) return;
  api("GET", query(nextCursor)).then(function (page) {
    page.tasks.forEach(function (record) { upsert(record, false); });
    nextCursor = page.nextCursor;
    $("more").style.display = nextCursor ? "" : "none";
  }).catch(function () {});
}
function act(id, action) {
  api("POST", "tasks/" + encodeURIComponent(id) + "/" + action).then(function () {
    return api("GET", "tasks/" + encodeURIComponent(id));
  }).then(function (record) { upsert(record, false); }).catch(function () {});
}
function stats() {
  api("GET", "stats").then(function (s) {
    var t = s.total;
    var avg = t.duration.count ? Math.round(t.duration.totalMillis / t.duration.count) + " ms" : "\\u2013";
    var cards = [["Submitted", t.submitted], ["Running", t.running], ["Queued", t.queued], ["Completed", t.completed],
      ["Failed", t.failed], ["Retried", t.retried], ["Cancelled", t.cancelled], ["Avg attempt", avg]];
    var box = $("stats");
    while (box.firstChild) box.firstChild.remove();
    cards.forEach(function (c) {
      box.appendChild(el("div", { className: "stat", "data-stat": c[0].toLowerCase() }, [el("div", { className: "label", text: c[0] }), el("div", { className: "value", text: String(c[1]) })]));
    });
    Object.keys(s.tasks).forEach(addName);
  }).catch(function () {});
}

var stream = null;
function connect(delay) {
  if (stream) stream.abort();
  var controller = new AbortController();
  stream = controller;
  $("conn").textContent = "connecting";
  $("conn").className = "";
  fetch(base + "events", { headers: headers(), signal: controller.signal }).then(function (res) {
    if (!res.ok || !res.body) throw new Error("events: " + res.status);
    $("conn").textContent = "live";
    $("conn").className = "live";
    delay = 500;
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) throw new Error("events ended");
        buffer += decoder.decode(chunk.value, { stream: true });
        var parts = buffer.split("\\n\\n");
        buffer = parts.pop();
        parts.forEach(function (part) {
          var name = "message", data = "";
          part.split("\\n").forEach(function (line) {
            if (line.indexOf("event: ") === 0) name = line.slice(7);
            else if (line.indexOf("data: ") === 0) data += line.slice(6);
          });
          if (name === "record" && data) upsert(JSON.parse(data), true);
        });
        return pump();
      });
    }
    return pump();
  }).catch(function () {
    if (controller.signal.aborted) return;
    $("conn").textContent = "reconnecting";
    $("conn").className = "down";
    setTimeout(function () { connect(Math.min((delay || 500) * 2, 10000)); load(); }, delay || 500);
  });
}

$("token").value = token();
$("token").addEventListener("change", function () {
  sessionStorage.setItem("effect-tasks-token", $("token").value.trim());
  load(); stats(); connect(500);
});
$("status").addEventListener("change", load);
$("name").addEventListener("change", load);
$("refresh").addEventListener("click", function () { load(); stats(); });
$("more").addEventListener("click", more);
statuses.forEach(function (s) { $("status").appendChild(el("option", { value: s, text: s })); });
load(); stats(); connect(500);
setInterval(stats, 2000);
`

/**
 * The dashboard page.
 *
 * @since 0.1.0
 * @category pages
 */
export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>effect-tasks</title>
<style>${style}</style>
</head>
<body>
<header>
  <h1>effect-tasks</h1>
  <span id="conn">connecting</span>
  <span class="spacer"></span>
  <label>Token <input id="token" type="password" autocomplete="off" placeholder="API token (if any)"></label>
</header>
<main>
  <section id="stats" aria-label="Metrics"></section>
  <div id="filters">
    <label>Status <select id="status"><option value="">all</option></select></label>
    <label>Name <select id="name"><option value="">all</option></select></label>
    <button id="refresh" type="button">Refresh</button>
    <span id="message" role="status"></span>
  </div>
  <div style="overflow-x:auto">
  <table>
    <thead><tr><th>Id</th><th>Name</th><th>Status</th><th>Progress</th><th>Attempt</th><th>Payload</th><th>Last error</th><th>Updated</th><th></th></tr></thead>
    <tbody id="tasks"></tbody>
  </table>
  </div>
  <div id="empty" class="empty">No tasks yet.</div>
  <button id="more" type="button" style="display:none">Load more</button>
</main>
<script>${script}</script>
</body>
</html>
`

// SHA-256 (FIPS 180-4), synchronous so that the policy is a constant on every runtime (Web
// Crypto's digest is asynchronous); it hashes one short script once, when the module loads.
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
])

/**
 * The SHA-256 digest of `bytes`.
 *
 * @since 0.1.0
 * @category utils
 */
export const sha256 = (bytes: Uint8Array): Uint8Array => {
  const length = bytes.length
  const blocks = Math.ceil((length + 9) / 64)
  const padded = new Uint8Array(blocks * 64)
  padded.set(bytes)
  padded[length] = 0x80
  const view = new DataView(padded.buffer)
  view.setUint32(padded.length - 8, Math.floor(length / 0x20000000))
  view.setUint32(padded.length - 4, (length * 8) >>> 0)
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19])
  const w = new Uint32Array(64)
  const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n))
  for (let block = 0; block < blocks; block++) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(block * 64 + i * 4)
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15]!
      const b = w[i - 2]!
      const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3)
      const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10)
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) >>> 0
    }
    let [a, b, c, d, e, f, g, hh] = [h[0]!, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!, h[6]!, h[7]!]
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) >>> 0
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0
      hh = g
      g = f
      f = e
      e = (d + t1) >>> 0
      d = c
      c = b
      b = a
      a = (t1 + t2) >>> 0
    }
    h[0] = (h[0]! + a) >>> 0
    h[1] = (h[1]! + b) >>> 0
    h[2] = (h[2]! + c) >>> 0
    h[3] = (h[3]! + d) >>> 0
    h[4] = (h[4]! + e) >>> 0
    h[5] = (h[5]! + f) >>> 0
    h[6] = (h[6]! + g) >>> 0
    h[7] = (h[7]! + hh) >>> 0
  }
  const out = new Uint8Array(32)
  const outView = new DataView(out.buffer)
  for (let i = 0; i < 8; i++) outView.setUint32(i * 4, h[i]!)
  return out
}

const base64 = (bytes: Uint8Array): string => {
  let binary = ""
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary)
}

/**
 * The CSP source of the page's one inline script: `'sha256-<base64 of its digest>'`.
 *
 * @since 0.1.0
 * @category constants
 */
export const scriptHash = `'sha256-${base64(sha256(new TextEncoder().encode(script)))}'`

/**
 * The page's `Content-Security-Policy`: nothing loads from elsewhere, requests go to this origin,
 * and the only script that runs is the page's own (allowed by its hash, not `'unsafe-inline'`,
 * so markup injected into the page could not run any).
 *
 * @since 0.1.0
 * @category constants
 */
export const contentSecurityPolicy = `default-src 'none'; script-src ${scriptHash}; style-src 'unsafe-inline'; ` +
  "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
