"""What `init` and `demo` print: for people by default, one JSON document with `--json`."""

from __future__ import annotations

import json
import shlex
from typing import Any

from .account import Account, ProjectResult
from .demo import Loaded, format_duration

SAMPLE_REPORT = {"title": "Test report from curl", "description": "Sent by hand to try the API",
                 "category": "other", "priority": "low", "platform": "Windows",
                 "game_version": "0.1.0"}
KEY_PLACEHOLDER = "$BUGNET_API_KEY"


def submit_curl(base_url: str, api_key: str | None) -> str:
    """A ready-to-paste SDK submit, with the key or (not known here) a shell variable for it."""
    key_header = (shlex.quote(f"X-API-Key: {api_key}") if api_key
                  else f'"X-API-Key: {KEY_PLACEHOLDER}"')
    return (f"curl -X POST {base_url}/api/bugs/submit \\\n"
            f"  -H {key_header} -H 'Content-Type: application/json' \\\n"
            f"  -d {shlex.quote(json.dumps(SAMPLE_REPORT))}")


def bearer_curl(url: str) -> str:
    return f'curl -H "Authorization: Bearer $BUGNET_TOKEN" {url}'


def init_json(*, base_url: str, account: Account, result: ProjectResult) -> dict[str, Any]:
    project = result.project
    return {
        "url": base_url,
        "user": {"id": account.user["id"], "email": account.user["email"],
                 "created": account.created},
        "token": account.token,
        "project": {"id": project.get("id"), "name": project.get("name"),
                    "slug": project.get("slug"), "role": project.get("role", "owner"),
                    "created": result.created},
        "api_key": result.api_key,
        "api_key_masked": result.masked_key,
        "curl": submit_curl(base_url, result.api_key),
    }


def init_text(*, base_url: str, account: Account, result: ProjectResult,
              regenerate_command: str) -> str:
    project = result.project
    email = account.user["email"]
    name, slug = project.get("name"), project.get("slug")
    lines = [f"Signed up as {email}." if account.created
             else f"Logged in as {email} (existing account)."]
    if result.created:
        lines.append(f'Created project "{name}" (slug: {slug}).')
    else:
        lines.append(f'Project "{name}" (slug: {slug}) already exists; reusing it '
                     f"(your role: {project.get('role', 'member')}).")
    lines.append("")
    if result.api_key:
        fresh = "new" if result.created else "regenerated"
        lines += [f"API key ({fresh}): {result.api_key}",
                  "  Store it now: it is shown only this once. Game SDKs send it as X-API-Key."]
        if not result.created:
            lines.append("  The previous key has stopped working.")
    else:
        lines += [f"API key: {result.masked_key or '(hidden)'}"
                  " (shown in full only when the project was created)",
                  "  Lost it? Issue a new one (the old one stops working at once):",
                  f"    {regenerate_command}",
                  f"  The example below reads it from {KEY_PLACEHOLDER}."]
    lines += ["", "Send a bug report the way a game does:",
              _indent(submit_curl(base_url, result.api_key)), "",
              "Your bearer token for the studio API (valid 7 days):",
              f"  export BUGNET_TOKEN={account.token}",
              "  " + bearer_curl(f"{base_url}/api/projects/{slug}/bugs")]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _plural(count: Any, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _rate(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2f}%"


def describe_regression(r: dict[str, Any], bug_numbers: dict[str, Any]) -> str:
    details = r.get("details") or {}
    kind, version, previous = r.get("kind"), r.get("version"), r.get("previous_version")
    head = f"{kind:<11} {version} (after {previous})"
    if kind == "crash_rate":
        return (f"{head}: crash-free {_rate(details.get('crash_free_rate'))}, "
                f"was {_rate(details.get('previous_crash_free_rate'))}")
    if kind == "frame_time":
        return (f"{head}: p50 frame time {details.get('p50_frame_time_ms')} ms, was "
                f"{details.get('previous_p50_frame_time_ms')} ms")
    if kind == "recurrence":
        number = bug_numbers.get(r.get("bug_id") or "")
        which = f"bug #{number}" if number else "a fixed bug"
        return f"{head}: {which} came back after it was resolved"
    return head


def demo_json(*, base_url: str, account: Account, loaded: Loaded, summary: dict[str, Any],
              links: dict[str, str]) -> dict[str, Any]:
    project = loaded.project
    return {
        "url": base_url,
        "user": {"id": account.user["id"], "email": account.user["email"],
                 "created": account.created},
        "token": account.token,
        "project": {"id": project.get("id"), "name": project.get("name"),
                    "slug": project.get("slug"), "created": loaded.created},
        "already_loaded": loaded.already_loaded,
        "replaced": loaded.replaced,
        "seconds": round(loaded.seconds, 1),
        "sent": {"sdk_requests": loaded.sdk_requests, "bug_reports": loaded.reports_sent,
                 "sessions": loaded.sessions_sent, "snapshots": loaded.snapshots_sent},
        "rate_limit": {"public_per_minute": loaded.public_limit,
                       "estimate_seconds": round(loaded.estimate_seconds, 1),
                       "paced_seconds": round(loaded.paced_seconds, 1),
                       "rate_limited": loaded.rate_limited},
        "new_regressions": loaded.new_regressions,
        "summary": summary,
        "links": links,
    }


def demo_text(*, base_url: str, account: Account, loaded: Loaded, summary: dict[str, Any],
              links: dict[str, str], bug_numbers: dict[str, Any]) -> str:
    project = loaded.project
    slug = project.get("slug")
    if loaded.already_loaded:
        lines = [f'The demo is already loaded in "{project.get("name")}" ({slug}) of '
                 f"{account.user['email']}; `bugnet demo --reset` loads it afresh."]
    else:
        lines = [f'Loaded the demo into "{project.get("name")}" ({slug}) of '
                 f"{account.user['email']} in {format_duration(loaded.seconds)}: "
                 f"{loaded.reports_sent} bug reports, {loaded.sessions_sent} sessions, "
                 f"{loaded.snapshots_sent} performance snapshots."]
        if loaded.paced_seconds >= 1 or loaded.rate_limited:
            lines.append(f"  ({format_duration(loaded.paced_seconds)} of it waiting for the "
                         f"gateway's limit of {loaded.public_limit} SDK requests a minute)")
    lines += ["",
              f"Bugs: {summary['bugs']}, {summary['open_bugs']} open; {summary['crash_bugs']} "
              f"of them crashes ({_plural(summary['crash_signatures'], 'signature')}). "
              f"Sessions: {summary['sessions']}, {_rate(summary['crash_free_rate'])} "
              "crash-free.",
              "Releases:"]
    for r in summary["releases"]:
        lines.append(f"  {r['version']:<8} {r['sessions']:>5} sessions  crash-free "
                     f"{_rate(r['crash_free_rate']):>7}  {r['bugs']:>3} bugs  "
                     f"{_plural(r['new_signatures'], 'new crash signature')}")
    regressions = summary["regressions"]
    open_count = sum(1 for r in regressions if r.get("status") == "open")
    lines.append(f"Regressions ({open_count} open):")
    lines += [f"  {describe_regression(r, bug_numbers)}" for r in regressions]
    lines += ["", "Open them with your bearer token (valid 7 days):",
              f"  export BUGNET_TOKEN={account.token}"]
    width = max(len(name) for name in links)
    lines += [f"  {name:<{width}}  {bearer_curl(url)}" for name, url in links.items()]
    return "\n".join(lines)
