"""The scans function (``handler``)."""

from qrpro import lean

lean.install()
