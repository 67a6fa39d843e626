"""`--query JMESPATH`, applied to a command's result before rendering, as `az` does."""

from __future__ import annotations

from typing import Any

from msi_cli.errors import InvalidArgument


def apply_query(data: Any, expression: str) -> Any:
    import jmespath
    from jmespath import exceptions

    try:
        return jmespath.search(expression, data)
    except exceptions.ParseError as exc:
        pointer = " " * exc.lex_position + "^" if isinstance(exc.lex_position, int) else ""
        raise InvalidArgument(
            f"invalid --query '{expression}': {exc.msg} at column {exc.lex_position}",
            hint=f"{expression} / {pointer.strip() and pointer}".strip(),
        ) from None
    except exceptions.JMESPathError as exc:
        raise InvalidArgument(f"invalid --query '{expression}': {exc}") from None
