"""uplift: retention-campaign optimiser for banks."""

__version__ = "0.1.0"
