"""Tests of components/k3s: renderers, scripts (shellcheck, real runs in a sandbox), graph under mocks."""
