"""What turns an artifact's file data into zip bytes: the zip writer uses it, every artifact cache key names it."""

from __future__ import annotations

import zlib

#: Deflate level of ``data`` entries; with the zlib version it belongs in every artifact cache key.
COMPRESSION_LEVEL = 6
#: Identifies what turns ``data`` into bytes: include it in build cache keys (zlib forks such as
#: zlib-ng deflate differently at the same level).
COMPRESSOR = f"zlib-{zlib.ZLIB_RUNTIME_VERSION}-level{COMPRESSION_LEVEL}"
