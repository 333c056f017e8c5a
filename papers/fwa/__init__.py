"""Finite Weight Averaging (Wang et al., arXiv 2411.13169): FWA/LAWA vs SGD, SWA and EMA."""
