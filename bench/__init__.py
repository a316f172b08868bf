"""The benchmark: start every registered variant, measure it the same way, write one comparison report."""
