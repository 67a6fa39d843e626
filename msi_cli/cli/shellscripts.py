"""The shell completion scripts msi prints and the handlers a shell's script talks to.

Imported only while a shell asks `msi` for completions, or to print or generate the scripts (never
at plain start-up); the values themselves come from `msi_cli.cli.complete`.
"""

from __future__ import annotations

import os
from typing import Any

from msi_cli.cli import shellwords

# Typer's scripts for fish; for zsh, Typer's script, with the candidates escaped for both readings
# zsh gives them (see _zsh_item); for PowerShell, Typer's script with two changes: a value with
# spaces (a role such as "Key Vault Secrets User", a tenant such as "Default Directory") is inserted
# quoted, so it stays one argument, and the script does not rebind the Tab key for the whole
# session. Bash's is msi's own: it passes the line up to the cursor (BASH_LINE), not COMP_WORDS
# (which bash splits at `=` and `:`), and the text bash will replace (BASH_WORD, the function's
# `$2`); msi answers with what bash must insert, quoted (see shellwords). All of them call back
# into `msi` through the same _MSI_COMPLETE protocol; `_MSI_COMPLETE=source_<shell> msi` prints
# the same scripts.
BASH_LINE = "_MSI_COMP_LINE"
BASH_WORD = "_MSI_COMP_WORD"

BASH_SCRIPT = r"""
%(complete_func)s() {
    mapfile -t COMPREPLY < <(env _MSI_COMP_LINE="${COMP_LINE:0:COMP_POINT}" _MSI_COMP_WORD="$2" \
                                 %(autocomplete_var)s=complete_bash "$1" 2>/dev/null)
    [[ -n "${COMPREPLY[*]}" ]] || COMPREPLY=()  # msi printed an empty line: none, so bash offers files
    return 0
}

complete -o default -F %(complete_func)s %(prog_name)s
"""

# zsh: sourced from a plain ~/.zshrc, `compdef` does not exist until compinit has run: run it then.
ZSH_SCRIPT = r"""
#compdef %(prog_name)s

%(complete_func)s() {
  eval "$(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" %(autocomplete_var)s=complete_zsh %(prog_name)s)"
}

if (( ! $+functions[compdef] )); then
  autoload -Uz compinit && compinit
fi
compdef %(complete_func)s %(prog_name)s
"""

POWERSHELL_SCRIPT = r"""
$scriptblock = {
    param($wordToComplete, $commandAst, $cursorPosition)
    $Env:%(autocomplete_var)s = "complete_powershell"
    $Env:_TYPER_COMPLETE_ARGS = $commandAst.ToString()
    $Env:_TYPER_COMPLETE_WORD_TO_COMPLETE = $wordToComplete
    %(prog_name)s | ForEach-Object {
        $commandArray = $_ -Split ":::"
        $command = $commandArray[0]
        $helpString = $commandArray[1]
        $text = $command
        if ($command -match '\s') { $text = "'" + ($command -replace "'", "''") + "'" }
        [System.Management.Automation.CompletionResult]::new(
            $text, $command, 'ParameterValue', $helpString)
    }
    $Env:%(autocomplete_var)s = ""
    $Env:_TYPER_COMPLETE_ARGS = ""
    $Env:_TYPER_COMPLETE_WORD_TO_COMPLETE = ""
}
Register-ArgumentCompleter -Native -CommandName %(prog_name)s -ScriptBlock $scriptblock
"""

SHELLS = ("bash", "zsh", "fish", "powershell")


def register_shells() -> None:
    """Register the shells' completion handlers (Typer's, with the scripts above for bash and
    PowerShell). Called only when a shell asks `msi` for completions, or to generate scripts."""
    from typer import _completion_classes as typer_shells
    from typer._completion_classes import add_completion_class, completion_init  # type: ignore[attr-defined]  # add_completion_class: Typer's import of click's (its own copy or click's, by version)

    completion_init()

    class BashComplete(typer_shells.BashComplete):
        source_template = BASH_SCRIPT

        def source(self) -> str:  # without Typer's check of the local bash version
            return self.source_template % self.source_vars()

        def complete(self) -> str:
            line = os.environ.get(BASH_LINE)
            if line is None:  # a script from before BASH_LINE (COMP_WORDS): it quotes the values itself
                return str(super().complete())
            words = shellwords.split(line)
            values = [item.value for item in self.get_completions(words.args, words.current.value)]
            return "\n".join(shellwords.replacements(words.current, os.environ.get(BASH_WORD, ""), values))

    class PowerShellComplete(typer_shells.PowerShellComplete):
        source_template = POWERSHELL_SCRIPT

    class ZshComplete(typer_shells.ZshComplete):
        source_template = ZSH_SCRIPT

        def format_completion(self, item: Any) -> str:
            return _zsh_item(item.value, item.help)

        def get_completion_args(self) -> tuple[list[str], str]:
            # the words up to the cursor, joined by blanks: the last is the one being completed,
            # also when it ends in a quoted blank (`Default\ `), which Typer's split takes for a
            # finished word
            words = shellwords.split(os.environ.get("_TYPER_COMPLETE_ARGS", ""))
            return words.args, words.current.value

        def complete(self) -> str:
            # One line, single-quoted for eval: an apostrophe in a description ("the resource's
            # host") is written '\'' so it survives (Typer's '' would drop it). In `--opt=value`,
            # zsh is told to complete (and match) only the part after the `=`.
            args, incomplete = self.get_completion_args()
            items = [self.format_completion(item) for item in self.get_completions(args, incomplete)]
            after_equals = "compset -P 1 '*='; " if shellwords.option_value_start(incomplete) else ""
            if not items:
                return after_equals + "_files"
            spec = "*: :((" + " ".join(items) + "))"
            return after_equals + "_arguments " + "'" + spec.replace("'", "'\\''") + "'"

    add_completion_class(BashComplete, "bash")
    add_completion_class(ZshComplete, "zsh")
    add_completion_class(PowerShellComplete, "powershell")
    add_completion_class(PowerShellComplete, "pwsh")


def _zsh_item(value: str, help_text: str | None) -> str:
    """One `"value":"description"` item of zsh's _arguments list. Two readings take it apart:
    _arguments evals the list (inside double quotes, `\\`, `"`, `$` and a backquote are escaped),
    then _describe splits each item at a `:` and drops the backslash before any character (so a
    backslash of the name is written twice, a `:` of it as `\\:`, before the double-quote escaping)."""

    def escape(text: str) -> str:
        described = text.replace("\\", "\\\\").replace(":", "\\:")
        return described.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")

    if help_text:
        return f'"{escape(value)}":"{escape(" ".join(help_text.split()))}"'
    return f'"{escape(value)}"'


def shell_completer(command: Any, shell: str, prog_name: str = "msi") -> Any:
    """The handler a shell's script talks to (a click ShellComplete), as msi uses it."""
    from typer.completion import shell_completion  # type: ignore[attr-defined]  # click's module, as Typer uses it (own copy or click's, by version)

    register_shells()
    cls = shell_completion.get_completion_class(shell)
    if cls is None:
        raise ValueError(f"unsupported shell: {shell}")
    return cls(command, {}, prog_name, f"_{prog_name}_COMPLETE".replace("-", "_").upper())


def completion_script(command: Any, shell: str, prog_name: str = "msi") -> str:
    """The completion script for `shell`, as `_MSI_COMPLETE=source_<shell> msi` prints it, for the
    click command built from the Typer app."""
    script: str = shell_completer(command, shell, prog_name).source()
    return script.strip() + "\n"


__all__ = [
    "BASH_LINE",
    "BASH_SCRIPT",
    "BASH_WORD",
    "POWERSHELL_SCRIPT",
    "SHELLS",
    "ZSH_SCRIPT",
    "completion_script",
    "register_shells",
    "shell_completer",
]
