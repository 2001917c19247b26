#!/usr/bin/env python3
"""GPU check: search, training and inference of both applications on CUDA with mixed precision,
checked against the CPU in float32, with throughput and peak GPU memory.

Same as ``stereo-snn bench gpu``; see ``--help``.
"""

import sys

from stereo_snn.bench.gpu import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
