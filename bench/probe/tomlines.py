"""Where a key is written in the text of a TOML file, so that a refusal can name its line.

tomllib gives no positions for the keys of a well-formed file; these read the text in order instead:

    >>> line_of('[app]\\n# instances = 9\\ninstances = 1\\n', ("app", "instances"))
    3
"""
import re

COMMENT = re.compile(r"""^((?:[^#"'\n]|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')*)#.*$""", re.M)  # a line's comment, outside strings


def line_of(text, path):
    """The line (from 1) where the key at ``path`` is written, found by reading the text in order:
    each key of the path after the last one found; an index counts ``[[...]]`` tables or inline tables.
    tomllib gives no positions for a well-formed file's keys; this is the nearest line (1 at worst).

    >>> text = '[app]\\ninstances = 1\\n\\n[[probe]]\\nname = "a"\\n\\n[[probe]]\\nname = "b"\\nread = { expect = [0] }\\n'
    >>> line_of(text, ("app", "instances")), line_of(text, ("probe", 1, "read", "expect")), line_of(text, ("x",))
    (2, 9, 1)
    """
    text, position = uncommented(text), 0
    for part in path:
        if isinstance(part, int):
            position = nth_table(text, text.rfind("\n", 0, position) + 1, part)
            continue
        key = re.escape(part)
        found = re.compile(rf'(?m)(?:^|[\s{{,.\[])(?:{key}|"{key}"|\'{key}\')\s*(?:=|\]|\.)').search(text, position)
        if found:
            position = found.start() + (0 if text[found.start()] == part[:1] else 1)
    return text.count("\n", 0, position) + 1


def uncommented(text):
    """``text`` with each comment blanked (its length kept), so that a key named in a comment is not found.

    >>> uncommented('a = "#1" # a = 2\\nb = 3')
    'a = "#1"        \\nb = 3'
    """
    return COMMENT.sub(lambda match: match[1] + " " * (len(match[0]) - len(match[1])), text)


def nth_table(text, position, index):
    """Where the ``index``-th table (from 0) after ``position`` starts: a ``[[...]]`` header or an inline ``{``."""
    depth, count, quote, at = 0, -1, None, position
    while at < len(text):
        char = text[at]
        if quote:
            at += 2 if char == "\\" and quote == '"' else 1
            quote = None if char == quote else quote
            continue
        if char in "\"'":
            quote = char
        elif depth == 0 and (char == "{" or text.startswith("[[", at) and (at == 0 or text[at - 1] == "\n")):
            count += 1
            if count == index:
                return at
            depth += char == "{"
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        at += 1
    return position
