"""Token estimates for when a provider reports none (a stopped run, the demo model)."""


def estimate_tokens(text: str) -> int:
    """About four characters a token: the usual rule of thumb for English."""
    return max((len(text) + 3) // 4, 1) if text else 0
