"""The exceptions kdlab raises on purpose.

Every front end (CLI, Streamlit pages) catches ``KdlabError`` and shows its message as one line: these are
problems a user can fix, so a traceback would only hide the message.
"""


class KdlabError(Exception):
    """Base class: a problem with a clear, user-facing message."""


class ConfigError(KdlabError, ValueError):
    """An invalid setting (unknown name, T <= 0, alpha outside [0, 1], ...), raised before any work starts."""


class DataUnavailableError(KdlabError):
    """A dataset's files cannot be found locally and cannot be downloaded."""


class TrainingDivergedError(KdlabError):
    """The loss became NaN or infinite."""


class CacheError(KdlabError):
    """A cache entry is unreadable, corrupt or from another format version."""
