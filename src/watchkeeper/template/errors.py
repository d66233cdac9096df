"""Errors of the Go template engine, with Go's message text."""

from __future__ import annotations


class TemplateError(Exception):
    """Raised when a template fails to parse or to execute; str() is Go's message.

    Examples: `template: t:1: function "foo" not defined` (parse) and
    `template: t:1:3: executing "t" at <.X>: ...` (execution).
    """


class TemplateParseError(TemplateError):
    """Raised when template text does not parse."""


class TemplateExecError(TemplateError):
    """Raised when executing a parsed template fails."""


class GoFuncError(Exception):
    """Raised by a template function to report an error (Go's `return ..., err`)."""
