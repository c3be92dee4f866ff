"""The compaction function (``handler``)."""

from qrpro import lean

lean.install()
