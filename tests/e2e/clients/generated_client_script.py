"""Run by tests/e2e/test_reference.py with a client that openapi-python-client
generated from the local stack's document, untouched. Prints what it saw as JSON."""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile

import zxingcpp
from PIL import Image
from qrpro_client import AuthenticatedClient
from qrpro_client.api.analytics import get_code_analytics
from qrpro_client.api.codes import create_code, get_code, get_code_qr, list_codes, update_code
from qrpro_client.api.user_and_keys import export_data, get_user
from qrpro_client.models import CodeCreate, CodePatch, ErrorBody, ExportLink, QrFormat
from qrpro_client.types import File

client = AuthenticatedClient(base_url=os.environ["QRPRO_API"], token=os.environ["QRPRO_KEY"])
out: dict[str, object] = {}
user = get_user.sync(client=client)
out["plan"] = user.plan.value
created = [create_code.sync(client=client, body=CodeCreate(url=f"https://example.com/{i}", label=f"c{i}"))
           for i in range(3)]
out["created"] = [c.shortcode for c in created]
page1 = list_codes.sync(client=client, limit=2)
page2 = list_codes.sync(client=client, limit=2, cursor=page1.next_cursor)
out["pages"] = [[c.id for c in page1.codes], [c.id for c in page2.codes], page2.next_cursor]
patched = update_code.sync(created[0].id, client=client, body=CodePatch(label="renamed"))
out["patched_label"] = patched.label
analytics = get_code_analytics.sync(created[0].id, client=client)
out["analytics"] = [analytics.total, len(analytics.timeseries), analytics.range_.value]
png = get_code_qr.sync(created[0].id, client=client, format_=QrFormat.PNG)
assert isinstance(png, File), png
decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.payload.read())))
out["qr"] = [decoded[0].text if decoded else None, created[0].short_url]
archive = export_data.sync(client=client)
assert isinstance(archive, File), archive
out["zip"] = sorted(zipfile.ZipFile(io.BytesIO(archive.payload.read())).namelist())
link = export_data.sync(client=client, delivery="url")
assert isinstance(link, File), link  # 200: the generator reads the first media type; delivery=url's is JSON
parsed = ExportLink.from_dict(json.loads(link.payload.read()))
out["export_link"] = [parsed.url.startswith("http"), parsed.expires_at > 0]
bad = create_code.sync(client=client, body=CodeCreate(url="ftp://example.com/"))
assert isinstance(bad, ErrorBody), bad
out["400"] = [bad.error, bad.field, bool(bad.message)]
missing = get_code.sync("00000000-0000-4000-8000-000000000000", client=client)
assert isinstance(missing, ErrorBody), missing
out["404"] = [missing.error, bool(missing.message)]
sys.stdout.write(json.dumps(out))
