#!/usr/bin/env python3
"""Search benchmark: time and peak memory of one bilevel search step on a reference supernet;
with ``--memory``, peak memory per sample of each memory-saving search mode.

Same as ``stereo-snn bench search``; see ``--help`` and ``--memory --help``.
"""

import sys

from stereo_snn.bench.search import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
