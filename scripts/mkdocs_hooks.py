"""mkdocs hooks: the one warning the docs build expects and drops.

`ferrograd/__init__.py` extends `__all__` with the op names the op table generates
(`__all__ += _ops._NAMES`), which griffe's static analysis cannot read; everything else
stays a warning, which `strict: true` makes an error.
"""

from __future__ import annotations

import logging


class _DropDynamicAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Unsupported item in ferrograd.__all__" not in record.getMessage()


def on_startup(**kwargs) -> None:
    for name in ("mkdocs.plugins.griffe", "griffe", "mkdocs.plugins.mkdocstrings_handlers", "mkdocs"):
        logging.getLogger(name).addFilter(_DropDynamicAll())
