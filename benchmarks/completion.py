"""Shell completion latency: what one TAB costs, as the shells' scripts ask it (a whole `msi`
process with _MSI_COMPLETE set), against states of 100 and 1,000 resources, interleaved with the
floor `python -c "import typer"`. Target: every TAB under 150 ms (median) at 1,000 resources.

Usage: python benchmarks/completion.py [--sizes 100,1000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import environment, interleaved, msi_command, precompile, table
from seed import seed

TARGET_MS = 150.0


def bash_case(line: str) -> dict[str, str]:
    """The variables bash's script sets for `line` (the cursor at its end): the line, and the text
    bash replaces (after the last blank, `=` or `:`)."""
    word = re.split(r"[ =:]", line)[-1]
    return {"_MSI_COMPLETE": "complete_bash", "_MSI_COMP_LINE": line, "_MSI_COMP_WORD": word}


CASES = {
    "msi <TAB> (commands)": bash_case("msi "),
    "msi show res1<TAB>": bash_case("msi show res1"),
    "msi delete -g rg1 <TAB>": bash_case("msi delete -g rg1 "),
    "msi grant x --scope /<TAB>": bash_case("msi grant x --scope /"),
    "msi token x --audience https://<TAB>": bash_case("msi token x --audience https://"),
    "zsh: msi show res1<TAB>": {"_MSI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "msi show res1"},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    precompile()
    msi = msi_command()
    rows = []
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            state = Path(tmp) / f"s{size}" / "state.toml"
            seed(state, size)
            for name, variables in CASES.items():
                env = environment(state) | variables
                median, floor = interleaved([msi], env, args.rounds)
                if size == 1000:
                    worst = max(worst, median * 1000)
                rows.append((size, name, f"{median * 1000:.0f}", f"{floor * 1000:.0f}", f"{median / floor:.2f}"))
    print(table(rows, ("resources", "completion", "median ms", "floor ms", "ratio")))
    if worst:
        verdict = "met" if worst < TARGET_MS else "NOT met"
        print(f"\nslowest TAB at 1,000 resources: {worst:.0f} ms (target < {TARGET_MS:.0f} ms: {verdict})")


if __name__ == "__main__":
    main()
