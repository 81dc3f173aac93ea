"""What can go wrong when talking to the SII, split by what to do about it.

None of these is a verdict on a document: the SII judges documents only in an envelope's
status (dte.sii.responses.Outcome). A refusal of a request (a token, an upload, a query) says
nothing about the documents, so it never ends one rejected.
"""


class SiiError(Exception):
    """Any failure talking to the SII."""

    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SiiRetryableError(SiiError):
    """Try again later: transport error, timeout, maintenance page, still processing.

    `maybe_delivered` is true when a request may have reached the SII although no usable answer
    came back (a timeout or a server error after sending): an upload must then be checked
    before being repeated. None means "not said": the client decides from where it was raised.
    `retry_after` is the SII's Retry-After, in seconds, when it sent one.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        maybe_delivered: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered
        self.retry_after = retry_after


class SiiTokenError(SiiRetryableError):
    """The token expired or is not valid: authenticate again and retry. The SII registered
    nothing."""

    def __init__(self, message: str) -> None:
        super().__init__(message, maybe_delivered=False)


class SiiRefused(SiiError):
    """The SII refused the request without judging any document (a carátula, certificate,
    permission, schema or parameter problem): `code` and `glosa` are its own words. Someone
    must fix the cause; the signed documents keep their folios and can be sent again."""

    def __init__(self, code: str, glosa: str) -> None:
        super().__init__(f"{code}: {glosa}")
        self.code = code
        self.glosa = glosa


class SiiAlreadyReceived(SiiError):
    """The SII already has this upload (DTEUpload STATUS 99 without a track id): follow the
    documents of the earlier submission, never upload again."""

    def __init__(self, glosa: str) -> None:
        super().__init__(glosa)
        self.glosa = glosa


class SiiProtocolError(SiiError):
    """The SII answered something this client does not understand."""
