"""The HTTP edge shared by the API-facing functions (api, export): the
request pipeline, the error envelope and the caller's context. Uses
Powertools; the redirect function never imports it."""
