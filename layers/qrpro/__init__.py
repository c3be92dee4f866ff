"""QR Pro's shared package: the domain rules and the data access of the service.

Shipped as a Lambda layer and imported by every function under ``lambdas/``.
``qrpro.domain`` holds pure rules (no AWS); ``qrpro.data`` is the only place
that talks to AWS services.
"""
