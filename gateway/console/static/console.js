// The operator console's only script: refreshes the overview's figures every 5 s from
// /console/api/summary (same origin, the session cookie). Pages work without it.
"use strict";
(function () {
  const root = document.querySelector("[data-refresh]");
  if (!root) return;
  const url = root.getAttribute("data-refresh");

  function breakdown(list, values) {
    while (list.firstChild) list.removeChild(list.firstChild);
    Object.keys(values).sort().forEach(function (key) {
      const item = document.createElement("li");
      const name = document.createElement("span");
      const figure = document.createElement("b");
      name.textContent = key || "-";
      figure.textContent = String(Math.round(values[key]));
      item.append(name, " ", figure);
      list.appendChild(item);
    });
  }

  async function refresh() {
    if (document.hidden) return;
    let answer;
    try {
      answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (error) {
      return; // the replica is restarting: try again on the next tick
    }
    if (answer.status === 401) { window.location.reload(); return; }
    if (!answer.ok) return;
    const summary = await answer.json();
    const counters = summary.counters;
    document.querySelectorAll("[data-metric]").forEach(function (el) {
      const value = counters[el.getAttribute("data-metric")];
      if (typeof value === "number") el.textContent = String(Math.round(value));
    });
    document.querySelectorAll("[data-breakdown]").forEach(function (el) {
      const values = counters[el.getAttribute("data-breakdown")];
      if (values) breakdown(el, values);
    });
    const status = document.querySelector("[data-status]");
    if (status) status.textContent = counters.ready ? "ready" : "not ready";
    const rows = document.getElementById("deliveries");
    if (rows && summary.deliveries.length) rows.replaceChildren.apply(rows, summary.deliveries.map(row));
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text !== undefined) td.textContent = text;
    return td;
  }

  function row(d) {
    const tr = document.createElement("tr");
    const outcome = cell();
    const badge = document.createElement("span");
    badge.className = "badge " + (d.outcome === "accepted" ? "ok" : d.outcome === "quarantined" ? "warn" : "bad");
    badge.textContent = d.outcome;
    outcome.appendChild(badge);
    const keys = cell();
    d.entity_keys.forEach(function (key, i) {
      if (i) keys.append(", ");
      const link = document.createElement("a");
      link.href = "/console/trace?" + new URLSearchParams({ entity: key }).toString();
      link.textContent = key;
      keys.appendChild(link);
    });
    if (!d.entity_keys.length) keys.textContent = "-";
    const answered = new Date(d.at * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    tr.append(cell(answered, "when"), cell(d.kind), outcome, cell(d.delivery_id || "-", "id"), keys,
      cell(d.source), cell(String(d.latency_ms), "num"));
    return tr;
  }

  window.setInterval(refresh, 5000);
})();
