// The cluster as this node sees it, refreshed every second from /v1/*.
// Every value is written with textContent: nothing from the cluster is
// ever parsed as HTML.
"use strict";

const REFRESH_MS = 1000;
let members = [];
let fetchedAt = 0;

function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + (s % 60) + " s";
  const h = Math.floor(m / 60);
  if (h < 48) return h + " h " + (m % 60) + " min";
  return Math.floor(h / 24) + " d " + (h % 24) + " h";
}

// A time as ISO 8601 in the browser's zone, with its offset:
// 2026-12-07T04:05:06.789+01:00.
function iso(ms) {
  const d = new Date(ms);
  const pad = (n, w) => String(Math.abs(n)).padStart(w || 2, "0");
  const off = -d.getTimezoneOffset();
  const zone = (off >= 0 ? "+" : "-") + pad(Math.floor(Math.abs(off) / 60)) + ":" + pad(Math.abs(off) % 60);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
    "T" + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
    "." + pad(d.getMilliseconds(), 3) + zone;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function renderMembers() {
  const body = document.getElementById("members");
  const elapsed = Date.now() - fetchedAt;
  const rows = members.map((m) => {
    const row = document.createElement("tr");
    row.dataset.member = m.name;
    row.dataset.state = m.state;
    cell(row, m.name + (m.local ? " (this node)" : ""));
    cell(row, m.address);
    cell(row, m.state, "state " + m.state);
    cell(row, duration(m.in_state_ms + elapsed), "num");
    const rtt = m.last_probe_rtt_ms;
    if (rtt === null || rtt === undefined) {
      cell(row, "–", "num");
    } else if (m.last_probe_stale) {
      // From before the member stopped answering, or long ago.
      const td = cell(row, rtt.toFixed(2) + " ms (stale, " + iso(m.last_probe_unix_ms) + ")", "num stale");
      td.title = "last acked probe at " + iso(m.last_probe_unix_ms);
    } else {
      cell(row, rtt.toFixed(2) + " ms", "num");
    }
    cell(row, String(m.incarnation), "num");
    cell(row, m.meta);
    return row;
  });
  body.replaceChildren(...rows);
}

function renderHealth(h) {
  document.getElementById("node").textContent = h.node + " (" + h.address + ")";
  const status = document.getElementById("status");
  status.textContent = h.status;
  status.className = h.status === "running" ? "status-running" : "status-other";
  document.getElementById("health").textContent = String(h.health_score);
  const c = h.members;
  document.getElementById("counts").textContent =
    c.alive + " alive, " + c.suspect + " suspect, " + c.dead + " dead, " + c.left + " left";
  const ready = document.getElementById("ready");
  ready.textContent = h.ready ? "ready" : "not ready: " + (h.not_ready || []).join("; ");
  ready.className = h.ready ? "status-running" : "status-other";
}

function renderEvents(events) {
  const list = document.getElementById("events");
  const items = events.slice(0, 30).map((e) => {
    const li = document.createElement("li");
    li.dataset.kind = e.kind;
    // Member events are named by the state the member moved to (join,
    // update, suspect, alive, dead, left), as the table names states.
    li.textContent = iso(e.at_unix_ms) + " " + e.kind + (e.node ? " " + e.node : "") + ": " + e.detail;
    return li;
  });
  list.replaceChildren(...items);
}

async function json(path) {
  const response = await fetch(path, { cache: "no-store" });
  // /v1/health answers 503 with a body when the node is not running.
  return response.json();
}

async function refresh() {
  try {
    const [health, list, events] = await Promise.all([
      json("/v1/health"),
      json("/v1/members"),
      json("/v1/events"),
    ]);
    if (Array.isArray(list)) {
      members = list;
      fetchedAt = Date.now();
    }
    if (health.node !== undefined) renderHealth(health);
    if (Array.isArray(events)) renderEvents(events);
    renderMembers();
    document.getElementById("updated").textContent = iso(Date.now());
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = "cannot reach the agent: " + e;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
