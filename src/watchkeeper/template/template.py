"""The Template type: parse Go template text once, execute it many times."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from watchkeeper.template.errors import TemplateError
from watchkeeper.template.exec import _Executor
from watchkeeper.template.funcs import BUILTINS
from watchkeeper.template.parse import Tree, parse


class Template:
    r"""A parsed Go text/template with its functions and associated {{define}}d templates.

    Example:
        >>> Template.parse("t", "{{ .name | printf \"%q\" }}!").execute({"name": "x"})
        '"x"!'
    """

    def __init__(
        self,
        name: str,
        trees: dict[str, Tree],
        funcs: Mapping[str, Callable[..., Any]],
        *,
        missingkey: str = "default",
    ) -> None:
        self.name = name
        self.trees = trees
        self.funcs = funcs
        self.missingkey = missingkey

    @classmethod
    def parse(
        cls,
        name: str,
        text: str,
        funcs: Mapping[str, Callable[..., Any]] | None = None,
        *,
        missingkey: str = "default",
    ) -> Template:
        """Parses template text; `funcs` adds to (or overrides) Go's builtin functions.

        `missingkey` is Go's option: "default" (prints <no value>), "zero" or "error".

        Raises:
            TemplateParseError: with Go's message ("template: NAME:LINE: ...").
        """
        all_funcs = {**BUILTINS, **(funcs or {})}
        if missingkey not in ("default", "invalid", "zero", "error"):
            raise TemplateError(f'unrecognized option: missingkey="{missingkey}"')
        trees = parse(name, text, set(all_funcs))
        return cls(name, trees, all_funcs, missingkey=missingkey)

    def execute(self, data: Any = None, *, name: str | None = None) -> str:
        """Executes the template (or the associated template `name`) with `data` as dot.

        Raises:
            TemplateExecError: with Go's message ("template: NAME:LINE:COL: executing ...").
        """
        missing = "default" if self.missingkey == "invalid" else self.missingkey
        return _Executor(self.trees, self.funcs, missingkey=missing).execute(
            name or self.name, data
        )
