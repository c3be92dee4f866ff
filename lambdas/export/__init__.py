"""The export function (``handler``): ``GET /api/user/export``."""

from qrpro import lean

lean.install()
