"""Background baselines and the streaming radiological, rain-aware and technical detectors."""
