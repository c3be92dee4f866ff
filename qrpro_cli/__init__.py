"""The `qrpro` command: the local stack (`qrpro local`) and the admin CLI."""
