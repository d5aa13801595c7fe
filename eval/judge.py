"""LLM-judged Ragas metrics through any OpenAI-compatible endpoint (`arag eval --judge URL`):
faithfulness of the answer to the cited chunks, and answer correctness against the gold answer
(its factuality part only: weights [1, 0], so no embedding model is needed). A judge that fails
on an answer (timeout, unparseable structured output) is recorded in `judge_error` and the run
goes on; a small judge model fails often, which the error count in the report makes visible."""

from __future__ import annotations

from typing import Sequence


class Judge:
    def __init__(self, url: str, model: str = "judge", api_key: str | None = None, timeout_s: float = 120.0):
        from eval.ragas_metrics import offline_environment

        offline_environment()
        import warnings

        from openai import AsyncOpenAI

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from ragas.llms import llm_factory
            from ragas.metrics.collections import AnswerCorrectness, Faithfulness

        llm = llm_factory(model, client=AsyncOpenAI(base_url=url, api_key=api_key or "not-needed", timeout=timeout_s,
                                                    max_retries=1))
        self.url = url
        self._faithfulness = Faithfulness(llm=llm)
        self._correctness = AnswerCorrectness(llm=llm, weights=[1.0, 0.0])

    def score(self, question: str, answer: str, reference: str, contexts: Sequence[str]) -> dict:
        out: dict = {"faithfulness": None, "answer_correctness": None, "judge_error": None}
        errors = []
        try:
            out["answer_correctness"] = float(self._correctness.score(user_input=question, response=answer or " ",
                                                                      reference=reference).value)
        except Exception as exc:  # any judge failure is data about the judge, not a crash of the run
            errors.append(f"answer_correctness: {type(exc).__name__}: {str(exc)[:160]}")
        if contexts:
            try:
                out["faithfulness"] = float(self._faithfulness.score(user_input=question, response=answer or " ",
                                                                     retrieved_contexts=list(contexts)).value)
            except Exception as exc:
                errors.append(f"faithfulness: {type(exc).__name__}: {str(exc)[:160]}")
        out["judge_error"] = "; ".join(errors) or None
        return out
