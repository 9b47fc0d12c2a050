"""Multi-label chest X-ray classifiers trained under the three mask conditions."""
