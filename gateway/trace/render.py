"""A trace's document (story.Story.to_json) as text for a terminal (pure)."""

from __future__ import annotations

import json
from typing import Any


def _where(at: dict[str, Any] | None) -> str:
    if not at:
        return "-"
    return f"{at['topic']}/{at['partition']}/{at['offset']}"


def _status(item: dict[str, Any]) -> str:
    status = item.get("status") or "-"
    oc = item.get("oc_status")
    return f"{status} (OC {oc!r})" if oc else status


def _item_lines(item: dict[str, Any]) -> list[str]:
    outcome = item["outcome"].upper() if item["outcome"] == "published" else item["outcome"]
    flags = []
    if item.get("previous_status"):
        flags.append(f"after {item['previous_status']}")
    if item.get("regressed"):
        flags.append("REGRESSED")
    if item.get("reconciled"):
        flags.append("reconciled")
    extra = f"; {', '.join(flags)}" if flags else ""
    lines = [
        f"     item {item['index']}: {_status(item)} at {item['occurred_at']} -> "
        f"{outcome} ({item['reason']}{extra})"
    ]
    for event in item["events"]:
        found = event["found"]
        where = ", ".join(_where(f) for f in found) if found else "NOT FOUND"
        lines.append(f"        {event['type']} {event['ce_id']} -> {where}")
    return lines


def _delivery_lines(number: int, d: dict[str, Any]) -> list[str]:
    verified = ",".join(d["verified"]) or "-"
    lines = [
        f"  {number}. {d['received_at']}  {d['kind'] or '?'} {d['source']}  "
        f"delivery {d['delivery_id']}  verified: {verified}  "
        f"from: {d['source_address'] or 'not recorded'}",
        f"     raw {_where(d['at'])}  outcome: {d['outcome'].upper()}",
    ]
    if d["error"]:
        lines.append(f"     cannot be processed: {d['error']}")
    for letter in d["dead_letters"]:
        lines.append(
            f"     dead letter {_where(letter['at'])}: {letter['reason']} "
            f"({letter['attempts']} attempts, {letter['failed_at']})"
        )
    for item in d["items"]:
        lines += _item_lines(item)
    headers = " ".join(f"{k}={v}" for k, v in d["headers"].items())
    lines.append(f"     headers: {headers}")
    lines.append(f"     body: {json.dumps(d['body'], ensure_ascii=False)}")
    return lines


def _event_lines(e: dict[str, Any]) -> list[str]:
    enrichment = e.get("enrichment") or {}
    parts = [f"  {e['at']['timestamp']}  {e['type']}  {e['ce_id']}"]
    if e.get("status"):
        previous = e.get("previous_status") or "-"
        regressed = "  REGRESSED" if e.get("regressed") else ""
        parts.append(f"     status {e['status']} (previous {previous}){regressed}")
    if e.get("enriches_event_id"):
        parts.append(f"     enriches {e['enriches_event_id']}")
    if enrichment:
        missing = ", ".join(enrichment.get("missing") or []) or "nothing"
        parts.append(f"     enrichment {enrichment.get('status')} (missing: {missing})")
    follow = e.get("follow_up")
    if follow:
        detail = follow.get("by") or follow.get("reason") or ", ".join(follow.get("missing", []))
        parts.append(f"     follow-up {follow['state']}: {detail}")
    if e.get("stock_levels"):
        parts.append(f"     stock levels: {', '.join(e['stock_levels'])}")
    explained = "" if e["explained"] else "  (no decision here asked for it)"
    parts.append(f"     at {_where(e['at'])}{explained}")
    return parts


def _state_lines(state: dict[str, Any]) -> list[str]:
    lines = []
    for label, entries in (("worked out", state["worked_out"]), ("changelog", state["changelog"])):
        if entries is None:
            continue
        for s in entries:
            if s.get("forgotten"):
                lines.append(f"  {label}: {s['kind']}: forgotten (state expired)")
                continue
            owed = len(s["follow_ups"])
            lines.append(
                f"  {label}: {s['kind']} {s['status'] or '-'} (OC {s['oc_status']!r}) "
                f"since {s['occurred_at'] or '-'}; {len(s['recent_deliveries'])} recent "
                f"deliveries; {owed} follow-ups owed"
            )
    return lines or ["  nothing: no raw record found"]


def render_text(doc: dict[str, Any]) -> str:
    out = [
        f"Trace of {doc['entity']} on the {doc['log']} log, {doc['history']}"
        + (f"; {doc['elapsed_s']} s" if doc.get("elapsed_s") is not None else ""),
        "",
    ]
    if doc["problems"]:
        out.append(f"PROBLEMS ({len(doc['problems'])})")
        out += [f"  ! {p}" for p in doc["problems"]]
        out.append("")
    out.append(f"DELIVERIES ({len(doc['deliveries'])}, in the order the processor read them)")
    for number, delivery in enumerate(doc["deliveries"], 1):
        out += _delivery_lines(number, delivery)
    out += ["", f"EVENTS ({len(doc['events'])})"]
    for event in doc["events"]:
        out += _event_lines(event)
    if doc["quarantined"]:
        out += ["", f"QUARANTINED ({len(doc['quarantined'])})"]
        for q in doc["quarantined"]:
            out.append(f"  {q['received_at']}  delivery {q['delivery_id']}: {q['reason']}")
            out.append(f"     body: {json.dumps(q['body'], ensure_ascii=False)}")
    out += ["", "STATE"]
    out += _state_lines(doc["state"])
    out += ["", "SEARCHED"]
    for s in doc["searched"]:
        where = "all partitions" if s["partition"] is None else f"partition {s['partition']}"
        out.append(
            f"  {s['what']}: {s['topic']} {where} from {s['since'] or 'the start'}: {s['found']}"
        )
    return "\n".join(out) + "\n"
