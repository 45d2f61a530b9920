"""Tests for the Cleura Gardener dynamic provider (`components/gardener`)."""
