"""What can go wrong when talking to the SII, split by what to do about it."""


class SiiError(Exception):
    """Any failure talking to the SII."""

    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SiiRetryableError(SiiError):
    """Try again later: transport error, timeout, maintenance page, still processing.

    `maybe_delivered` is set when a request may have reached the SII although no answer came
    back (a timeout after sending): an upload must then be checked before being repeated."""

    retryable = True

    def __init__(self, message: str, *, maybe_delivered: bool = False) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


class SiiTokenError(SiiRetryableError):
    """The token expired or is not valid: authenticate again and retry."""


class SiiRejected(SiiError):
    """The SII said no, for good: `code` and `glosa` are its own words."""

    def __init__(self, code: str, glosa: str) -> None:
        super().__init__(f"{code}: {glosa}")
        self.code = code
        self.glosa = glosa


class SiiProtocolError(SiiError):
    """The SII answered something this client does not understand."""
