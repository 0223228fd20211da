"""Every LLM call tracec makes: the litellm client (cache, budget, retries), the embedded local model,
and `tracec.chat` for workflows."""
