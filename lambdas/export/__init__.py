"""The export function (``handler``): ``GET /api/user/export``."""

from qrpro.api import lean

lean.install()
