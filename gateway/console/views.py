"""The console's pages as HTML (pure): every value escaped, no inline script or style.

Each function takes plain data (counters, deliveries, a trace document) and returns the
markup; app.py does the HTTP. The one script (static/console.js) refreshes the overview's
figures from /console/api/summary; everything else works without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

PREFIX = "/console"


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _unix_when(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def when(text: str | None) -> str:
    """An ISO-8601 time as a person reads it (UTC, to the second); other text as it is."""
    if not text:
        return "-"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def trace_link(entity: str) -> str:
    return f'<a href="{PREFIX}/trace?{e(urlencode({"entity": entity}))}">{e(entity)}</a>'


def page(title: str, body: str, *, csrf: str | None, replica: str, entity: str = "") -> str:
    """The frame every page shares; `csrf` None: not logged in (no navigation)."""
    nav = ""
    if csrf is not None:
        nav = f"""
  <nav>
    <a href="{PREFIX}/">Overview</a>
    <a href="{PREFIX}/dead-letters">Dead letters &amp; quarantine</a>
  </nav>
  <form class="search" method="get" action="{PREFIX}/trace" role="search">
    <input name="entity" value="{e(entity)}" placeholder="Order, return or mfSkuId:place"
           aria-label="Entity to trace" required maxlength="200">
    <button type="submit">Trace</button>
  </form>
  <form class="logout" method="post" action="{PREFIX}/logout">
    <input type="hidden" name="csrf" value="{e(csrf)}">
    <button type="submit">Log out</button>
  </form>"""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{e(title)} · OC event gateway</title>
<link rel="stylesheet" href="{PREFIX}/static/console.css">
<script src="{PREFIX}/static/console.js" defer></script>
</head>
<body>
<header>
  <a class="brand" href="{PREFIX}/">OC event gateway</a>
  <span class="replica">{e(replica)}</span>{nav}
</header>
<main>
<h1>{e(title)}</h1>
{body}
</main>
</body>
</html>
"""


def login(message: str | None, csrf: str) -> str:
    note = f'<p class="error" role="alert">{e(message)}</p>' if message else ""
    return f"""{note}
<form class="login" method="post" action="{PREFIX}/login">
  <input type="hidden" name="csrf" value="{e(csrf)}">
  <label for="token">Console token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required>
  <button type="submit">Log in</button>
</form>
<p class="hint">The token is GATEWAY_CONSOLE_TOKEN (or the file GATEWAY_CONSOLE_TOKEN_FILE
names). It is sent in this form's body only, never in a URL.</p>
"""


def _breakdown(name: str, values: Mapping[str, float]) -> str:
    items = "".join(
        f"<li><span>{e(k or '-')}</span> <b>{int(v)}</b></li>" for k, v in sorted(values.items())
    )
    return f'<ul class="breakdown" data-breakdown="{e(name)}">{items}</ul>'


def _card(
    label: str,
    metric: str,
    value: float,
    breakdown: str | None = None,
    values: Mapping[str, float] | None = None,
    warn: bool = False,
) -> str:
    more = _breakdown(breakdown, values or {}) if breakdown else ""
    cls = "card warn" if warn and value else "card"
    return (
        f'<section class="{cls}"><h2>{e(label)}</h2>'
        f'<p class="figure" data-metric="{e(metric)}">{int(value)}</p>{more}</section>'
    )


def delivery_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return '<tr><td colspan="7" class="empty">No callback since this replica started.</td></tr>'
    out = []
    for d in rows:
        keys = ", ".join(trace_link(k) for k in d["entity_keys"]) or "-"
        outcome = d["outcome"]
        badge = "ok" if outcome == "accepted" else "bad" if outcome != "quarantined" else "warn"
        out.append(
            f'<tr><td class="when">{e(_unix_when(d["at"]))}</td><td>{e(d["kind"])}</td>'
            f'<td><span class="badge {badge}">{e(outcome)}</span></td>'
            f'<td class="id">{e(d["delivery_id"] or "-")}</td><td>{keys}</td>'
            f'<td>{e(d["source"])}</td><td class="num">{e(d["latency_ms"])}</td></tr>'
        )
    return "".join(out)


def overview(c: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    status = "ready" if c["ready"] else "not ready"
    insecure = (
        '<p class="error">INSECURE: callbacks are accepted without verification.</p>'
        if c["insecure"]
        else ""
    )
    cards = "".join(
        [
            _card("Received", "received_total", c["received_total"], "received", c["received"]),
            _card("Accepted", "accepted_total", c["accepted_total"], "accepted", c["accepted"]),
            _card("Refused", "refused_total", c["refused_total"], "refused", c["refused"], True),
            _card("In flight", "in_flight", c["in_flight"]),
            _card("Spool depth", "spool_depth", c["spool_depth"], warn=True),
            _card("Processor lag", "processor_lag", c["processor_lag"], warn=True),
            _card(
                "Published", "published_total", c["published_total"], "published", c["published"]
            ),
            _card(
                "Dead-lettered",
                "dead_lettered_total",
                c["dead_lettered_total"],
                "dead_lettered",
                c["dead_lettered"],
                True,
            ),
            _card(
                "Quarantined",
                "quarantined_total",
                c["quarantined_total"],
                "quarantined",
                c["quarantined"],
                True,
            ),
        ]
    )
    return f"""<div data-refresh="{PREFIX}/api/summary">
<p class="status">This replica is <b data-status>{e(status)}</b>; figures since it started,
refreshed every 5 s.</p>{insecure}
<div class="cards">{cards}</div>
<h2>Latest deliveries</h2>
<table class="deliveries">
<thead><tr><th>Answered</th><th>Kind</th><th>Outcome</th><th>Delivery</th><th>Entities</th>
<th>Source</th><th>ms</th></tr></thead>
<tbody id="deliveries">{delivery_rows(rows)}</tbody>
</table>
</div>"""


def _where(at: Mapping[str, Any] | None) -> str:
    if not at:
        return "-"
    return f"{e(at['topic'])}/{e(at['partition'])}/{e(at['offset'])}"


def _json(value: object) -> str:
    return f"<pre>{e(json.dumps(value, indent=2, ensure_ascii=False))}</pre>"


def _item(item: Mapping[str, Any]) -> str:
    outcome = item["outcome"]
    badge = {"published": "ok", "duplicate": "muted", "absorbed": "muted"}.get(outcome, "bad")
    flags = []
    if item.get("previous_status"):
        flags.append(f"after {e(item['previous_status'])}")
    if item.get("regressed"):
        flags.append('<span class="badge warn">regressed</span>')
    if item.get("reconciled"):
        flags.append("reconciled")
    events = []
    for ev in item["events"]:
        found = ev["found"]
        where = ", ".join(_where(f) for f in found) if found else ""
        mark = (
            f'<span class="badge ok">found</span> {where}'
            if found
            else '<span class="badge bad">NOT FOUND</span>'
        )
        events.append(
            f'<li class="event">{e(ev["type"])} <code>{e(ev["ce_id"])}</code> {mark}</li>'
        )
    oc = f" (OC {e(item['oc_status'])})" if item.get("oc_status") else ""
    return (
        f"<li>item {e(item['index'])}: <b>{e(item['status'] or '-')}</b>{oc} at "
        f'{e(when(item["occurred_at"]))} → <span class="badge {badge}">{e(outcome)}</span> '
        f"{e(item['reason'])} {' '.join(flags)}<ul>{''.join(events)}</ul></li>"
    )


def _delivery(number: int, d: Mapping[str, Any]) -> str:
    outcome = d["outcome"]
    badge = {"published": "ok", "duplicate": "muted", "absorbed": "muted"}.get(outcome, "bad")
    letters = "".join(
        f"<li>dead letter {_where(x['at'])}: {e(x['reason'])} ({e(x['attempts'])} attempts)</li>"
        for x in d["dead_letters"]
    )
    error = f'<p class="error">Cannot be processed: {e(d["error"])}</p>' if d["error"] else ""
    return f"""<article class="delivery">
<h3>{number}. Received {e(when(d["received_at"]))}
<span class="badge {badge}">{e(outcome)}</span></h3>
<dl>
<dt>Delivery</dt><dd class="id">{e(d["delivery_id"])}</dd>
<dt>Kind</dt><dd>{e(d["kind"])} {e(d["source"])}</dd>
<dt>Verified by</dt><dd>{e(", ".join(d["verified"]) or "-")}</dd>
<dt>Source address</dt><dd>{e(d["source_address"] or "not recorded")}</dd>
<dt>Raw record</dt><dd>{_where(d["at"])}</dd>
</dl>
{error}<ul class="items">{"".join(_item(i) for i in d["items"])}{letters}</ul>
<details><summary>Headers and body (personal data as the topic's policy shows it)</summary>
{_json(d["headers"])}{_json(d["body"])}</details>
</article>"""


def _event_rows(events: Iterable[Mapping[str, Any]]) -> str:
    rows = []
    for ev in events:
        enrichment = ev.get("enrichment") or {}
        follow = ev.get("follow_up") or {}
        status = ev.get("status") or ""
        if ev.get("previous_status"):
            status += f" (after {ev['previous_status']})"
        regressed = ' <span class="badge warn">regressed</span>' if ev.get("regressed") else ""
        rows.append(
            f'<tr><td class="when">{e(when(ev["at"]["timestamp"]))}</td><td>{e(ev["type"])}</td>'
            f'<td class="id">{e(ev["ce_id"])}</td><td>{e(status)}{regressed}</td>'
            f"<td>{e(enrichment.get('status', ''))}</td><td>{e(follow.get('state', ''))}</td>"
            f"<td>{_where(ev['at'])}</td></tr>"
        )
    return "".join(rows) or '<tr><td colspan="7" class="empty">No event found.</td></tr>'


def _state(state: Mapping[str, Any]) -> str:
    rows = []
    for source, entries in (("worked out", state["worked_out"]), ("changelog", state["changelog"])):
        for s in entries or ():
            if s.get("forgotten"):
                rows.append(_row([e(source), e(s["kind"]), "forgotten", "", "", "", ""], False))
                continue
            rows.append(
                _row(
                    [
                        e(source),
                        e(s["kind"]),
                        e(s["status"] or "-"),
                        e(s["oc_status"] or "-"),
                        e(when(s["occurred_at"])),
                        e(len(s["recent_deliveries"])),
                        e(len(s["follow_ups"])),
                    ],
                    False,
                )
            )
    body = "".join(rows) or '<tr><td colspan="7" class="empty">No state: nothing found.</td></tr>'
    return (
        "<table><thead><tr><th>From</th><th>Kind</th><th>Status</th><th>OC status</th>"
        "<th>Status time (OC)</th><th>Recent deliveries</th><th>Follow-ups owed</th></tr>"
        f"</thead><tbody>{body}</tbody></table>"
    )


def trace_page(doc: Mapping[str, Any]) -> str:
    problems = "".join(f"<li>{e(p)}</li>" for p in doc["problems"])
    problem_box = (
        f'<section class="problems" role="alert"><h2>Problems ({len(doc["problems"])})</h2>'
        f"<ul>{problems}</ul></section>"
        if problems
        else '<p class="fine">No problem found: every decision\'s event is on its topic.</p>'
    )
    deliveries = "".join(_delivery(n, d) for n, d in enumerate(doc["deliveries"], 1))
    quarantined = "".join(
        f'<li>{e(when(q["received_at"]))} delivery <span class="id">{e(q["delivery_id"])}</span>: '
        f"{e(q['reason'])}</li>"
        for q in doc["quarantined"]
    )
    searched = "".join(
        f"<li>{e(s['what'])}: {e(s['topic'])} "
        f"{'all partitions' if s['partition'] is None else 'partition ' + e(s['partition'])} "
        f"from {e(when(s['since']) if s['since'] else 'the start')}: {e(s['found'])}</li>"
        for s in doc["searched"]
    )
    stored = f"{PREFIX}/trace?{e(urlencode({'entity': doc['entity'], 'state': '1'}))}"
    return f"""<p class="status">On the {e(doc["log"])} log, {e(doc["history"])};
answered in {e(doc["elapsed_s"])} s. <a href="{stored}">With the processor's stored state</a>
(reads the state changelog too).</p>
{problem_box}
<h2>Deliveries ({len(doc["deliveries"])})</h2>
{deliveries or '<p class="empty">No raw delivery found.</p>'}
<h2>Events ({len(doc["events"])})</h2>
<table class="events"><thead><tr><th>Published</th><th>Type</th><th>ce_id</th><th>Status</th>
<th>Enrichment</th><th>Follow-up</th><th>Where</th></tr></thead>
<tbody>{_event_rows(doc["events"])}</tbody></table>
{"<h2>Quarantined</h2><ul>" + quarantined + "</ul>" if quarantined else ""}
<h2>State</h2>{_state(doc["state"])}
<h2>Searched</h2><ul class="searched">{searched}</ul>"""


def _row(cells: Iterable[str], first_when: bool = True) -> str:
    parts = [
        f'<td class="when">{c}</td>' if i == 0 and first_when else f"<td>{c}</td>"
        for i, c in enumerate(cells)
    ]
    return f"<tr>{''.join(parts)}</tr>"


def dead_letters(dlq: Sequence[Mapping[str, Any]], held: Sequence[Mapping[str, Any]]) -> str:
    dlq_rows = (
        "".join(
            _row(
                [
                    e(when(d["failed_at"])),
                    trace_link(d["key"]) if d["key"] else "-",
                    e(d["dead_letter"]),
                    e(d["reason"]),
                    e(d["attempts"]),
                    f'<span class="id">{e(d["delivery_id"])}</span>',
                ]
            )
            for d in dlq
        )
        or '<tr><td colspan="6" class="empty">The DLQ is empty.</td></tr>'
    )
    held_rows = (
        "".join(
            _row(
                [
                    e(when(q["received_at"])),
                    e(q["kind"]),
                    e(q["reason"]),
                    f'<span class="id">{e(q["delivery_id"])}</span>',
                ]
            )
            for q in held
        )
        or '<tr><td colspan="4" class="empty">Nothing is quarantined.</td></tr>'
    )
    return f"""<p class="status">The newest 100 of the last 7 days, read from the log (all
replicas). <code>gateway dlq redrive</code> sends dead letters back once the cause is fixed.</p>
<h2>Dead letters</h2>
<table><thead><tr><th>Failed</th><th>Entity</th><th>What</th><th>Reason</th><th>Attempts</th>
<th>Delivery</th></tr></thead><tbody>{dlq_rows}</tbody></table>
<h2>Quarantine</h2>
<table><thead><tr><th>Received</th><th>Kind</th><th>Reason</th><th>Delivery</th></tr></thead>
<tbody>{held_rows}</tbody></table>"""
