"""Learned worlds: small diffusion models trained here, with their verifiers, for experiments and the demo."""
