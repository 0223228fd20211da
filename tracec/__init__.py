"""tracec: Trace-style generative optimization as a static source-transformation compiler.

Annotate functions with `@tracec.trace` / `@tracec.trainable` and constants with `tracec.param(...)`;
`tracec instrument` / `tracec run` compile them so they record their execution graph."""

from . import runtime
from .api import feedback, param, record, trace, trainable
from .runtime import Node, Param, ParamFeedback

__version__ = "0.1.0"
__all__ = ["Node", "Param", "ParamFeedback", "chat", "feedback", "param", "record", "runtime", "trace", "trainable",
           "__version__"]


def __getattr__(name: str):
    # chat pulls in the config and (on its first call) litellm: loaded on first use so `import tracec` stays light
    if name == "chat":
        from .workflow_llm import chat

        globals()["chat"] = chat
        return chat
    raise AttributeError(f"module 'tracec' has no attribute {name!r}")
