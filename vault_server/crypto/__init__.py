"""The crypto layer: an ``Aead`` primitive, the envelope format, key providers and a DEK cache.

Everything here speaks ``bytes`` and :class:`~vault_server.core.secret.Secret` and raises only
domain errors (``IntegrityCheckFailed``, ``KeyProviderUnavailable``, ``InvalidArgument``,
``InternalError``): library exceptions never cross this package's boundary. Imports: the
standard library, ``cryptography``, ``vault_server.core`` and, lazily, ``hvac``.

Entry points:

- :mod:`vault_server.crypto.envelope` -- ``seal`` / ``open_envelope`` / ``rewrap`` /
  ``parse_header`` over an ``EnvelopeBinding``.
- :func:`vault_server.crypto.providers.new_key_provider` -- a ``KeyProvider`` from a URI.
- :class:`vault_server.crypto.dek_cache.DekCache` -- bounded cache of unwrapped data keys.
"""
