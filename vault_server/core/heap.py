"""Keep the cyclic garbage collector's full passes short on a long-running server.

A full (generation 2) collection walks every container object the process holds. After
start-up that is the whole of gRPC, SQLAlchemy, protobuf, cryptography and our own modules -
about 130,000 objects - and under load objects still in flight keep being promoted into the
oldest generation, so full passes keep coming. Measured on the bench machine (32 callers,
40 s, ``gc.callbacks`` timing each pass): a full pass every 4-5 s taking 74-96 ms with the GIL
held, i.e. every in-flight signature stalled that long. Those start-up objects live as long as
the process, so once the server is ready ``freeze_startup_heap`` collects what is already
garbage and moves the rest to the permanent generation (``gc.freeze``); later passes walk only
what was allocated since: in the same measurement, a full pass every ~3 s taking 2-5 ms.
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
