"""`arag demo`: the README's first command. Ingests the attributed SQuAD sample (package data,
adaptive_rag/demo_data/; attribution in corpora/README.md) into the collection `demo`, shows what
retrieval finds for a few of its questions next to the paragraph that holds the answer, then
(unless --no-answer) fetches the panel's models if needed and answers them under `self_route` and
`probe`, printing each decision. Last, the flagship policy `adaptive` gets three kinds of question
(ADAPTIVE_QUESTIONS): one the collection answers, one of general knowledge the collection does not
hold, and one nothing here answers. For each the demo prints the panel router's action and its
P(correct) per action, the answer, the cost, and whether the router got it right:

- collection / general knowledge: right when the answer's token F1 against the known answer is at
  least 0.5 (the panel router's own definition of correct, gatekeeper/panel_router.py CORRECT_F1);
  abstaining on them is wrong;
- not covered: right when it abstains or the model says the question is unanswerable.

The questions were fixed before the shipped router was run on them; the demo reports its mistakes
as such."""

from __future__ import annotations

import json
from dataclasses import dataclass

import typer

from adaptive_rag.settings import DEMO_SAMPLE, Settings
from gatekeeper.panel_router import CORRECT_F1  # what the router's labels call correct

DEMO_QUESTIONS = 3


@dataclass(frozen=True)
class AdaptiveQuestion:
    kind: str  # "collection" | "general" | "uncovered"
    question: str
    golds: tuple[str, ...]  # known answers; none for "uncovered"

    @property
    def expected(self) -> str:
        if self.kind == "collection":
            return f"an answer from the collection (gold: {self.golds[0]})"
        if self.kind == "general":
            return f"general knowledge, not in the collection (known answer: {self.golds[0]})"
        return "abstain, or say the collection does not answer it (neither the sample nor general knowledge does)"


def _sample() -> dict:
    return json.loads(DEMO_SAMPLE.read_text(encoding="utf-8"))


def _questions() -> list[tuple[str, str, str]]:
    """(question, gold answer, gold paragraph key) for the first paragraph-1 question of each article."""
    out = []
    for article in _sample()["data"][:DEMO_QUESTIONS]:
        qa = article["paragraphs"][1]["qas"][0]
        out.append((qa["question"], qa["answers"][0]["text"], f"{article['title']}#1"))
    return out


def adaptive_questions() -> list[AdaptiveQuestion]:
    """The three questions for `adaptive`, chosen by rule before the router saw them: the collection
    question by the same rule as `_questions`, from the next article (IPCC); a general-knowledge
    question whose answer the sample does not hold (no "Paris" in it); a specific fact the sample
    does not hold (no "Leeds", no "employees") and general knowledge does not either."""
    article = _sample()["data"][DEMO_QUESTIONS]
    qa = article["paragraphs"][1]["qas"][0]
    return [
        AdaptiveQuestion("collection", qa["question"], tuple(dict.fromkeys(a["text"] for a in qa["answers"]))),
        AdaptiveQuestion("general", "What is the capital of France?", ("Paris",)),
        AdaptiveQuestion("uncovered", "How many employees did Sky UK have in its Leeds office in 2019?", ()),
    ]


def _said_unanswerable(decision: dict) -> bool:
    """The answering stage (named after the decision's route) says the model found no answer."""
    return any(s["name"] == decision.get("route") and s.get("outcome") == "unanswerable" for s in decision["stages"])


def judge(question: AdaptiveQuestion, decision: dict) -> tuple[bool, str]:
    """Whether `adaptive` did the right thing for `question` (see the module docstring), and why."""
    if decision.get("status", "ok") != "ok":
        return False, f"wrong: the request failed ({decision.get('status')}: {decision.get('error')})"
    abstained = decision.get("route") == "abstain"
    refused = _said_unanswerable(decision)
    if question.kind == "uncovered":
        if abstained:
            return True, "right: it abstained without calling a model"
        if refused:
            return True, f"right: the model ({decision['route']}) said the question is unanswerable"
        return False, (f"WRONG: it answered ({decision['route']}) a question that neither the collection nor general "
                       "knowledge answers; the right move was to abstain")
    source = "the collection" if question.kind == "collection" else "general knowledge"
    if abstained:
        return False, f"WRONG: it abstained on a question {source} answers"
    from adaptive_rag.answers import token_f1

    f1 = max(token_f1(decision.get("answer") or "", gold) for gold in question.golds)
    if refused:
        return False, f"WRONG: the model ({decision['route']}) said it cannot answer a question {source} answers"
    if f1 >= CORRECT_F1:
        return True, f"right: F1 {f1:.2f} against {question.golds[0]!r} (>= {CORRECT_F1})"
    return False, f"WRONG: F1 {f1:.2f} against {question.golds[0]!r} (< {CORRECT_F1})"


def panel_line(settings: Settings) -> str:
    """Which models serve `adaptive`, and so which actions its router may choose."""
    from gatekeeper.panel_router import available_actions

    strong = settings.strong_model
    actions = ", ".join(available_actions(strong is not None))
    models = f"reader {settings.reader_model}"
    if settings.long_context_model != settings.reader_model:
        models += f", long context {settings.long_context_model}"
    models += f", strong {strong}" if strong else "; no strong model (ARAG_STRONG_MODEL unset)"
    return f"Panel serving `adaptive`: {models}. The router may choose: {actions}."


def format_adaptive(question: AdaptiveQuestion, decision: dict, verdict: tuple[bool, str]) -> str:
    """One `adaptive` answer: the panel router's action and P(correct) per action, the answer, its
    cost, what was expected and whether it was right."""
    from adaptive_rag.present import duration

    stage = next((s for s in decision["stages"] if s["name"] in ("panel_router", "learned_router")), None)
    action = stage["outcome"] if stage else "(no panel router stage)"
    signals = (stage or {}).get("signals") or {}
    probs = signals.get("probabilities") or {}
    offered = set((signals.get("utility") or {}).keys())
    shown = ", ".join(f"{a} {p:.2f}" + ("" if not offered or a in offered else " (not in the panel)")
                      for a, p in probs.items())
    usage = decision["usage"]
    weight = (stage or {}).get("thresholds", {}).get("adaptive_cost_weight")
    return "\n".join([
        f"\nQ [{question.kind}]: {question.question}",
        f"  expected: {question.expected}",
        f"  action: {action}" + (f"  (cost weight {weight})" if weight is not None else ""),
        f"  P(correct) per action: {shown or '-'}",
        f"  answer: {decision.get('answer') if decision.get('answer') is not None else '(none)'}",
        f"  cost: ${decision.get('cost') or 0:.6f}, {usage['input_tokens'] + usage['output_tokens']} tokens "
        f"({usage['input_tokens']} in / {usage['output_tokens']} out), {duration(decision.get('latency_ms'))}  "
        f"decision: {decision['id']}",
        f"  verdict: {verdict[1]}",
    ])


def adaptive_demo(engine, settings: Settings) -> None:
    """The three kinds of question under `adaptive` (see the module docstring)."""
    typer.echo(f"\n== The flagship policy `adaptive`: the panel router picks (route, model) before answering\n"
               f"{panel_line(settings)}")
    right = 0
    for question in adaptive_questions():
        decision = engine.answer("demo", question.question, policy="adaptive").to_dict()
        verdict = judge(question, decision)
        right += verdict[0]
        typer.echo(format_adaptive(question, decision, verdict))
    typer.echo(f"\n`adaptive` did the right thing on {right} of 3 (a small learned router: it errs; "
               "`arag decisions ID` shows every stage of a decision).")


def answer_demo(settings: Settings) -> None:
    from adaptive_rag.query.builder import build_engine
    from adaptive_rag.models.catalog import resolve
    from adaptive_rag.models.pull import is_pulled, pull
    from adaptive_rag.present import format_decision

    for name in settings.panel_models:  # reader, long context, strong (when set): all `adaptive` may pick
        spec = resolve(settings.catalog, name)
        if spec.pull and not is_pulled(settings.models_dir, spec.pull):
            typer.echo(f"\nFetching the model {name} (arag models pull {spec.pull}):")
            pull(settings.models_dir, spec.pull, say=typer.echo)
    typer.echo("\nLoading the panel's models...")
    engine = build_engine(settings)
    for question, gold, _ in _questions():
        for policy in ("self_route", "probe"):
            decision = engine.answer("demo", question, policy=policy)
            typer.echo(f"\nQ: {question}  (gold answer: {gold})\n{format_decision(decision.to_dict())}")
    adaptive_demo(engine, settings)
    typer.echo("\nTry: arag query \"your question\" -c demo --policy adaptive   |   arag decisions   |   arag serve")


def run_demo(settings: Settings, store, embedder) -> None:
    from adaptive_rag.retrieve import Retriever
    from ingest.pipeline import Ingestor
    from ingest.sources import read_source

    report = Ingestor(settings, store, embedder).run("demo", read_source("squad-sample", settings))
    typer.echo(report.summary())
    retriever = Retriever(settings, store, embedder)
    for question, gold_answer, gold in _questions():
        result = retriever.search("demo", question, k=3)
        ranks = [h.key for h in result.hits]
        where = f"rank {ranks.index(gold) + 1}" if gold in ranks else "not in top 3"
        typer.echo(f"\nQ: {question}  (answer: {gold_answer}; gold paragraph {gold}: {where})")
        for rank, hit in enumerate(result.hits, start=1):
            typer.echo(f"  {rank}. {hit.score:.4f} {hit.key}: {' '.join(hit.text.split())[:110]}...")
        timing = ", ".join(f"{k} {v:.1f}" for k, v in result.timings_ms.items())
        typer.echo(f"  ({timing} ms)")
    typer.echo("\nTry: arag search \"your question\" --collection demo   |   arag collections")
