// Live updates by polling JSON endpoints; drag and drop for the upload form. No inline scripts (CSP).
"use strict";

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function pct(v) { return v === null || v === undefined ? "" : (100 * v).toFixed(2); }

// A conditional GET: with the ETag of the last answer, an unchanged resource comes back as an empty 304.
async function getJSON(url, etag) {
  const headers = {"Accept": "application/json"};
  if (etag) headers["If-None-Match"] = etag;
  const r = await fetch(url, {headers, credentials: "same-origin", cache: "no-store"});
  if (r.status === 304) return {unchanged: true, etag};
  if (!r.ok) throw new Error("HTTP " + r.status);
  return {unchanged: false, etag: r.headers.get("ETag"), data: await r.json()};
}

function poll(url, render, everyMs, stop) {
  let timer = null, etag = null, last = null;
  const tick = async () => {
    try {
      const got = await getJSON(url, etag);
      etag = got.etag;
      if (!got.unchanged) {
        last = got.data;
        render(last);
      }
      if (stop && last && stop(last)) return;
    } catch (e) { /* keep polling: the server may be restarting */ }
    timer = setTimeout(tick, document.hidden ? everyMs * 3 : everyMs);
  };
  tick();
  return () => clearTimeout(timer);
}

function renderReport(box, s) {
  box.replaceChildren();
  const r = s.result;
  if (s.status === "rejected") {
    box.append(el("p", {class: "error", id: "reject-reason"}, "Rejected: " + (s.message || (r && r.message) || "")));
  }
  if (s.status === "error") box.append(el("p", {class: "error"}, s.message));
  if (!r || !r.checks || (s.status !== "graded" && !(s.status === "error" || s.status === "queued" || s.status === "running"))) return;
  if (s.status !== "graded") box.append(el("p", {class: "muted"}, "Previous report:"));
  const sum = el("p", {id: "score"}, `Score ${r.score} of ${r.max_score} · lab ${r.passed ? "passed" : "not passed"}`);
  box.append(sum);
  box.append(checksTable("checks", r.checks, "").table);
  const metrics = Object.entries(r.metrics || {});
  if (metrics.length) {
    const dl = el("table", {id: "metrics"});
    for (const [k, v] of metrics) { const tr = el("tr"); tr.append(el("th", {}, k), el("td", {}, v === null ? "" : v.toFixed(4))); dl.append(tr); }
    box.append(el("h3", {}, "Metrics"), dl);
  }
  const timings = Object.entries(r.timings || {});
  if (timings.length) box.append(el("p", {class: "muted"}, "Timings: " + timings.map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(", ")));
  for (const n of r.notices || []) box.append(el("p", {class: "notice"}, n));
}

// While running: the verdicts judged so far (partial_checks), the check running now and how many still wait.
// Everything goes in through textContent (el), as in the final report.
function renderPartial(box, s) {
  box.replaceChildren();
  const done = s.partial_checks || [];
  const max = done.reduce((a, c) => a + c.max_points, 0);
  box.append(el("p", {id: "score-so-far"}, `Score so far ${s.partial_score ?? 0} of ${Math.round(max * 1e4) / 1e4}` +
    ` · ${done.length}${s.checks_total ? " of " + s.checks_total : ""} checks judged`));
  const {table: t, body} = checksTable("live-checks", done, " live-row");
  const running = s.current_check && !done.some((c) => c.id === s.current_check) ? s.current_check : "";
  if (running) {
    const tr = el("tr", {class: "check-running live-row"});
    tr.append(el("td", {}, running), el("td", {}), el("td", {}, "running"), el("td", {}), el("td", {}), el("td", {}));
    body.append(tr);
  }
  const waiting = Math.max(0, (s.checks_total || 0) - done.length - (running ? 1 : 0));
  if (waiting) {
    const tr = el("tr", {class: "check-waiting live-row"});
    tr.append(el("td", {}, `${waiting} more check${waiting === 1 ? "" : "s"}`), el("td", {}), el("td", {}, "waiting"),
              el("td", {}), el("td", {}), el("td", {}));
    body.append(tr);
  }
  box.append(t);
}

// The report's table of checks (id `id`), one row per check; `rowClass` is added to each row's class.
function checksTable(id, checks, rowClass) {
  const table = el("table", {id});
  const head = el("tr");
  for (const h of ["Check", "Target", "Result", "Points", "Time", "Message"]) head.append(el("th", {}, h));
  const thead = el("thead");
  thead.append(head);
  const body = el("tbody");
  table.append(thead, body);
  for (const c of checks) {
    const tr = el("tr", {class: "check-" + c.status + rowClass});
    tr.append(el("td", {}, c.id), el("td", {}, c.target), el("td", {}, c.status),
              el("td", {}, `${c.points} / ${c.max_points}`),
              el("td", {class: "secs"}, c.reused_from ? `reused from ${c.reused_from}` :
                 c.seconds === undefined || c.seconds === null ? "" : `${c.seconds.toFixed(2)} s`),
              el("td", {class: "msg"}, c.message));
    body.append(tr);
  }
  return {table, body};
}

function eta(seconds) {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  return `${Math.round(seconds / 60)} min`;
}

function initSubmission() {
  const live = document.getElementById("live");
  if (!live) return;
  const status = document.getElementById("status"), detail = document.getElementById("status-detail");
  const report = document.getElementById("report");
  poll(live.dataset.url, (s) => {
    status.textContent = s.status;
    status.className = "status status-" + s.status;
    let d = "";
    if (s.status === "queued" && s.queue_position) d = `position ${s.queue_position} in the queue` + (s.eta_s != null ? ` · about ${eta(s.eta_s)} to go` : "");
    if (s.status === "queued" && s.phase === "slow") d = "quick checks done, accuracy checks waiting" + (d ? " · " + d : "");
    if (s.status === "running") d = `running ${s.current_check || "(starting)"}` + (s.checks_total ? ` · check ${Math.min(s.checks_done, s.checks_total)} of ${s.checks_total}` : "");
    if (s.status === "running" && s.phase) d = (s.phase === "slow" ? "accuracy checks: " : "quick checks: ") + d;
    if (s.status === "graded") d = `score ${s.score} of ${s.max_score}`;
    detail.textContent = d;
    if ((s.status === "running" || s.status === "queued") && (s.partial_checks || []).length) renderPartial(report, s);
    else renderReport(report, s);
  }, 1500, (s) => ["graded", "rejected", "error"].includes(s.status));
}

function initLeaderboard() {
  const box = document.getElementById("leaderboard");
  if (!box) return;
  const tbody = box.querySelector("tbody");
  poll(box.dataset.url, (b) => {
    tbody.replaceChildren();
    const cols = b.columns.filter((c) => c.metric !== b.metric);
    for (const r of b.rows) {
      const tr = el("tr", r.me ? {class: "me"} : {});
      tr.append(el("td", {}, r.rank), el("td", {}, r.name), el("td", {}, pct(r.value)));
      for (const c of cols) tr.append(el("td", {}, pct(r.metrics[c.metric])));
      tr.append(el("td", {}, r.uploads), el("td", {}, r.at.slice(0, 19).replace("T", " ")));
      tbody.append(tr);
    }
  }, 5000);
}

function initQueue() {
  const q = document.getElementById("queue");
  if (q) {
    poll(q.dataset.url, (d) => {
      document.getElementById("q-queued").textContent = d.queued;
      document.getElementById("q-running").textContent = d.running;
      document.getElementById("q-workers").textContent = d.workers_alive;
      document.getElementById("q-oldest").textContent = d.oldest_waiting_s === null ? "—" : Math.round(d.oldest_waiting_s) + " s";
    }, 3000);
  }
  for (const row of document.querySelectorAll("tr.regrade")) {
    poll(row.dataset.url, (p) => {
      row.querySelector("progress").value = p.done;
      row.querySelector(".regrade-text").textContent = `${p.done} of ${p.total} done`;
    }, 3000, (p) => p.done >= p.total);
  }
}

function initUpload() {
  const zone = document.getElementById("dropzone"), input = document.getElementById("file");
  if (!zone || !input) return;
  const chosen = document.getElementById("chosen");
  const show = () => { chosen.textContent = input.files.length ? input.files[0].name : ""; };
  input.addEventListener("change", show);
  for (const ev of ["dragenter", "dragover"]) zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.add("over"); });
  for (const ev of ["dragleave", "drop"]) zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.remove("over"); });
  zone.addEventListener("drop", (e) => {
    if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; show(); }
  });
}

document.addEventListener("DOMContentLoaded", () => { initSubmission(); initLeaderboard(); initQueue(); initUpload(); });
