"""The webhooks function (``handler``)."""

from qrpro import lean

lean.install()
