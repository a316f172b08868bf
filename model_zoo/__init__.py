"""Model definitions, model cards, the reference preprocessing and the default trained model."""
