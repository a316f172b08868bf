"""The naive baseline: Pillow decode, the card's preprocessing in torch ops, eager PyTorch inference."""
