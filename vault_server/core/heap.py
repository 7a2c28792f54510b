"""Keep the cyclic garbage collector's full passes short on a long-running server.

A full (generation 2) collection walks every container object the process holds. Right after
start-up that is the whole of gRPC, SQLAlchemy, protobuf, cryptography and our own modules -
about 130,000 objects, which took 80-100 ms per pass on the bench machine, with the GIL held:
every in-flight signature waited that long (the bench's sequential p99.9 was 30-60 ms before,
about 8 ms after). Those start-up objects live as long as the process, so once the server is
ready ``freeze_startup_heap`` collects what is already garbage and moves the rest to the
permanent generation (``gc.freeze``): later passes walk only what was allocated since.
Reference counting still frees frozen objects as usual; only a reference cycle formed among
them after the freeze would outlive its use, and start-up state is not torn down while serving.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect, then freeze every surviving object; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
