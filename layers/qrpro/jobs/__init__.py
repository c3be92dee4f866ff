"""Scheduled jobs (expiry, retention) shared by the Lambda handlers and the admin CLI."""
