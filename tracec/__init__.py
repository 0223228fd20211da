"""tracec: Trace-style generative optimization as a static source-transformation compiler.

Annotate functions with `@tracec.trace` / `@tracec.trainable` and constants with `tracec.param(...)`;
`tracec instrument` / `tracec run` compile them so they record their execution graph."""

from tracec import runtime
from tracec.api import feedback, param, record, trace, trainable
from tracec.runtime import Node, Param, ParamFeedback

__all__ = ["Node", "Param", "ParamFeedback", "chat", "feedback", "param", "record", "runtime", "trace", "trainable",
           "__version__"]


def __getattr__(name: str):
    if name == "__version__":   # one version, the distribution's (pyproject.toml)
        from tracec.project import tracec_version

        return tracec_version()
    # chat pulls in the config and (on its first call) litellm: loaded on first use so `import tracec` stays light
    if name == "chat":
        from tracec.llm.chat import chat

        globals()["chat"] = chat
        return chat
    raise AttributeError(f"module 'tracec' has no attribute {name!r}")
