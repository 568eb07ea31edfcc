"""The model ladder: every catalogue model at every common quant type, judged for one budget before a download."""
