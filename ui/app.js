/* treadle web UI: a page per hash route (#/, #/apps, #/instance/<id>), data from the REST API of the
 * server that serves it, live updates from its server-sent event streams (docs/API.md).  No framework. */
"use strict";

const DIMS = [["memory", "MB"], ["cpu", "%"], ["disk", "MB"]];
const main = document.getElementById("main");
let streams = [];          /* EventSources of the current page */
let pageGen = 0;           /* bumped on every navigation: late answers of an old page are dropped */

function esc(s) {
  return String(s === undefined || s === null ? "" : s).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
function enc(s) { return encodeURIComponent(s); }
function fmtTime(ts) {
  if (!ts) return "";
  const d = new Date(ts * 1000);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "") + "." + String(d.getMilliseconds()).padStart(3, "0");
}
function badge(state) { return `<span class="badge ${esc(state)}">${esc(state)}</span>`; }
function instLink(name) { return `<a href="#/instance/${enc(name)}">${esc(name)}</a>`; }

/* A bearer token given on an instance page (logs are for the instance's proid or root), kept for the tab. */
function authHeaders(h) {
  const tok = sessionStorage.getItem("treadle-token");
  return tok ? Object.assign({ Authorization: "Bearer " + tok }, h) : h;
}

/* GET a JSON resource; a 404 answers null, other failures throw with the API's message. */
async function api(path) {
  const r = await fetch(path, { headers: authHeaders({ Accept: "application/json" }) });
  if (r.status === 404) return null;
  if (r.status === 401 && sessionStorage.getItem("treadle-token")) {
    sessionStorage.removeItem("treadle-token"); /* an unknown token: forgotten, the next read is a reader's */
    throw new Error("unknown bearer token (forgotten: reload)");
  }
  const j = await r.json().catch(() => null);
  if (!r.ok) throw new Error((j && j.message) || `${path}: HTTP ${r.status}`);
  return j;
}

/* Subscribe to a stream for the current page: onEvent(msg) for every live message after the snapshot,
 * and onEvent(null) once the snapshot is in (what changed between the page's first read and the
 * subscription is then read again).  The header says "live" once every stream of the page is. */
function stream(topic, params, onEvent) {
  const q = new URLSearchParams(params).toString();
  const es = new EventSource(`/stream/${topic}${q ? "?" + q : ""}`);
  let sowDone = false;
  es.onerror = () => setLive(false);
  es.onmessage = (e) => {
    let msg;
    try { msg = JSON.parse(e.data); } catch (_) { return; }
    if (msg.sow_end) {
      sowDone = es.sowDone = true;
      setLive(streams.every((s) => s.sowDone));
      onEvent(null);
      return;
    }
    if (sowDone) onEvent(msg);
  };
  streams.push(es);
  return es;
}
function setLive(on) {
  const el = document.getElementById("live");
  el.className = "live " + (on ? "on" : "off");
  el.textContent = on ? "live" : "offline";
}
/* Call fn at most once per ms, trailing. */
function debounce(fn, ms) {
  let t = null;
  return () => { if (t) clearTimeout(t); t = setTimeout(() => { t = null; fn(); }, ms); };
}
function showError(e) {
  main.insertAdjacentHTML("afterbegin", `<p class="err">${esc(e.message || e)}</p>`);
}

/* ------------------------------------------------------------------ overview */

function usageBar(used, cap, unit) {
  const pct = cap > 0 ? Math.min(100, Math.round((used / cap) * 100)) : 0;
  return `<div class="bar" title="${used} / ${cap} ${unit}"><i class="${pct > 90 ? "hi" : ""}" style="width:${pct}%"></i></div>
          <div class="barl">${used} / ${cap} ${unit} (${pct}%)</div>`;
}

async function pageOverview(gen) {
  const [servers, records, partitions, allocs, state] = await Promise.all([
    api("/scheduler/servers"), api("/server/"), api("/scheduler/partitions"), api("/scheduler/allocations"),
    api("/state/")]);
  if (gen !== pageGen) return;
  const rec = {};
  (records || []).forEach((s) => { rec[s._id] = s; });
  const count = { pending: 0, scheduled: 0, running: 0 };
  (state || []).forEach((i) => { count[i.state] = (count[i.state] || 0) + 1; });
  const blackouts = (records || []).filter((s) => s.blackout !== undefined);
  let h = `<h1>Cell</h1><div class="cards">
    <div class="card stat"><b id="n-servers">${(servers || []).length}</b><span>servers</span></div>
    <div class="card stat"><b id="n-running">${count.running}</b><span>running</span></div>
    <div class="card stat"><b id="n-scheduled">${count.scheduled}</b><span>scheduled</span></div>
    <div class="card stat"><b id="n-pending">${count.pending}</b><span>pending</span></div>
    <div class="card stat"><b>${(partitions || []).length}</b><span>partitions</span></div>
    <div class="card stat"><b>${blackouts.length}</b><span>blacked out</span></div></div>
    <h2>Servers</h2><table id="servers"><tr><th>server</th><th>state</th><th>agent</th><th>partition</th><th>parent</th>
    ${DIMS.map(([d]) => `<th>${d}</th>`).join("")}<th>apps</th></tr>`;
  for (const s of servers || []) {
    const r = rec[s.name] || {};
    h += `<tr data-server="${esc(s.name)}"><td><a href="#/apps?server=${enc(s.name)}">${esc(s.name)}</a></td>
      <td>${badge(r.state || s.state)}${r.blackout !== undefined ? ` <span class="badge down" title="${esc(r.blackout)}">blackout</span>` : ""}</td>
      <td>${r.present ? "present" : '<span class="err">absent</span>'}</td><td>${esc(s.partition)}</td><td>${esc(s.parent)}</td>
      ${DIMS.map(([d, u]) => `<td>${usageBar(s.used[d], s.capacity[d], u)}</td>`).join("")}
      <td class="num">${s.apps}</td></tr>`;
  }
  h += `</table><div class="grid2"><div><h2>Partitions</h2><table id="partitions"><tr><th>partition</th><th>servers</th></tr>`;
  for (const p of partitions || [])
    h += `<tr><td>${esc(p || "(default)")}</td><td class="num">${(servers || []).filter((s) => (s.partition || "") === p).length}</td></tr>`;
  h += `</table></div><div><h2>Blackouts</h2>`;
  h += blackouts.length ? `<table id="blackouts"><tr><th>server</th><th>reason</th></tr>${blackouts.map((s) =>
    `<tr><td>${esc(s._id)}</td><td>${esc(s.blackout)}</td></tr>`).join("")}</table>` : `<p class="muted" id="blackouts">none</p>`;
  h += `</div></div><h2>Allocations</h2><table id="allocations"><tr><th>allocation</th><th>partition</th><th>rank</th>
    ${DIMS.map(([d]) => `<th>${d} used / reserved</th>`).join("")}<th>apps</th><th>placed</th></tr>`;
  for (const a of allocs || [])
    h += `<tr><td>${esc(a.name || "(cell)")}</td><td>${esc(a.partition)}</td><td class="num">${a.rank}</td>
      ${DIMS.map(([d]) => `<td class="num">${a.used[d]} / ${Math.round(a.reserved[d])}</td>`).join("")}
      <td class="num">${a.apps}</td><td class="num">${a.placed}</td></tr>`;
  h += `</table>`;
  main.innerHTML = h;
  const refresh = debounce(() => { if (gen === pageGen) pageOverview(gen).catch(showError); }, 300);
  if (!streams.length) {
    stream("running", {}, refresh);
    stream("scheduled", {}, refresh);
  }
}

/* ---------------------------------------------------------------------- apps */

async function pageApps(gen, params) {
  const filter = params.get("match") || "", stateF = params.get("state") || "", serverF = params.get("server") || "";
  main.innerHTML = `<h1>Apps and instances</h1><div class="filters">
    <label>instance <input id="f-match" placeholder="proid.app*" value="${esc(filter)}"></label>
    <label>state <select id="f-state">${["", "pending", "scheduled", "running", "finished", "aborted", "killed", "terminated"]
      .map((s) => `<option value="${s}"${s === stateF ? " selected" : ""}>${s || "any"}</option>`).join("")}</select></label>
    <label>server <input id="f-server" placeholder="host" value="${esc(serverF)}"></label>
    <label><input type="checkbox" id="f-finished"${params.get("finished") === "1" ? " checked" : ""}> finished too</label></div>
    <h2>Apps</h2><table id="apps"></table><h2>Instances</h2><table id="instances"></table>`;
  const apply = () => {
    const p = new URLSearchParams();
    for (const [k, id] of [["match", "f-match"], ["state", "f-state"], ["server", "f-server"]]) {
      const v = document.getElementById(id).value.trim();
      if (v) p.set(k, v);
    }
    if (document.getElementById("f-finished").checked) p.set("finished", "1");
    history.replaceState(null, "", "#/apps" + (p.toString() ? "?" + p : ""));
    render(p);
  };
  ["f-match", "f-server"].forEach((id) => document.getElementById(id).addEventListener("input", debounce(apply, 250)));
  ["f-state", "f-finished"].forEach((id) => document.getElementById(id).addEventListener("change", apply));
  const render = async (p) => {
    const q = new URLSearchParams();
    if (p.get("match")) q.set("match", p.get("match"));
    if (p.get("finished") === "1" || ["finished", "aborted", "killed", "terminated"].includes(p.get("state") || "")) q.set("finished", "1");
    const list = (await api("/state/" + (q.toString() ? "?" + q : ""))) || [];
    if (gen !== pageGen) return;
    const rows = list.filter((i) => (!p.get("state") || i.state === p.get("state")) && (!p.get("server") || i.host === p.get("server")));
    const apps = {};
    for (const i of rows) {
      const app = i.name.replace(/#.*/, "");
      apps[app] = apps[app] || { pending: 0, scheduled: 0, running: 0, finished: 0 };
      apps[app][i.state in apps[app] ? i.state : "finished"]++;
    }
    document.getElementById("apps").innerHTML = `<tr><th>app</th><th>running</th><th>scheduled</th><th>pending</th><th>finished</th></tr>` +
      Object.keys(apps).sort().map((a) => `<tr><td><a href="#/apps?match=${enc(a)}">${esc(a)}</a></td>
        ${["running", "scheduled", "pending", "finished"].map((s) => `<td class="num">${apps[a][s]}</td>`).join("")}</tr>`).join("");
    document.getElementById("instances").innerHTML = `<tr><th>instance</th><th>state</th><th>host</th><th>detail</th></tr>` +
      rows.map((i) => `<tr data-instance="${esc(i.name)}" data-state="${esc(i.state)}"><td>${instLink(i.name)}</td><td>${badge(i.state)}</td>
        <td>${esc(i.host)}</td><td class="muted">${i.when ? fmtTime(i.when) + " " : ""}${i.exitcode !== undefined ? "exit " + i.exitcode : ""}${
        esc(i.aborted_reason || i.data || "")}</td></tr>`).join("") +
      (rows.length ? "" : `<tr><td colspan="4" class="muted">no instances</td></tr>`);
  };
  await render(params);
  const refresh = debounce(() => {
    if (gen === pageGen) render(new URLSearchParams((location.hash.split("?")[1]) || "")).catch(showError);
  }, 300);
  stream("running", {}, refresh);
  stream("scheduled", {}, refresh);
}

/* ------------------------------------------------------------------ instance */

const GOOD = ["service_running", "scheduled", "configured"];
const BAD = ["aborted", "killed", "service_exited", "finished", "deleted"];
function evClass(t) { return GOOD.includes(t) ? "good" : BAD.includes(t) ? "bad" : ""; }

async function pageInstance(gen, id) {
  const app = id.replace(/#.*/, "");
  /* the state from the list (a finished or unknown instance is no 404 there) */
  const stateOf = async () => ((await api("/state/?finished=1&match=" + enc(id))) || []).find((i) => i.name === id);
  const [st, trace, eps] = await Promise.all([stateOf(), api("/trace/" + enc(id)), api("/endpoint/" + enc(id))]);
  if (gen !== pageGen) return;
  const live = st && ["pending", "scheduled", "running"].includes(st.state);
  const manifest = live ? await api("/instance/" + enc(id)) : null;
  if (gen !== pageGen) return;
  let explain = null;
  if (st && st.state === "pending") explain = await api("/scheduler/explain/" + enc(id)).catch(() => null);
  if (gen !== pageGen) return;
  const events = (trace && trace.events) || [];
  main.innerHTML = `<h1>${esc(id)} <span id="state">${st ? badge(st.state) : badge("unknown")}</span></h1>
    <p class="muted">app <a href="#/apps?match=${enc(app)}">${esc(app)}</a>${st && st.host ? " &middot; host " + esc(st.host) : ""}</p>
    ${explain ? `<div class="card explain" id="explain"><b>Why pending:</b> ${esc(explain.explain)}</div>` : ""}
    <h2>Trace</h2><div class="strip" id="strip"></div><ul class="timeline" id="trace"></ul>
    <div class="grid2"><div><h2>Endpoints</h2><table id="endpoints">${endpointRows(eps)}</table></div>
    <div><h2>Manifest</h2><pre id="manifest">${manifest ? esc(JSON.stringify(manifest, null, 2)) : "(not scheduled)"}</pre></div></div>
    <h2>Log</h2><div id="logctl" class="muted"></div><pre id="log" class="log"></pre>`;
  logPanel(gen, id, st);
  const redrawEndpoints = debounce(async () => {
    const e = await api("/endpoint/" + enc(id)).catch(() => null);
    if (gen === pageGen && e) document.getElementById("endpoints").innerHTML = endpointRows(e);
  }, 200);
  stream("endpoints", { filter: id }, redrawEndpoints);
  const ul = document.getElementById("trace"), strip = document.getElementById("strip");
  const seen = new Set();
  const drawStrip = () => {
    if (!events.length) return;
    const t0 = events[0].timestamp, t1 = Math.max(events[events.length - 1].timestamp, t0 + 1);
    strip.innerHTML = events.map((e) => `<i class="${evClass(e.event_type)}" title="${esc(e.event_type)} ${fmtTime(e.timestamp)}"
      style="left:${(((e.timestamp - t0) / (t1 - t0)) * 98 + 1).toFixed(2)}%"></i>`).join("");
  };
  const add = (e, live) => {
    const key = `${e.timestamp}|${e.event_type}|${e.source}|${e.data}`;
    if (seen.has(key)) return;
    seen.add(key);
    ul.insertAdjacentHTML("beforeend", `<li class="${evClass(e.event_type)}${live ? " new" : ""}" data-type="${esc(e.event_type)}">
      <span class="t">${fmtTime(e.timestamp)}</span><span class="ty">${esc(e.event_type)}</span>
      ${e.data ? " " + esc(e.data) : ""}<span class="src">${esc(e.source)}</span></li>`);
  };
  events.forEach((e) => add(e, false));
  drawStrip();
  const refreshState = debounce(async () => {
    const s = await stateOf().catch(() => null);
    if (gen === pageGen && s) document.getElementById("state").innerHTML = badge(s.state);
  }, 200);
  const addLive = (e) => {
    if (seen.has(`${e.timestamp}|${e.event_type}|${e.source}|${e.data}`)) return;
    events.push(e);
    events.sort((a, b) => a.timestamp - b.timestamp);
    add(e, true);
    drawStrip();
    refreshState();
  };
  stream("trace", { filter: id }, async (m) => {
    if (m === null) { /* subscribed: what came since the first read */
      const t = await api("/trace/" + enc(id)).catch(() => null);
      if (gen === pageGen && t) t.events.forEach(addLive);
      return;
    }
    if (m.event && m.event.instanceid === id) addLive(m.event);
  });
}

function endpointRows(eps) {
  return `<tr><th>proto</th><th>endpoint</th><th>address</th></tr>` +
    ((eps || []).map((e) => `<tr data-endpoint="${esc(e.endpoint)}"><td>${esc(e.proto)}</td><td>${esc(e.endpoint)}</td><td>${esc(e.host)}:${e.port}</td></tr>`).join("") ||
      '<tr><td colspan="3" class="muted">none</td></tr>');
}

/* The instance's log on the server serving this page (GET /local-app/...?tail=N&follow=1, a fetch stream:
 * it may carry the token), for root and the instance's proid; others are asked for a token. */
async function logPanel(gen, id, st) {
  const ctl = document.getElementById("logctl"), pre = document.getElementById("log");
  const proid = id.split(".")[0];
  const who = await api("/whoami").catch(() => null);
  if (gen !== pageGen) return;
  if (!who || !(who.role === "root" || (who.role === "user" && who.user === proid))) {
    ctl.innerHTML = `The logs are for proid <b>${esc(proid)}</b> and root (you are ${esc(who ? who.role : "unknown")}).
      Token: <input id="token" type="password" size="24"> <button id="usetoken">use</button>`;
    document.getElementById("usetoken").onclick = () => {
      sessionStorage.setItem("treadle-token", document.getElementById("token").value);
      route();
    };
    return;
  }
  const c = await api("/local-app/" + enc(id) + "/running").catch(() => null);
  if (gen !== pageGen) return;
  if (!c) {
    ctl.textContent = `no container of this instance on this server${st && st.host ? " (its host: " + st.host + ")" : ""}`;
    return;
  }
  ctl.innerHTML = `container ${esc(c.uniq)} (${esc(c.state)}) &middot; service <select id="logsvc">${
    c.services.map((s) => `<option>${esc(s)}</option>`).join("")}<option value="/sys/container">(container)</option></select>`;
  const sel = document.getElementById("logsvc");
  let abort = null;
  const follow = async () => {
    if (abort) abort.abort();
    abort = new AbortController();
    const mine = { sowDone: true, close: () => abort.abort() };
    streams.push(mine);
    pre.textContent = "";
    const what = sel.value.startsWith("/sys/") ? "sys/container" : "service/" + enc(sel.value);
    try {
      const r = await fetch(`/local-app/${enc(id)}/${enc(c.uniq)}/${what}?tail=200&follow=1`,
        { headers: authHeaders({}), signal: abort.signal });
      if (!r.ok) { ctl.insertAdjacentHTML("beforeend", ` <span class="err">HTTP ${r.status}</span>`); return; }
      const rd = r.body.getReader(), dec = new TextDecoder();
      for (;;) {
        const { value, done } = await rd.read();
        if (done || gen !== pageGen) break;
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent = (pre.textContent + dec.decode(value, { stream: true })).split("\n").slice(-1000).join("\n");
        pre.dataset.lines = String(pre.textContent.split("\n").length);
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      }
    } catch (_) { /* aborted: another service, or another page */ }
  };
  sel.onchange = follow;
  follow();
}

/* -------------------------------------------------------------------- router */

function route() {
  streams.forEach((es) => es.close());
  streams = [];
  setLive(false);
  const gen = ++pageGen;
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  let page = "overview", p;
  if (path.startsWith("/instance/")) {
    page = "instance";
    p = pageInstance(gen, decodeURIComponent(path.slice("/instance/".length)));
  } else if (path.startsWith("/apps")) {
    page = "apps";
    p = pageApps(gen, params);
  } else
    p = pageOverview(gen);
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  document.body.dataset.page = page;
  p.then(() => { if (gen === pageGen) document.body.dataset.ready = String(gen); }).catch(showError);
}
window.addEventListener("hashchange", route);
route();
