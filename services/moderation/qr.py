"""Read QR codes from images carried inline (base64) in message attachments."""

from __future__ import annotations

import io
import logging

import zxingcpp
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

MAX_PIXELS = 25_000_000
MAX_CODES = 10


def decode_qr(content: bytes) -> list[str]:
    """Return the texts of the QR codes in an image; nothing for what is not an image."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                return []
            gray = image.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return []
    try:
        codes = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a decoder failure must not fail the message
        log.warning("QR decoding failed", exc_info=True)
        return []
    return [code.text for code in codes[:MAX_CODES] if code.text]
