"""The Typer application and its single error boundary."""


import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from msi_cli import __version__
from msi_cli.errors import NOTICES, WARNINGS, MsiError, OutputLost, printable, start_command


def _one_line(text: str) -> str:
    """One line of terminal-safe text: whitespace runs become one space, and every control
    character (from a state file, an argument, a file name) is escaped, never sent raw."""
    return printable(" ".join(text.split()))


_nested = 0  # how many commands run inside another one (see MsiGroup.main)


def _flush_warnings() -> None:
    from msi_cli.cli.globalopts import QUIET, level

    if NOTICES and not _nested and sys.stderr.isatty() and level() > QUIET:
        for message in NOTICES:
            sys.stderr.write(f"msi: {_one_line(message)}\n")
    NOTICES.clear()
    for message in WARNINGS if level() > QUIET else []:
        sys.stderr.write(f"warning: {_one_line(message)}\n")
    WARNINGS.clear()


def _check_state_choice(args: list[str]) -> None:
    """`--state PATH` naming a missing file in a missing folder is most likely a typo: refuse it
    unless `--create` is given. (MSI_STATE and the default path create what they need.)"""
    given, create, i = None, False, 0
    while i < len(args):
        arg = args[i]
        if arg == "--state" and i + 1 < len(args):
            given, i = args[i + 1], i + 2
            continue
        if arg.startswith("--state="):
            given = arg.split("=", 1)[1]
        elif arg == "--create":
            create = True
        elif not arg.startswith("-"):
            break  # the command: global options come before it
        elif arg in ("-h", "--help"):
            return
        i += 1
    if given == "":
        from msi_cli.errors import InvalidArgument

        raise InvalidArgument("--state: the path is empty", hint="name the state file, or leave --state out for the default")
    if given is None or create or i >= len(args) or "--help" in args or "-h" in args:
        return
    path = Path(given).expanduser()
    if not os.path.lexists(path) and not os.path.lexists(path.parent):
        from msi_cli.errors import InvalidArgument

        raise InvalidArgument(
            f"--state {given}: no such file, and its folder {path.parent} does not exist either",
            hint="check the path, or pass --create (before the command) to start a new state there",
        )


class _ClosedOutput(io.TextIOBase):
    """Standard output when the shell closed it (`msi show vm1 >&-`; Python then has None): a
    command that prints fails as a write to a closed descriptor does, one that prints nothing
    succeeds."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OutputLost("standard output is closed")

    def isatty(self) -> bool:
        return False


class _GuardedDescriptor(io.RawIOBase):
    """Standard output's descriptor, whose write errors are OutputLost: a full disk or a file size
    limit then reads as what it is wherever the output was written from (a table, JSON, help), and
    an OSError from anything else is never taken for one. A reader that left (EPIPE) stays a
    BrokenPipeError, which ends msi quietly."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data: Any) -> int:
        try:
            return os.write(self._fd, data)
        except (BrokenPipeError, BlockingIOError):
            raise
        except OSError as exc:
            raise OutputLost(exc.strerror or str(exc)) from None


def standard_streams() -> None:
    """The program's standard streams, set once as `msi` starts (cli.run). Stdout is written
    through _GuardedDescriptor (same encoding and buffering, one more call per buffer written);
    closed by the shell (Python then has None), it fails when written (_ClosedOutput). A closed
    stderr's text is discarded, since its reader chose not to have it: the exit code still says
    what happened. A test's captured stdout, which has no descriptor, is left as it is."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # for the rest of the process
    out = sys.stdout
    if out is None:
        sys.stdout = _ClosedOutput()
        return
    try:
        fd = out.fileno()
        out.flush()
    except (OSError, ValueError, AttributeError):
        return
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(_GuardedDescriptor(fd)), encoding=out.encoding, errors=out.errors,
                                  line_buffering=bool(out.line_buffering), write_through=bool(getattr(out, "write_through", False)))


def _fail(message: str, code: int, hint: str | None = None) -> None:
    _flush_warnings()
    line = _one_line(message)
    if hint:
        line += f" ({_one_line(hint)})"
    try:
        sys.stderr.write(f"error: {line}\n")
        sys.stderr.flush()
    except OSError:  # standard error refused it too: the exit code still says what happened
        pass
    sys.exit(code)


# Words people type for an msi command (az's and other CLIs' habits).
_HABITS = {
    "version": "'msi --version'",
    "help": "'msi --help'",
    "create": "'create-resource' or 'create-identity'",
    "new": "'create-resource' or 'create-identity'",
    "get-token": "'token'",
    "get-access-token": "'token'",
    "ls": "'list'",
    "rm": "'delete'",
    "remove": "'delete'",
    "del": "'delete'",
    "move": "'migrate' or 'move-subscription'",
    "login": "'env RESOURCE' (after 'msi serve')",
    "completions": "'completion'",
}


def _meant(word: str, commands: list[str]) -> str | None:
    """The command(s) meant by an unknown `word`, quoted for an error message, or None."""
    low = word.lower()
    if low in _HABITS:
        return _HABITS[low]
    prefixed = [c for c in commands if c.startswith(low + "-") or (len(low) >= 3 and c.startswith(low))]
    if prefixed:
        return " or ".join(f"'{c}'" for c in sorted(prefixed)[:4])
    return None


def _help_to_option(args: list[str]) -> list[str]:
    """`msi help [COMMAND...]` is `msi [COMMAND...] --help`."""
    index, skip = None, False
    for i, arg in enumerate(args):
        if skip:
            skip = False
        elif arg == "--state":
            skip = True
        elif not arg.startswith("-"):
            index = i
            break
    if index is None or args[index] != "help":
        return args
    return [*args[:index], *args[index + 1 :], "--help"]


class MsiGroup(TyperGroup):
    """Maps every error a user can cause to one `error:` line on stderr and a documented exit code:
    1 domain error, 2 usage error, 3 not found, 130 interrupted. No traceback, no locals."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from msi_cli.cli.globalopts import prepare

        prepare(self)  # --only-show-errors/--verbose/--debug and plain metavars, on every command
        from msi_cli.cli.panels import panel_of

        for name, command in self.commands.items():
            command.rich_help_panel = panel_of(name)  # type: ignore[attr-defined]

    def list_commands(self, ctx: Any) -> list[str]:
        from msi_cli.cli.panels import ordered

        return ordered(list(super().list_commands(ctx)))

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        from msi_cli.cli import globalopts

        global _nested
        if not standalone_mode:
            _nested += 1  # a command run by another (msi demo's steps): its notices are not the user's
        tokens = globalopts.start()
        try:
            return self._run(args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra)
        finally:
            globalopts.finish(tokens)
            if not standalone_mode:
                _nested -= 1

    def _run(self, args: Sequence[str] | None, prog_name: str | None, complete_var: str | None,
             standalone_mode: bool, windows_expand_args: bool, **extra: Any) -> Any:
        start_command()
        if args is None:
            args = sys.argv[1:]
        args = _help_to_option(list(args))
        if "--ids" in args:
            from msi_cli.cli.options import spread_ids

            args = spread_ids(list(args))
        try:
            if standalone_mode and not any(key.startswith("_MSI_COMPLETE") for key in os.environ):
                _check_state_choice(list(args))
            rv = super().main(args=args, prog_name=prog_name or "msi", complete_var=complete_var,
                              standalone_mode=False, windows_expand_args=windows_expand_args, **extra)
            if standalone_mode:
                sys.stdout.flush()  # what a file or pipe still buffers: refused here, it is said here
        except MsiError as exc:
            _fail(exc.message, exc.exit_code, exc.hint)
        except (KeyboardInterrupt, typer.Abort):
            _fail("interrupted", 130)
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(1)
        except Exception as exc:
            if isinstance(exc, OSError) and exc.filename is not None:
                # the system refused a file operation that the store does not guard itself
                _fail(f"{exc.filename}: {exc.strerror or exc}", 1)
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `msi` or `msi clock`: help, not an error
                text = exc.format_message()  # type: ignore[attr-defined]  # click's NoArgsIsHelpError, matched by name above
                try:
                    if text.strip():
                        sys.stdout.write(text + "\n")
                        sys.stdout.flush()
                except OutputLost as lost:
                    _fail(lost.message, lost.exit_code, lost.hint)
                sys.exit(0)
            if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # click's usage errors
                ctx = getattr(exc, "ctx", None)
                hint = f"see '{ctx.command_path} --help'" if ctx is not None else None
                _fail(exc.format_message(), exc.exit_code, hint)
            if type(exc).__name__ == "Abort":
                _fail("aborted", 1)
            # A bug, not something the user did: still one line and exit 1 (no traceback unless
            # --debug, and never locals, which could hold keys), named as a bug so it is reported.
            from msi_cli.cli.globalopts import DEBUG, level

            if level() >= DEBUG:
                import traceback

                traceback.print_exc(file=sys.stderr)
            _fail(f"internal error ({type(exc).__name__}: {exc}); please report this as an msi-cli bug", 1)
        _flush_warnings()
        code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """An unknown command names the one the user most likely meant (`msi version`: `msi
        --version`; `msi create`: `create-resource`), beside Typer's close matches."""
        try:
            return super().resolve_command(ctx, args)
        except Exception as exc:
            message = getattr(exc, "message", None)
            if message is None or not args or not message.startswith("No such command"):
                raise
            meant = _meant(args[0], list(self.commands))
            if meant:  # ahead of Typer's close matches (`version` is not `verify`)
                exc.message = f"{message.split('.', 1)[0]}. Did you mean {meant}?"  # type: ignore[attr-defined]
            raise

    def _main_shell_completion(self, ctx_args: Any, prog_name: str, complete_var: str | None = None) -> None:
        # A shell asking for completions (the scripts in completions/ set _MSI_COMPLETE). Typer
        # registers its bash/zsh/fish/PowerShell handlers only when add_completion=True; register
        # them (with msi's scripts) here, and only here, so a normal run pays nothing for it.
        var = complete_var or f"_{prog_name}_COMPLETE".replace("-", "_").upper()
        if os.environ.get(var):
            from msi_cli.cli.shellscripts import register_shells

            register_shells()
        super()._main_shell_completion(ctx_args, prog_name, complete_var)


app = typer.Typer(
    cls=MsiGroup,
    name="msi",
    help="""Simulate Azure managed identities: resources, identities, principals, tokens, moves.

    Examples (on a fresh state; `msi demo` runs stories on a throwaway one)

    # a web app with its own (system-assigned) identity
    msi create-resource web1 --type webapp --system-assigned

    # let that identity read a key vault's secrets
    msi create-resource kv1 --type keyvault
    msi grant web1 --role "Key Vault Secrets User" --scope kv1

    # a token for the vault, as the app's host hands it out
    msi token web1 --audience https://vault.azure.net

    # the narrated walkthroughs
    msi demo --list""",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"msi {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    state: Annotated[
        Optional[Path],
        typer.Option("--state", envvar="MSI_STATE", help="State file (default: state.toml in the user's app dir).", show_default=False),
    ] = None,
    create: Annotated[
        bool, typer.Option("--create", help="With --state: start a new state there even if its folder does not exist yet.")
    ] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True)] = False,
) -> None:
    # `--state` stays in this context's params, where statepath.state_path() reads it.
    del state, create, version
