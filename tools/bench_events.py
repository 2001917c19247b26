#!/usr/bin/env python3
"""Events benchmark: numba voxel grid vs the torch reference, DSEC window load+rectify+voxelise.

Same as ``stereo-snn bench events``; see ``--help``.
"""

import sys

from stereo_snn.bench.events import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
