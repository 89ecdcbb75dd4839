"""Disco package."""
