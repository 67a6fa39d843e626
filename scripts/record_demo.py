"""Record `msi demo federation` at 80 columns into the README, so the example there is real.

    python scripts/record_demo.py           # rewrite README.md between the markers, in place
    python scripts/record_demo.py --check   # exit 1 if the README's recording is stale

The demo runs the real commands on a throwaway state, so ids, keys and times differ on every
run: each distinct GUID is replaced by a numbered placeholder in order of appearance, and times and
key ids by fixed ones, which keeps the recording stable while showing exactly what the demo prints.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BEGIN = "<!-- BEGIN DEMO RECORDING -->"
END = "<!-- END DEMO RECORDING -->"
SCENARIO = "federation"
WIDTH = 80
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
KID = re.compile(r"(kid\s+|key )[A-Za-z0-9_-]{20,}")


def stable(text: str) -> str:
    seen: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        return seen.setdefault(match.group(0), f"00000000-0000-0000-0000-{len(seen) + 1:012d}")

    text = GUID.sub(number, text)
    text = TIME.sub("2026-01-01T00:00:00Z", text)
    return KID.sub(lambda m: m.group(1) + "KID", text)


def record() -> str:
    env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    out = subprocess.run(
        [sys.executable, "-m", "msi_cli", "demo", SCENARIO], capture_output=True, text=True, env=env, check=True, cwd=REPO,
    ).stdout
    return stable(out)


def section(recording: str) -> str:
    return "\n".join([
        BEGIN,
        f"`msi demo {SCENARIO}` at {WIDTH} columns, as recorded by `scripts/record_demo.py` (ids and times",
        "replaced by placeholders; a test re-records it and fails if this copy is stale):",
        "",
        "```text",
        recording.rstrip("\n"),
        "```",
        END,
    ])


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + section(record()) + text[end:]
    if "--check" in argv:
        if new != text:
            sys.stderr.write("README.md: the demo recording is stale; run scripts/record_demo.py\n")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    sys.stdout.write("README.md: demo recording updated\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
