"""The printable QR image of a code (docs/api.md 6.9): GET /api/codes/{id}/qr."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from qrpro.api.context import caller
from qrpro.api.openapi import errors
from qrpro.api.router import Router
from qrpro.domain import style
from qrpro.domain.errors import ValidationFailed
from qrpro.services import codes

router = Router()

CACHE_CONTROL = "private, max-age=300"
_BINARY = {"type": "string", "format": "binary"}
_IMAGE_RESPONSES: dict[int, Any] = {
    200: {"description": "The QR image; decodes to exactly the encoded URL. `ETag` (strong) and "
                         "`Cache-Control: private, max-age=300`.",
          "content": {"image/svg+xml": {"schema": _BINARY}, "image/png": {"schema": _BINARY},
                      "application/pdf": {"schema": _BINARY}}},
    304: {"description": "Not modified: `If-None-Match` matches the image's ETag (empty body)."},
}


def etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    want = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == want for tag in header.split(","))


@router.get(
    "/api/codes/<code_id>/qr", operation_id="getCodeQr",
    tags=["Codes"],
    summary="The printable QR image of a code (SVG, PNG or PDF)",
    description="Renders the code with its `style_json`, `logo_key`, `frame_style` and `frame_text`. "
                "`variant=dynamic` encodes `short_url`, `static` the destination `url`. Query `scale` and "
                "`border` override `style_json`. A logo raises the error level to `h` (and is left out when "
                "the data is too long for `h`). See docs/qr-images.md.",
    responses={**_IMAGE_RESPONSES, **errors(400, 404)},
)
def get_qr(
    code_id: str,
    format: Annotated[style.QrFormat, Query(description="image format")] = "svg",
    variant: Annotated[style.QrVariant,
                       Query(description="`dynamic` encodes short_url, `static` the destination url")] = "dynamic",
    scale: Annotated[int | None, Query(ge=1, le=style.SCALE_MAX,
                                       description="pixels (PDF: points) per module")] = None,
    border: Annotated[int | None, Query(ge=0, le=style.BORDER_MAX, description="quiet zone in modules")] = None,
):  # no return annotation: Powertools then passes the image body through unvalidated
    code = codes.get(caller(router).scope, code_id, with_scans=False)
    opts = style.resolve(code.get("style_json"))
    if scale is not None:
        opts["scale"] = scale
    if border is not None:
        opts["border"] = border
    data = str(code["short_url"] if variant == "dynamic" else code["url"])
    options: dict[str, Any] = {
        "fmt": format, "dark": opts["dark"], "light": opts["light"], "error": opts["error"],
        "scale": opts["scale"], "border": opts["border"], "frame_style": code.get("frame_style") or "none",
        "frame_text": code.get("frame_text") or "", "logo_key": code.get("logo_key") or None,
    }
    from qrpro import images  # segno and Pillow: loaded by the first image request, not at every cold start

    etag = f'"{images.cache_key(data, **options)}"'
    shortcode = "".join(ch for ch in str(code.get("shortcode") or "qr") if ch.isalnum())
    headers = {
        "ETag": etag, "Cache-Control": CACHE_CONTROL,
        "Content-Disposition": f'inline; filename="{shortcode}-{variant}.{format}"',
    }
    if etag_matches(router.current_event.headers.get("If-None-Match"), etag):
        return Response(status_code=304, body="", headers=headers)
    try:
        image = images.render(data, **options)
    except images.DataTooLong:
        raise ValidationFailed("variant", "the code's url is too long for a static QR code; "
                                          "use variant=dynamic") from None
    body: str | bytes = image.decode("utf-8") if format == "svg" else image
    return Response(status_code=200, content_type=images.CONTENT_TYPES[format], body=body, headers=headers)
