"""Fixtures shared by the suite: real servers on 127.0.0.1, never the real web."""

from __future__ import annotations

from tests.smtpservers import serve

__all__ = ["serve"]
