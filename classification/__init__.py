"""Image classification with searched spiking neural networks, on the stereo_snn engine.

Modules: ``config`` (YAML presets, overrides), ``data`` (CIFAR-10/100 pickles, ImageNet
class folders, scikit-learn digits; no torchvision, no downloads), ``network`` (the
classifier on the engine's trellis), ``search`` / ``train`` / ``evaluate`` (runs), ``demo``
(digits end to end) and ``cli`` (``stereo-snn classify ...``).
"""
