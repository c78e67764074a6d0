"""The local cache of one signed-in user: ``Cache`` (sync/cache/db.py) and the types it speaks.

Layout: ``db.py`` the class and its verbs; ``files.py`` the file, its writer thread, migrations and
salvage; ``schema.py`` the versioned DDL; ``writes.py`` and ``reads.py`` the SQL. Nothing outside this
package writes SQL.
"""

from sync.cache.db import Applied, Cache, CacheInfo
from sync.cache.files import CacheCorrupt
from sync.cache.schema import VERSION as SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Applied", "Cache", "CacheCorrupt", "CacheInfo"]
