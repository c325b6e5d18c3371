"""The annual report to MOST and periodic summaries."""
