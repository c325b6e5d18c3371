"""Licensed facilities, sealed sources, X-ray equipment declarations and inspections."""
