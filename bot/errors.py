"""Errors of the bot package.

ValueError
└── KnowledgeBaseError      the knowledge base file is missing, unreadable or malformed
RuntimeError
└── BotStartupError         the bot cannot start (no token, token rejected)
"""

from __future__ import annotations


class KnowledgeBaseError(ValueError):
    """The knowledge base YAML cannot be used; the message names the file and the problem."""


class BotStartupError(RuntimeError):
    """`rapport run` cannot start; the message is the one line the operator sees."""
