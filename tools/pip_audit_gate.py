"""``make audit``'s verdict on a pip-audit run: a check that cannot fail is not a check.

pip-audit answers "No known vulnerabilities found" and exits 0 even when it could look up
no package at all (no network, a mirror without the vulnerability data): every package is
then merely *skipped*. This reads pip-audit's JSON report and its exit status and fails,
saying why, when

* pip-audit itself failed or wrote no report (it could not reach the service, …);
* any package has a known vulnerability;
* fewer than :data:`MIN_CHECKED_SHARE` of the packages could be checked (a few skips are
  normal: local builds such as ``torch …+cpu`` are not on PyPI; they are listed).

Usage: ``python tools/pip_audit_gate.py REPORT.json PIP_AUDIT_EXIT_STATUS [--unchecked-ok]``;
``--unchecked-ok`` (an offline machine, whose registry mirror has no vulnerability data)
turns "checked nothing" into a loud warning instead of a failure; known vulnerabilities
still fail.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: The share of installed packages that must have been looked up for a pass.
MIN_CHECKED_SHARE = 0.5


def verdict(report_path: Path, status: int) -> tuple[int, list[str]]:
    """The exit status of ``make audit`` and the lines to print."""
    try:
        report = json.loads(report_path.read_text())
        dependencies = list(report["dependencies"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return 2, [
            f"AUDIT FAILED: pip-audit exited with status {status} and left no readable "
            f"report ({type(exc).__name__}); nothing was checked. Is the vulnerability "
            "service (pypi.org / osv.dev) reachable?"
        ]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    checked = [d for d in dependencies if not d.get("skip_reason")]
    vulnerable = [d for d in checked if d.get("vulns")]
    lines = [f"pip-audit checked {len(checked)} of {len(dependencies)} installed packages."]
    if skipped:
        names = ", ".join(f"{d.get('name')} {d.get('version', '')}".strip() for d in skipped)
        lines.append(f"Not checked ({len(skipped)}): {names}")
    if vulnerable:
        for dependency in vulnerable:
            ids = ", ".join(str(v.get("id")) for v in dependency["vulns"])
            lines.append(f"VULNERABLE: {dependency.get('name')} {dependency.get('version')}: {ids}")
        return 1, [*lines, "AUDIT FAILED: known vulnerabilities (see above)."]
    if not dependencies or len(checked) < MIN_CHECKED_SHARE * len(dependencies):
        reason = skipped[0].get("skip_reason") if skipped else "no packages were found"
        return 2, [
            *lines,
            f"AUDIT FAILED: pip-audit could check almost nothing ({reason}). "
            "Run it where the vulnerability service (pypi.org) is reachable.",
        ]
    if status != 0:
        return status, [*lines, f"AUDIT FAILED: pip-audit exited with status {status}."]
    return 0, [*lines, "No known vulnerabilities in the packages checked."]


#: The exit status of a run that could check (almost) nothing.
UNCHECKED = 2

BANNER = "!" * 78


def main(argv: list[str]) -> int:
    unchecked_ok = "--unchecked-ok" in argv
    argv = [arg for arg in argv if arg != "--unchecked-ok"]
    if len(argv) != 2 or not argv[1].lstrip("-").isdigit():
        print(__doc__, file=sys.stderr)
        return 2
    status, lines = verdict(Path(argv[0]), int(argv[1]))
    if status == UNCHECKED and unchecked_ok:
        lines = [
            BANNER,
            *(line.replace("AUDIT FAILED:", "AUDIT INCOMPLETE:") for line in lines),
            "WARNING: the audit above checked nothing; it passes only because "
            "AUDIT_UNCHECKED_OK=1 (an offline machine). Run `make audit AUDIT_UNCHECKED_OK=0` "
            "where pypi.org is reachable.",
            BANNER,
        ]
        print("\n".join(lines), file=sys.stderr)
        return 0
    print("\n".join(lines), file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
