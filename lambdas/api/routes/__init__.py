"""The API's routes, one router per area of docs/api.md."""
