"""Why an uploaded file was refused. Each class has a stable ``code`` (the UI translates by it).

They are raised inside worker processes and re-raised in the server, so each one survives
pickling: ``__init__`` takes the message positionally and the rest is restored from
``__dict__``.
"""

from __future__ import annotations

from typing import Any

from ..errors import Invalid, NotFound


class DocumentInvalid(Invalid):
    """Base of the refusals of an uploaded document."""

    code = "invalid_document"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)


class NotPdf(DocumentInvalid):
    code = "not_pdf"


class EmptyFile(DocumentInvalid):
    code = "empty_file"


class EncryptedPdf(DocumentInvalid):
    code = "encrypted_pdf"


class TooManyPages(DocumentInvalid):
    code = "too_many_pages"


class PageTooLarge(DocumentInvalid):
    code = "page_too_large"


class CorruptPdf(DocumentInvalid):
    code = "corrupt_pdf"


class DocumentTimeout(DocumentInvalid):
    code = "timeout"


class PageNotFound(NotFound):
    code = "page_not_found"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
