"""Two no-op-cutting patches of NiceGUI's per-element cost, and a frozen startup heap (issue 14, bench
`inbox_5k`: the page's server time).

A py-spy profile of the workspace page's build (25 loads of the inbox on the bench's 5,000-ticket desk) put
~18 % of it in ``inspect.signature`` and ~20 % in binding propagation, both paid for every element created,
neither doing anything for ours:

- ``helpers.expects_arguments`` is asked, for every element, about the same three bound methods (its classes',
  style's and props' ``_update``): each ``ObservableCollection`` computes ``inspect.signature`` anew. A bound
  method's signature is its function's minus ``self``, so the answer is cached per function (a class's
  function: a small, fixed set; nothing per element or per lambda is kept).
- ``BindableProperty.__set__`` propagates every new value (``visible = True`` in every element's
  ``__init__``): ``_propagate`` sets a context variable and walks the bindings of that object and name — and
  for an object with no binding there is nothing to walk. The patch returns early when the ``bindings`` index
  has no entry for ``(id(obj), name)``, exactly what the walk would have found.

And the collector: a page builds some 7,000 container objects, so each load runs ~10 young collections and
every few loads a full one over the whole heap (~140,000 objects at startup, most of them modules and NiceGUI
that live as long as the process). ``freeze_heap`` (``gc.freeze()`` once the app has started) moves those out of
the collector's reach: over 20 loads of the bench's inbox, 783 ms of collection without it, 256 ms with it
(load ~9; measured with ``gc.callbacks``). Nothing is leaked by it: frozen objects are never freed by the cycle
collector, and these live until exit anyway.

Why patches and not upstream: NiceGUI 3.x has no switch for either; both wrappers keep the originals' results
(tests/test_speedups.py checks them against the originals) and are installed only when the functions they
wrap have the expected shape, so a NiceGUI that changed them runs unpatched rather than wrong.
"""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable
from typing import Any

from nicegui import binding, helpers, observables

_signature_answers: dict[Callable[..., Any], bool] = {}


def expects_arguments(func: Callable[..., Any]) -> bool:
    """``helpers.expects_arguments``, remembered per bound method's function."""
    underlying = getattr(func, "__func__", None)
    if underlying is None or not inspect.ismethod(func):
        return bool(_original_expects(func))
    found = _signature_answers.get(underlying)
    if found is None:
        found = _signature_answers[underlying] = bool(_original_expects(func))
    return found


def propagate(source_obj: Any, source_name: tuple[str, ...]) -> None:
    """``binding._propagate``, skipping the walk for an object and name nothing is bound to."""
    if (id(source_obj), source_name) not in binding.bindings:
        return
    _original_propagate(source_obj, source_name)


_original_expects = helpers.expects_arguments
_original_propagate = binding._propagate


def freeze_heap() -> None:
    """Move everything allocated at startup (modules, NiceGUI, the backend) out of the collector's reach."""
    gc.freeze()


def install() -> bool:
    """Patch NiceGUI (once); False when its internals are not the shape these patches were written for."""
    if helpers.expects_arguments is expects_arguments:
        return True
    shaped = (
        callable(getattr(binding, "_propagate", None))
        and isinstance(getattr(binding, "bindings", None), dict)
        and getattr(observables, "helpers", None) is helpers
    )
    if not shaped:
        return False
    helpers.expects_arguments = expects_arguments  # observables looks it up as helpers.expects_arguments
    binding._propagate = propagate  # BindableProperty.__set__ looks it up as a module global
    return True
