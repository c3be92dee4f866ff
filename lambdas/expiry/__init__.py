"""The expiry function (``handler``)."""

from qrpro import lean

lean.install()
