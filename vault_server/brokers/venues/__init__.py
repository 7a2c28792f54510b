"""One module per venue: its :class:`~vault_server.brokers.spec.VenueSpec` and order mapping.

Each module exports ``SPEC`` (or, for venues with variants, the specs) and ``ADAPTER``, the
:class:`~vault_server.brokers.spec.SpecAdapter` the registry hands to the services.
"""
