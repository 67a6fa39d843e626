"""`--query JMESPATH`, as `az` has it: compiled while the command line is parsed (a bad expression
is a usage error, exit 2, before anything changes), then applied to the command's result before it
is rendered. Objects built by the expression (`{name: name, id: id}`) keep the order written in
it, which `-o tsv` follows, as in az.

jmespath is imported only when a command is given `--query`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import typer

from msi_cli.errors import InvalidArgument, deep_input


def _marked(expression: str, position: int) -> str:
    """The expression on one line, with `^` inserted where it fails."""
    position = max(0, min(position, len(expression)))
    return expression[:position] + "^" + expression[position:]


def _parse_error(exc: Any, expression: str) -> str:
    from jmespath import exceptions

    position = exc.lex_position if isinstance(getattr(exc, "lex_position", None), int) else len(expression)
    if isinstance(exc, exceptions.IncompleteExpressionError):
        what = "incomplete expression"
    elif isinstance(exc, exceptions.LexerError):
        what = exc.message or "unexpected character"
    elif exc.msg == "invalid token" and exc.token_value:
        what = f"unexpected {exc.token_value!r}"
    else:
        what = exc.msg or "invalid expression"
    return f"{what} at column {position + 1} (marked ^): {_marked(expression, position)}"


def _functions(node: Any) -> list[tuple[str, int]]:
    """Every function call in a parsed expression: (name, number of arguments)."""
    found: list[tuple[str, int]] = []
    stack = [node]  # walked without recursion: `a|a|...` parses into a tree thousands deep
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "function_expression":
                found.append((str(node.get("value")), len(node.get("children", []))))
            stack.extend(reversed(node.get("children", [])))
    return found


def _check_functions(parsed: Any) -> str | None:
    """jmespath only finds unknown functions and wrong argument counts when it evaluates; az users
    get those as errors from a half-run command. Find them while parsing instead."""
    from jmespath import functions

    table = functions.Functions().FUNCTION_TABLE
    for name, count in _functions(parsed):
        if name not in table:
            return f"unknown function {name}()"
        signature = table[name]["signature"]
        variadic = bool(signature) and bool(signature[-1].get("variadic"))
        if count < len(signature) or (count > len(signature) and not variadic):
            expected = f"at least {len(signature)}" if variadic else str(len(signature))
            return f"function {name}() takes {expected} argument{'s' if expected != '1' else ''}, got {count}"
    return None


def compile_query(expression: str) -> Any:
    """The compiled expression; typer.BadParameter (a usage error, exit 2) when it is not valid."""
    import jmespath
    from jmespath import exceptions

    problem: str | None
    try:
        if any(0xD800 <= ord(c) <= 0xDFFF for c in expression):
            raise ValueError("the expression is not valid UTF-8 text")
        with deep_input():
            compiled = jmespath.compile(expression)
    except exceptions.ParseError as exc:
        problem = _parse_error(exc, expression)
    except RecursionError:  # jmespath's parser is recursive
        problem = "the expression is nested too deeply"
    except (exceptions.JMESPathError, KeyError, ValueError) as exc:
        problem = f"{exc} in: {expression}"
    else:
        problem = _check_functions(compiled.parsed)
        if problem is None:
            return compiled
        problem = f"{problem} in: {expression}"
    # named '--query' whether it came from the command line or from MSI_QUERY
    raise typer.BadParameter(problem, param_hint="'--query'")


def check_query(expression: str) -> None:
    compile_query(expression)


def apply_query(data: Any, expression: str) -> Any:
    """The result of the expression on `data`, as az computes it. An expression that cannot be
    applied to this result is a usage error (exit 2), unless the command has already saved its
    change: then it is a warning and nothing is printed, as failure must mean no change."""
    try:
        return _apply(data, expression)
    except InvalidArgument as exc:
        from msi_cli.errors import saved, warn

        if not saved():
            raise
        warn(f"the change was saved, but {exc.message}")
        return None


def _apply(data: Any, expression: str) -> Any:
    import jmespath
    from jmespath import exceptions

    try:
        compiled = compile_query(expression)
    except typer.BadParameter as exc:
        raise InvalidArgument(f"invalid --query: {exc.message}") from None
    try:
        with deep_input():
            result = compiled.search(data, jmespath.Options(dict_cls=OrderedDict))
    except exceptions.JMESPathTypeError as exc:
        # a type error that depends on the data, e.g. abs() of a string: said without the value,
        # which jmespath quotes whole (an access token, for `msi token --query 'abs(access_token)'`)
        expected = ", ".join(str(t) for t in exc.expected_types)
        raise InvalidArgument(f"--query failed on this result: {exc.function_name}() takes {expected}, "
                              f"got {exc.actual_type}") from None
    except exceptions.JMESPathError as exc:  # arity and unknown functions: the expression's own words
        raise InvalidArgument(f"--query failed on this result: {' '.join(str(exc).split())}") from None
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        # where jmespath checks no types itself: `a > b` of a string and a number, merge() of a
        # non-object, ceil() of infinity, a result nested past Python's recursion limit; its text
        # may quote a value of the result, so only its kind is said
        raise InvalidArgument(f"--query cannot be applied to this result ({type(exc).__name__})") from None
    problem = _unprintable(result)
    if problem:
        raise InvalidArgument(f"--query produced {problem}, which cannot be printed as JSON or text")
    return result


def _unprintable(data: Any) -> str | None:
    """What in a query's result no output format can carry: Infinity or NaN (not JSON), or a
    string holding a lone surrogate (not Unicode text). Walked without recursion."""
    import math

    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return "a number that is not finite"
        if isinstance(item, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in item):
                return "a string with a lone surrogate"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None
