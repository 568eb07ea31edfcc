"""The Compare page: several models, quants or settings on the same prompt, and the runner that drives them."""
