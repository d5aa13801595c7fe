"""Token accounting: one `TokenUsage` type carried by every generation and decision."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prices:
    """US dollars per one million tokens."""

    input_per_m: float = 0.0
    output_per_m: float = 0.0


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def cost(self, prices: Prices) -> float:
        """cost = input * p_in / 1e6 + output * p_out / 1e6."""
        return (self.input_tokens * prices.input_per_m + self.output_tokens * prices.output_per_m) / 1e6
