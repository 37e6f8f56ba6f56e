"""Helpers the test modules share: the server process, test databases, requirements."""
