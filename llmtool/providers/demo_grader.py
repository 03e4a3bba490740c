"""demo:grader — the offline demo's deterministic grader, so `judge` assertions run without a key.

It reads a grading prompt as `llmtool.evaluation.judge` writes it (the last user message):

    <rubric>
    The answer names "Paris" and "France".
    </rubric>
    …
    <answer>
    Paris is the capital of France.
    </answer>

and answers with one JSON verdict, `{"pass": true, "score": 1.0, "reason": "…"}`, derived from the
rubric and the answer only:

- every term the rubric puts in double quotes ("…" or “…”) must appear in the answer, ignoring case:
  the score is the share found, the verdict passes when all are found;
- a rubric without quoted terms passes any answer that is not empty (score 1), fails an empty one;
- a prompt without a `<rubric>` section fails with a reason saying so.

The rubric is the text between the first `<rubric>` and the `</rubric>` after it; the answer is the
text after the first `<answer>` that follows, up to the last `</answer>`. At most `MAX_TERMS` terms
of `MAX_TERM_CHARS` characters each are looked for: the work is linear in the prompt's length.
"""

from __future__ import annotations

import json

from llmtool.providers.base import ProviderRequest

MAX_TERMS = 20
MAX_TERM_CHARS = 200
_QUOTES = str.maketrans({"“": '"', "”": '"'})


def grade(request: ProviderRequest) -> str:
    """The JSON verdict for the grading prompt in `request`'s last user message."""
    prompt = request.messages[-1].content if request.messages else ""
    passed, score, reason = verdict(prompt)
    return json.dumps({"pass": passed, "score": score, "reason": reason}, ensure_ascii=False)


def verdict(prompt: str) -> tuple[bool, float, str]:
    sections = _sections(prompt)
    if sections is None:
        return False, 0.0, "demo:grader found no <rubric> section to grade against"
    rubric, answer = sections
    terms = quoted_terms(rubric)
    if not terms:
        if answer.strip():
            return True, 1.0, "the rubric quotes no terms and the answer is not empty"
        return False, 0.0, "the answer is empty"
    folded = answer.casefold()
    missing = [term for term in terms if term.casefold() not in folded]
    found = len(terms) - len(missing)
    score = round(found / len(terms), 3)
    if missing:
        lacking = ", ".join(json.dumps(term, ensure_ascii=False) for term in missing)
        return False, score, f"the answer lacks {lacking} ({found} of {len(terms)} quoted terms found)"
    return True, 1.0, f"the answer contains all {len(terms)} quoted terms of the rubric"


def quoted_terms(rubric: str) -> list[str]:
    """The rubric's terms in double quotes, in order, each once (at most MAX_TERMS)."""
    pieces = rubric.translate(_QUOTES).split('"')
    parts = pieces[1::2]
    if len(pieces) % 2 == 0:  # an odd number of quotes: the text after the last one is no term
        parts = parts[:-1]
    terms: list[str] = []
    for part in parts:
        term = part.strip()
        if term and len(term) <= MAX_TERM_CHARS and term not in terms:
            terms.append(term)
        if len(terms) == MAX_TERMS:
            break
    return terms


def _sections(prompt: str) -> tuple[str, str] | None:
    start = prompt.find("<rubric>")
    if start < 0:
        return None
    start += len("<rubric>")
    end = prompt.find("</rubric>", start)
    if end < 0:
        return None
    rubric = prompt[start:end].strip()
    opening = prompt.find("<answer>", end)
    if opening < 0:
        return rubric, ""
    opening += len("<answer>")
    closing = prompt.rfind("</answer>")
    answer = prompt[opening:closing] if closing >= opening else prompt[opening:]
    return rubric, answer.strip("\n")
