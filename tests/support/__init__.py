"""Helpers the tiers share: sandbox fixtures, configs, corpora, a terminal reader."""
