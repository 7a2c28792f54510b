"""Out-of-database side channels: pager delivery (PagerDuty Events API v2, generic webhook) from
the outbox, and the sinks that export signed audit checkpoints.

This layer sits beside ``storage`` and never imports it: the pager sender works against the small
``OutboxStore`` protocol that ``vault_server.paging`` implements over the ``pager_outbox`` table.
"""
