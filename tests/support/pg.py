"""The test suite's PostgreSQL: the same private server the bench starts (``service.pgstack``).

One server per session (``tests/support/state.py``): ``initdb`` into a fresh temp dir, a free port,
a private socket dir, the postmaster as our child that dies with pytest (as the ``postgres`` user
when root), stopped by its pid; ``stop()``/``start()`` keep the port and data (outage tests);
``destroy()`` removes the files. Kept as a module so tests import it from their own support package.
"""

from __future__ import annotations

from service.pgstack import PG_SUPERUSER, PgError, PgServer, pg_bin_dir

__all__ = ["PG_SUPERUSER", "PgError", "PgServer", "pg_bin_dir"]
