"""The Fit and Hardware pages: predicted memory against the budget, and what was detected on this machine."""
