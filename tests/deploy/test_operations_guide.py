"""docs/operations.md invents no commands: every `pipvault …` and `vaultctl …` invocation in it
resolves, subcommand by subcommand and flag by flag, in the real argument parsers, and every
setting it names is a field of the server's settings class."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest
from vaultctl._parser import build_parser as vaultctl_parser

from tests.support.k8s_manifests import REPO
from vault_server.cli.main import build_parser as pipvault_parser
from vault_server.config import Settings

GUIDE = REPO / "docs" / "operations.md"
CODE_SPAN = re.compile(r"`([^`\n]+)`")
COMMAND_START = re.compile(r"(?<![\w/.-])(pipvault|vaultctl)(?= )")
SETTING = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
FILE_SUFFIXES = {"jsonl", "json", "yaml", "key", "pub", "crt", "md", "txt", "dump", "sh", "conf"}


def _commands(text: str) -> list[str]:
    """Every pipvault/vaultctl invocation: in code spans and in fenced code blocks."""
    found: list[str] = []
    in_block = False
    block_line = ""
    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            block_line += line.rstrip().removesuffix("\\") + " "
            if line.rstrip().endswith("\\"):
                continue
            candidate, block_line = block_line.split("#", 1)[0], ""
            match = COMMAND_START.search(candidate)
            if match:
                found.append(candidate[match.start() :].strip())
            continue
        for span in CODE_SPAN.findall(line):
            match = COMMAND_START.search(span)
            if match and match.start() == 0:
                found.append(span.strip())
    return found


def _tokens(command: str) -> list[str]:
    cleaned = re.sub(r"<[^>]*>", "X", command)  # placeholders
    cleaned = cleaned.replace("[", " ").replace("]", " ").replace("…", " ")
    tokens = shlex.split(cleaned)
    return [t for t in tokens if t not in ("|", "&")]


def _resolve(parser: argparse.ArgumentParser, args: list[str]) -> list[str]:
    """Problems with ``args`` under ``parser`` (unknown subcommand or flag)."""
    problems = []
    for token in args:
        if token.startswith("-"):
            flag = token.split("=", 1)[0]
            if flag not in parser._option_string_actions:
                problems.append(f"unknown flag {flag} for '{parser.prog}'")
            continue
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subparsers:
            choices = subparsers[0].choices
            if token not in choices:
                problems.append(f"unknown command {token!r} for '{parser.prog}'")
                return problems
            parser = choices[token]
    return problems


PARSERS = {"pipvault": pipvault_parser, "vaultctl": vaultctl_parser}


def test_the_guide_names_commands() -> None:
    commands = _commands(GUIDE.read_text())
    assert len(commands) >= 20
    assert {c.split()[0] for c in commands} == {"pipvault", "vaultctl"}


@pytest.mark.parametrize("command", _commands(GUIDE.read_text()))
def test_every_command_in_the_guide_exists(command: str) -> None:
    program, *args = _tokens(command)
    assert not _resolve(PARSERS[program](), args), command


@pytest.mark.parametrize(
    "made_up",
    [
        "vaultctl keys list",
        "vaultctl workspaces freeze ws --until 1h",
        "pipvault db migrate",
        "pipvault audit verify --database X --checkpoints F",
    ],
)
def test_the_check_catches_made_up_commands(made_up: str) -> None:
    program, *args = _tokens(made_up)
    assert _resolve(PARSERS[program](), args)


def test_every_dotted_setting_the_guide_names_exists() -> None:
    names = {
        s
        for s in CODE_SPAN.findall(GUIDE.read_text())
        if SETTING.match(s) and s.rsplit(".", 1)[1] not in FILE_SUFFIXES
    }
    assert len(names) >= 10
    for name in sorted(names):
        model: type = Settings
        for part in name.split("."):
            fields = model.model_fields  # type: ignore[attr-defined]
            assert part in fields, f"{name}: no setting {part!r}"
            annotation = fields[part].annotation
            model = annotation if isinstance(annotation, type) else type(None)
