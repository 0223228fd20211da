"""tracec.runtime: records the execution graph of instrumented code. Standard library only.

Instrumented modules call `module(...)` once (the header the transform adds) and then the hooks of the
returned `ModuleHooks` object, one cheap call per statement. With no recording active the hooks are
plain pass-through functions; starting a recording swaps every module's hooks for recording ones."""

from .graph import Feedback, Graph, Node, Param, ParamFeedback, write_graph
from .hooks import (
    ModuleHooks,
    active,
    instrumented_modules,
    module,
    observe_exception,
    record,
    set_param_override,
    start,
    stop,
)
from .preview import preview
from .recorder import Recorder

__all__ = ["Feedback", "Graph", "ModuleHooks", "Node", "Param", "ParamFeedback", "Recorder", "active",
           "instrumented_modules", "module", "observe_exception", "preview", "record", "set_param_override",
           "start", "stop", "write_graph"]

