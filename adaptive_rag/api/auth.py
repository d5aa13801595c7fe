"""API keys and roles.

Keys come from `ARAG_API_KEYS` ("name:role:key,...") and/or `ARAG_API_KEYS_FILE`, a JSON file:

    {"keys": [{"name": "alice", "role": "query", "key_sha256": "<hex>", "max_requests": 1000,
               "max_tokens": 200000}]}

(`key` instead of `key_sha256` is accepted; the hash keeps the secret out of the file). A client
sends `Authorization: Bearer <key>`; the presented key's SHA-256 is compared with every
configured key's in constant time (`hmac.compare_digest`, no early exit), so neither timing nor
the order of the keys tells an attacker how much of a key matched.

Roles: `query` asks questions and reads its own decisions; `admin` also reads every decision,
gives feedback, ingests and deletes documents and reads the router's state. The decision records
the key's name (`owner`), never the key.

No key configured means the server is open: every caller is an anonymous admin, but a request
from an IP address that is not loopback is refused (403), and `arag serve` refuses to bind a
non-loopback interface without keys.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from adaptive_rag.errors import ConfigError, UserError

ROLES = ("query", "admin")


class Unauthorized(UserError):
    """No key, or a key that matches none (HTTP 401)."""


class Forbidden(UserError):
    """A known key without the role the endpoint needs, or a non-loopback client of an open
    server (HTTP 403)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: str
    digest: bytes  # SHA-256 of the key
    max_requests: int | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class Caller:
    """Who is asking: a key's name and role, or the anonymous admin of an open server."""

    name: str | None
    role: str
    key: ApiKey | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


OPEN_CALLER = Caller(name=None, role="admin")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _key(name, role, secret=None, sha256=None, max_requests=None, max_tokens=None, where="") -> ApiKey:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ConfigError(f"API key{where}: `name` must be a non-empty string of at most 64 characters")
    if role not in ROLES:
        raise ConfigError(f"API key {name!r}{where}: role must be one of {', '.join(ROLES)}, got {role!r}")
    if secret is not None:
        if not isinstance(secret, str) or len(secret) < 16:
            raise ConfigError(f"API key {name!r}{where}: the key must be a string of at least 16 characters")
        digest = _digest(secret)
    else:
        try:
            digest = bytes.fromhex(sha256 or "")
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise ConfigError(f"API key {name!r}{where}: give `key` or `key_sha256` (64 hex digits)")
    for label, value in (("max_requests", max_requests), ("max_tokens", max_tokens)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"API key {name!r}{where}: {label} must be a positive integer")
    return ApiKey(name, role, digest, max_requests, max_tokens)


class KeyRing:
    """The configured keys; empty means an open (loopback-only) server."""

    def __init__(self, keys: list[ApiKey]):
        names = [k.name for k in keys]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"API key names must be unique: {', '.join(dupes)}")
        self.keys = keys

    @property
    def open(self) -> bool:
        return not self.keys

    @classmethod
    def from_settings(cls, settings) -> "KeyRing":
        keys: list[ApiKey] = []
        if settings.api_keys is not None:
            for i, entry in enumerate(e.strip() for e in settings.api_keys.get_secret_value().split(",")):
                if not entry:
                    continue
                parts = entry.split(":", 2)
                if len(parts) != 3:
                    raise ConfigError(f"ARAG_API_KEYS entry {i + 1} must be name:role:key")
                keys.append(_key(parts[0], parts[1], parts[2], where=" in ARAG_API_KEYS"))
        if settings.api_keys_file is not None:
            keys += cls._read_file(Path(settings.api_keys_file))
        return cls(keys)

    @staticmethod
    def _read_file(path: Path) -> list[ApiKey]:
        where = f" in {path}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the API keys file {path}: {exc.strerror or exc}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"the API keys file {path} is not valid JSON: {exc}") from None
        entries = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ConfigError(f'the API keys file {path} must hold {{"keys": [...]}}')
        keys = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise ConfigError(f"every entry of {path}'s keys must be an object")
            unknown = set(entry) - {"name", "role", "key", "key_sha256", "max_requests", "max_tokens"}
            if unknown:
                raise ConfigError(f"API key {entry.get('name')!r}{where}: unknown fields {sorted(unknown)}")
            keys.append(_key(entry.get("name"), entry.get("role"), entry.get("key"), entry.get("key_sha256"),
                             entry.get("max_requests"), entry.get("max_tokens"), where))
        return keys

    def authenticate(self, authorization: str | None, client_host: str | None) -> Caller:
        """The caller behind an `Authorization` header. Raises Unauthorized / Forbidden."""
        if self.open:
            if not is_loopback(client_host):
                raise Forbidden("this server has no API keys configured, so it answers loopback clients only")
            return OPEN_CALLER
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
        digest = _digest(presented.strip())
        found = None
        for key in self.keys:  # every key is compared, whichever matches
            if hmac.compare_digest(digest, key.digest):
                found = key
        if found is None:
            raise Unauthorized("invalid API key")
        return Caller(found.name, found.role, found)


def is_loopback(host: str | None) -> bool:
    """True for a loopback IP address, and for a peer with no IP address (a Unix socket, an
    in-process test transport): only an IP address that is not loopback is remote."""
    if not host:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost" or not any(c in host for c in ".:")


def check_bind(host: str, keys: KeyRing) -> None:
    """`arag serve` refuses to bind a non-loopback interface when no API key is configured."""
    if keys.open and not is_bind_loopback(host):
        raise ConfigError(f"refusing to listen on {host} without API keys: set ARAG_API_KEYS or ARAG_API_KEYS_FILE "
                          "(see docs/operations.md, Security), or bind 127.0.0.1")


def is_bind_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name may resolve to anything


def caller(request: Request) -> Caller:
    """The request's caller (any role), remembered on the request for the access log."""
    found = request.app.state.keys.authenticate(request.headers.get("authorization"),
                                                request.client.host if request.client else None)
    request.state.caller = found
    return found


def admin(request: Request) -> Caller:
    found = caller(request)
    if not found.is_admin:
        raise Forbidden(f"this needs an admin key; {found.name!r} has role {found.role!r}")
    return found


CallerDep = Annotated[Caller, Depends(caller)]
AdminDep = Annotated[Caller, Depends(admin)]
