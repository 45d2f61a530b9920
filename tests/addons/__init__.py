"""Tests of the cluster add-ons (Calico, MetalLB, storage) and their conformance helper."""
