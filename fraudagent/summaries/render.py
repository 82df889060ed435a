"""A case summary for a ticket: the content a caller may see, rendered as Markdown, Jira ADF or a ServiceNow work note.

Redaction happens before rendering: only the caller's allowed fields are built,
and for a ticketing caller every string has card numbers, emails and IP
addresses replaced. Customer-written text appears only in `customer_text`,
quoted and marked untrusted, with the markup of each format neutralised so it
cannot become a link, an image, HTML or a break out of the work note's `[code]` block.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from fraudagent.agent.evidence import clean_untrusted
from fraudagent.core.logging import redact
from fraudagent.core.settings import SUMMARY_FIELDS
from fraudagent.store.cases import CaseRecord
from fraudagent.summaries.models import SummaryFormat

MEDIA_TYPES: dict[str, str] = {"markdown": "text/markdown", "jira": "application/json", "servicenow": "text/html"}
UNTRUSTED_LABEL = "Customer-written text (untrusted: quoted as data, not verified)"


def _scrub(value: Any, redact_pii: bool) -> Any:
    if isinstance(value, str):
        return redact(value) if redact_pii else value
    if isinstance(value, list):
        return [_scrub(v, redact_pii) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, redact_pii) for k, v in value.items()}
    return value


def summary_content(
    *,
    report: Mapping[str, Any],
    record: CaseRecord,
    fields: list[str],
    redact_pii: bool,
    evidence_lines: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The summary's fields, only those allowed, PII-redacted for a ticketing caller."""
    c = record.case
    cited = list(dict.fromkeys(i for f in report.get("findings", []) for i in f["evidence_ids"]))
    full: dict[str, Any] = {
        "case": {
            "case_id": c.case_id,
            "priority": c.priority.value,
            "opened_at": c.opened_at.isoformat(),
            "trigger": f"{c.trigger.kind.value}: {c.trigger.detail}".rstrip(": "),
            "status": record.status,
        },
        "account": c.account_id,
        "typology": report.get("typology"),
        "actions": list(report.get("recommended_actions", [])),
        "confidence": report.get("confidence"),
        "narrative": report.get("narrative", ""),
        "findings": [
            {"statement": f["statement"], "evidence_ids": f["evidence_ids"]} for f in report.get("findings", [])
        ],
        "unknowns": list(report.get("unknowns", [])),
        "similar_cases": {
            "summary": report.get("similar_cases_summary"),
            "cases": [f"{s['case_id']}: {s['typology']}, {s['disposition']}" for s in report.get("similar_cases", [])],
        },
        "customer_text": [{"source": "case note", "text": clean_untrusted(c.note, limit=500)}] if c.note else [],
        "evidence": [{"id": i, "line": evidence_lines[i]} for i in cited if evidence_lines and i in evidence_lines],
        "provenance": {
            "report_id": report.get("report_id"),
            "path": report.get("path"),
            "model": report.get("model"),
            "created_at": report.get("created_at"),
            "policy_version": report.get("policy_version") or None,
        },
    }
    allowed = [f for f in SUMMARY_FIELDS if f in fields]
    return {name: _scrub(full[name], redact_pii) for name in allowed}


def _title(content: Mapping[str, Any], case_id: str) -> str:
    title = f"Fraud case {case_id}"
    if content.get("typology"):
        title += f": {str(content['typology']).replace('_', ' ')}"
    if content.get("confidence") is not None:
        title += f" (confidence {content['confidence']:.2f})"
    return title


def _sections(content: Mapping[str, Any]) -> list[tuple[str, list[str], bool]]:
    """(heading, lines, untrusted) in order; shared by the three formats."""
    out: list[tuple[str, list[str], bool]] = []
    if "case" in content:
        c = content["case"]
        lines = [
            f"Priority: {c['priority']}",
            f"Opened: {c['opened_at']}",
            f"Trigger: {c['trigger']}",
            f"Status: {c['status']}",
        ]
        if "account" in content:
            lines.append(f"Account: {content['account']}")
        out.append(("Case", lines, False))
    elif "account" in content:
        out.append(("Case", [f"Account: {content['account']}"], False))
    if content.get("actions"):
        out.append(("Recommended actions (a human decides)", [a.replace("_", " ") for a in content["actions"]], False))
    if content.get("narrative"):
        out.append(("What happened", [content["narrative"]], False))
    if content.get("findings"):
        out.append(
            ("Findings", [f"{f['statement']} [{', '.join(f['evidence_ids'])}]" for f in content["findings"]], False)
        )
    if content.get("evidence"):
        out.append(("Evidence cited", [f"{e['id']}: {e['line']}" for e in content["evidence"]], False))
    if content.get("unknowns"):
        out.append(("Still unknown", content["unknowns"], False))
    similar = content.get("similar_cases") or {}
    if similar.get("summary") or similar.get("cases"):
        out.append(("Similar past cases", [s for s in [similar.get("summary"), *similar.get("cases", [])] if s], False))
    if content.get("customer_text"):
        out.append((UNTRUSTED_LABEL, [f"{t['source']}: «{t['text']}»" for t in content["customer_text"]], True))
    if content.get("provenance"):
        p = content["provenance"]
        out.append(
            (
                "Provenance",
                [f"report {p['report_id']}, path {p['path']}, model {p['model']}, drafted {p['created_at']}"],
                False,
            )
        )
    return out


# Enough to stop links, images, inline HTML and code spans; emphasis characters are left alone.
_MD_SPECIAL = re.compile(r"([\\`\[\]<>])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def to_markdown(content: Mapping[str, Any], case_id: str) -> str:
    lines = [f"## {_md(_title(content, case_id))}", ""]
    for heading, items, untrusted in _sections(content):
        lines.append(f"### {_md(heading)}")
        for item in items:
            lines.append(f"> [untrusted] {_md(item)}" if untrusted else f"- {_md(item)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _text(text: str, *marks: str) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text or " "}
    if marks:
        node["marks"] = [{"type": m} for m in marks]
    return node


def to_adf(content: Mapping[str, Any], case_id: str) -> dict[str, Any]:
    """Atlassian Document Format v1: doc > heading / paragraph / bulletList > listItem > paragraph > text."""
    nodes: list[dict[str, Any]] = [
        {"type": "heading", "attrs": {"level": 2}, "content": [_text(_title(content, case_id))]}
    ]
    for heading, items, untrusted in _sections(content):
        nodes.append({"type": "heading", "attrs": {"level": 3}, "content": [_text(heading)]})
        if untrusted:
            for item in items:
                nodes.append({"type": "paragraph", "content": [_text("[untrusted] ", "strong"), _text(item, "em")]})
        elif len(items) == 1 and heading in ("What happened",):
            nodes.append({"type": "paragraph", "content": [_text(items[0])]})
        else:
            nodes.append(
                {
                    "type": "bulletList",
                    "content": [
                        {"type": "listItem", "content": [{"type": "paragraph", "content": [_text(item)]}]}
                        for item in items
                    ],
                }
            )
    return {"version": 1, "type": "doc", "content": nodes}


def _html(text: str) -> str:
    # Square brackets too: a customer's "[/code]" must not end the work note's code block.
    return html.escape(text, quote=True).replace("[", "&#91;").replace("]", "&#93;")


def to_servicenow(content: Mapping[str, Any], case_id: str) -> str:
    """A work note: HTML inside [code]...[/code], which ServiceNow journal fields render as HTML."""
    parts = [f"<h2>{_html(_title(content, case_id))}</h2>"]
    for heading, items, untrusted in _sections(content):
        parts.append(f"<h3>{_html(heading)}</h3>")
        if untrusted:
            parts += [f"<blockquote><b>[untrusted]</b> <i>{_html(item)}</i></blockquote>" for item in items]
        else:
            parts.append("<ul>" + "".join(f"<li>{_html(item)}</li>" for item in items) + "</ul>")
    return "[code]" + "".join(parts) + "[/code]"


def render(fmt: SummaryFormat, content: Mapping[str, Any], case_id: str) -> str | dict[str, Any]:
    if fmt == "jira":
        return to_adf(content, case_id)
    if fmt == "servicenow":
        return to_servicenow(content, case_id)
    return to_markdown(content, case_id)
