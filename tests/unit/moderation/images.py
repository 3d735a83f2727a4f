"""Images for moderation tests: QR codes holding a text."""

from __future__ import annotations

import io

import qrcode


def qr_png(text: str) -> bytes:
    """Return a PNG image of a QR code holding the text."""
    buffer = io.BytesIO()
    qrcode.make(text).save(buffer, format="PNG")
    return buffer.getvalue()
