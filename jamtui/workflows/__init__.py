"""Provisioning workflows: the real tools as subprocesses, their output as progress."""
