"""Reading secret material: from a hidden prompt or from stdin, never from argv.

Nothing here logs, prints or echoes a secret, and error messages never quote the input.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import TextIO

from pipvault_client import SecretMaterial

from vaultctl._errors import UsageError

_JSON_FIELDS = frozenset(
    {
        "secret",
        "passphrase",
        "private_key",
        "api_key",
        "account_id",
        "username",
        "server",
        "authorization_code",
        "redirect_uri",
    }
)
# Not secret: also flags (--api-key, ...); given in both places they must agree.
_PUBLIC_FIELDS = ("api_key", "account_id", "username", "server", "redirect_uri")
_OAUTH_ALGORITHM = "KEY_ALGORITHM_OAUTH_CONSENT"
_PRIVATE_KEY_ALGORITHMS = frozenset(
    {"KEY_ALGORITHM_ED25519", "KEY_ALGORITHM_RSA", "KEY_ALGORITHM_ECDSA_P256"}
)
_PROMPTS = {
    "KEY_ALGORITHM_BEARER": "Access token: ",
    "KEY_ALGORITHM_SESSION_LOGIN": "Password: ",
}
_CODE_PROMPT = "Authorization code: "
_MAX_STDIN = 64 * 1024


class SecretInputError(UsageError):
    """The secret could not be read; the message quotes none of the input."""


def read_material(
    *,
    api_key: str,
    account_id: str,
    key_algorithm: str,
    broker: str,
    from_stdin: bool,
    stdin: TextIO | None = None,
    username: str = "",
    server: str = "",
    redirect_uri: str = "",
    authorization_code: bool = False,
) -> SecretMaterial:
    """Builds the SecretMaterial from the public flags (``--api-key``, ``--account-id``,
    ``--username``, ``--server``, ``--redirect-uri``) and the secret parts read from stdin
    (``from_stdin``) or from hidden prompts. With ``authorization_code`` (or the OAuth consent
    key algorithm) the one secret read is the OAuth authorization code, not an API secret."""
    fields = {
        "api_key": api_key,
        "account_id": account_id,
        "username": username,
        "server": server,
        "redirect_uri": redirect_uri,
    }
    oauth = authorization_code or key_algorithm == _OAUTH_ALGORITHM
    if from_stdin:
        secret_fields = _from_stdin(stdin if stdin is not None else sys.stdin)
        if oauth and secret_fields.keys() == {"secret"}:  # one line: the code itself
            secret_fields = {"authorization_code": secret_fields["secret"]}
        if oauth and "private_key" in secret_fields:
            raise SecretInputError("an authorization code is a single line, not a PEM key")
    elif oauth:
        secret_fields = {"authorization_code": _required_prompt(_CODE_PROMPT, "the code")}
    else:
        secret_fields = _from_prompt(key_algorithm, broker)
    for key in _PUBLIC_FIELDS:
        given = secret_fields.pop(key, "")
        if given and fields[key] and given != fields[key]:
            raise SecretInputError(f"{key} given both on the command line and on stdin")
        fields[key] = fields[key] or given
    material = SecretMaterial(**fields, **secret_fields)
    if not (material.secret or material.private_key or material.authorization_code):
        raise SecretInputError("no secret, private key or authorization code was given")
    return material


def read_secret(*, prompt: str, what: str, from_stdin: bool, stdin: TextIO | None = None) -> str:
    """One secret string (e.g. an OAuth client secret): a single line on stdin
    (``from_stdin``) or a hidden prompt; never quoted in an error."""
    if not from_stdin:
        return _required_prompt(prompt, what)
    stream = stdin if stdin is not None else sys.stdin
    text = stream.read(_MAX_STDIN + 1)
    if len(text) > _MAX_STDIN:
        raise SecretInputError(f"stdin is too large for {what}")
    stripped = text.strip()
    if not stripped:
        raise SecretInputError(f"stdin is empty: pipe {what} on one line")
    if "\n" in stripped:
        raise SecretInputError(f"stdin must be a single line ({what})")
    return stripped


def _required_prompt(prompt: str, what: str) -> str:
    if not sys.stdin.isatty():
        raise SecretInputError(f"no terminal to prompt for {what}: use --secret-stdin")
    value = _prompt(prompt)
    if not value:
        raise SecretInputError(f"{what} is empty")
    return value


def _from_stdin(stream: TextIO) -> dict[str, str]:
    text = stream.read(_MAX_STDIN + 1)
    if len(text) > _MAX_STDIN:
        raise SecretInputError("stdin is too large for secret material")
    stripped = text.strip()
    if not stripped:
        raise SecretInputError("stdin is empty: pipe the secret, a PEM key or a JSON object")
    if stripped.startswith("{"):
        return _from_json(stripped)
    if stripped.startswith("-----BEGIN"):
        return {"private_key": stripped + "\n"}
    if "\n" in stripped:
        raise SecretInputError(
            "stdin must be a single line (the secret), a PEM private key, or a JSON object"
        )
    return {"secret": stripped}


def _from_json(text: str) -> dict[str, str]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SecretInputError(f"stdin is not valid JSON (line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise SecretInputError("the JSON on stdin must be an object")
    if set(document) - _JSON_FIELDS:
        allowed = ", ".join(sorted(_JSON_FIELDS))
        raise SecretInputError(f"unexpected fields in the JSON on stdin (allowed: {allowed})")
    if not all(isinstance(v, str) for v in document.values()):
        raise SecretInputError("every field of the JSON on stdin must be a string")
    return {k: v for k, v in document.items() if v}


def _from_prompt(key_algorithm: str, broker: str) -> dict[str, str]:
    if key_algorithm in _PRIVATE_KEY_ALGORITHMS:
        raise SecretInputError(
            "private keys are read from stdin: --secret-stdin < key.pem "
            '(or a JSON object with "private_key")'
        )
    if not sys.stdin.isatty():
        raise SecretInputError("no terminal to prompt for the secret: use --secret-stdin")
    fields = {"secret": _prompt(_PROMPTS.get(key_algorithm, "API secret: "))}
    if broker == "BROKER_OKX":
        fields["passphrase"] = _prompt("Passphrase: ")
    if not fields["secret"]:
        raise SecretInputError("the secret is empty")
    return fields


def _prompt(text: str) -> str:
    # Looked up at call time so tests can stand in for the terminal.
    return getpass.getpass(text).strip()
