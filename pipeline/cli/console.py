"""The CLI's one console and its progress bar, so every command looks the same.

Text that comes from outside (a producer's bytes in a quarantined record, an error message
quoting them) goes through :func:`untrusted`: rich would read ``[...]`` in it as markup
(``[/]`` alone raises) and a terminal would obey its escape sequences.
"""

from __future__ import annotations

import unicodedata

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

#: Control characters (C0, DEL, C1), format characters (bidirectional overrides, zero-width
#: marks) and line/paragraph separators: shown as escapes, never passed to the terminal.
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})

console = Console()
err_console = Console(stderr=True)


def progress() -> Progress:
    """A progress bar for long work (transient on a terminal, silent when piped)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def printable(text: str) -> str:
    """``text`` with every control, format or separator character as a Python-style escape
    (``\\x1b``, ``\\u202e``), and a backslash as two, so every escape shown is one of these."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char) in _UNPRINTABLE_CATEGORIES:
            code = ord(char)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            else:
                out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def untrusted(text: str) -> Text:
    """``text`` for a rich table or print: printable, and never read as markup."""
    return Text(printable(text))
