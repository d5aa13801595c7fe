"""Errors a user can act on. The CLI prints their message on one line and exits non-zero; the
API maps them to 4xx. Anything else is a bug and is allowed to surface as such."""


class UserError(Exception):
    """Bad input or configuration, described in a message a user can act on."""


class NotFoundError(UserError):
    """A named thing (collection, document) does not exist."""


class ConfigError(UserError):
    """Settings that cannot work together, or a model file that fails its checks."""


class Conflict(UserError):
    """The request lost a race with another writer (a router version learned from a state that is
    no longer the latest): the API answers 409; doing it again works."""


class DeadlineExceeded(UserError):
    """The request's deadline passed before the next model call (the decision records "timeout")."""


class RequestCancelled(UserError):
    """The client went away or the server is shutting down (the decision records "cancelled")."""


class Unavailable(UserError):
    """Something the request needs is down or held elsewhere, for now: the API answers 503 with
    Retry-After; the CLI exits 2 with this one line."""


class DecisionStoreUnavailable(Unavailable):
    """The decision log's database cannot be reached (a PostgreSQL server down or out of connections)."""


class StoreBusy(Unavailable):
    """The embedded store's collection is held by another process (an ingest, a server): the API
    answers 503 with Retry-After; the CLI exits 2 with this one line."""


class UnknownNameError(ConfigError, ValueError):
    """A registry (policies, engines, stores, decision stores, readers, classifiers, routers) was
    asked for a name it does not hold; the message lists the registered names. A ValueError too,
    so settings validators report it as a bad value."""
