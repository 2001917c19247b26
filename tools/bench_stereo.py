#!/usr/bin/env python3
"""Stereo inference benchmark: time and peak memory of one full-frame disparity prediction.

Same as ``stereo-snn bench stereo``; see ``--help``.
"""

import sys

from stereo_snn.bench.stereo import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
