"""Event-camera stereo on the searched spiking engine: data, network, losses, and the
search / train / evaluate / infer / demo loops (torch is imported by the submodules, not here)."""
