"""Multiple-choice scoring (SPEC §9): constrained next-letter decoding and cloze log-likelihood.

*letter* (the paper's protocol): k-shot prompt, question, lettered options, ``Answer:``; the
next-token logits are restricted to the answer letters' tokens (both "A" and " A" variants, the
max of the two) and the argmax is the prediction. The k-shot prefix is the same for every
question of a dataset, so it is encoded once and its KV cache reused: each question then costs
only its own tokens. Questions are batched (right padding after the cached prefix; the logits
are read at each row's last real token).

*cloze* (lm-evaluation-harness's ARC/SciQ style): the log-likelihood of each option's text as the
continuation of ``Question: …\\nAnswer:``; ``acc`` takes the raw sum, ``acc_norm`` divides it by
the option's length in characters without the leading space (lm-evaluation-harness 0.4's
``acc_norm``: ``len(choice)`` of the choice string, its ``target_delimiter`` " " not counted), and
``acc_norm_bytes`` by the UTF-8 length of the scored continuation, leading space included (what
``acc_norm`` meant before; not lm-evaluation-harness's ``acc_bytes``, which leaves the space out).
The few-shot prefix is cached once per dataset and each question's context once per question; the
options run as one batch on top of it.

*format* (for a dataset that declares an answer format, see :mod:`tada.eval.datasets`): two
measures after each question's own ``prompt``, and their conjunction. Format compliance: a greedy generation of at most
``FORMAT_MAX_NEW_TOKENS`` tokens complies when the dataset's regex matches in it (rate with a 95%
Wilson interval). Content accuracy inside the format: the cloze log-likelihood of each option
written in the dataset's template (``acc`` = raw sum; ``acc_norm`` = sum / the filled template's
length in characters, lm-evaluation-harness's normalisation of a choice written with an empty
``target_delimiter``; ``acc_norm_bytes`` = sum / its UTF-8 length), with the cloze machinery above.
Joint score: per question, the generation complies **and** the option picked by log-likelihood is
the right one (``joint`` in each prediction; ``joint_rate`` with its Wilson interval): knowledge
delivered in the format as one measure.

The model input is always ``prefix_ids + question_ids`` (the two parts tokenized separately),
with or without cache reuse, so reuse changes the cost and not the prompt.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers.modeling_outputs import CausalLMOutputWithPast

from .._util import PROGRESS_DELAY_S
from ..errors import TadaError
from .prompts import LETTERS, answer_for, format_mcq
from .datasets import MCQ, MCQDataset, declares_format, fewshot_for

#: The forward keyword and output field of the KV cache: ``cache`` since transformers renamed it
#: (5.x, with a deprecation notice for the old name), ``past_key_values`` before.
KV = "cache" if "cache" in {f.name for f in dataclasses.fields(CausalLMOutputWithPast)} else "past_key_values"


def kv_of(out) -> object:
    """The KV cache of a model output (either field name)."""
    return getattr(out, KV)


SCORINGS = ("letter", "cloze", "format")
#: Greedy tokens generated after a prompt to judge format compliance.
FORMAT_MAX_NEW_TOKENS = 24


@dataclass
class EvalResult:
    """Accuracy with n and a 95% Wilson interval, per-example predictions, and cost counters."""

    dataset: str
    scoring: str
    accuracy: float
    n: int
    ci: tuple[float, float]
    predictions: list[dict]
    metrics: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)


def wilson_interval(correct: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (exact formula, no continuity correction)."""
    if n == 0:
        return (0.0, 0.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 or n correct the bound is exactly 0 or 1 (centre ∓ half cancels, up to rounding).
    return (0.0 if correct == 0 else max(0.0, centre - half), 1.0 if correct == n else min(1.0, centre + half))


def macro_f1(gold: list[int], pred: list[int], n_classes: int) -> float:
    """Mean over classes of F1 (a class with no gold and no predicted items is skipped)."""
    scores = []
    for c in range(n_classes):
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0


def letter_token_ids(tokenizer, n_options: int) -> list[list[int]]:
    """For each letter, the single-token ids of "A" and " A" (whatever the tokenizer makes of them)."""
    out = []
    for letter in LETTERS[:n_options]:
        ids = set()
        for variant in (letter, " " + letter):
            enc = tokenizer.encode(variant, add_special_tokens=False)
            if len(enc) == 1 and tokenizer.decode(enc).strip() == letter:  # not <unk> or a bare space
                ids.add(enc[0])
        if not ids:
            raise TadaError(f"the tokenizer has no single token for the answer letter {letter!r}")
        out.append(sorted(ids))
    return out


def shot_text(q: MCQ, scoring: str) -> str:
    """A solved example: the question as ``scoring`` asks it, followed by its correct answer."""
    if scoring == "letter":
        return format_mcq(q.question, list(q.options)) + answer_for(q.answer)
    return question_text(q, scoring) + continuations(q, scoring)[q.answer]


def question_text(q: MCQ, scoring: str) -> str:
    """The question as ``scoring`` asks it (a format question: its own ``prompt``)."""
    if scoring == "letter":
        return format_mcq(q.question, list(q.options))
    if scoring == "format":
        if q.format is None or q.prompt is None:
            raise TadaError(f"question {q.id} declares no answer format ('prompt' and 'format')")
        return q.prompt
    return f"Question: {q.question}\nAnswer:"


def continuations(q: MCQ, scoring: str) -> list[str]:
    """The text scored after the question for each option: ``" " + option`` (cloze) or the option
    written in the question's declared format."""
    if scoring == "format":
        if q.format is None:
            raise TadaError(f"question {q.id} declares no answer format ('prompt' and 'format')")
        return [q.format.fill(o) for o in q.options]
    return [" " + o for o in q.options]


def lm_eval_choices(q: MCQ, scoring: str) -> list[str]:
    """The choice strings lm-evaluation-harness's ``multiple_choice`` would see for ``q`` (its
    ``doc_to_choice``): the options (cloze: the leading space of each continuation is the task's
    ``target_delimiter``) or the options written in the declared format (format: empty delimiter)."""
    return continuations(q, scoring) if scoring == "format" else list(q.options)


def norm_length(choice: str) -> int:
    """``acc_norm``'s divisor: the choice's length in characters (lm-evaluation-harness 0.4,
    ``process_results`` of ``multiple_choice``: ``len(choice)``; at least 1)."""
    return max(1, len(choice))


def byte_length(continuation: str) -> int:
    """``acc_norm_bytes``'s divisor: the scored continuation's UTF-8 length (at least 1)."""
    return max(1, len(continuation.encode()))


@dataclass(frozen=True)
class Template:
    """How a k-shot prompt becomes text: the shared prefix and each question's own part.

    With a chat template the whole prompt is the user message; the rendering is split at the
    question so that the part before it (system prompt, shots) is still shared.
    """

    head: str
    tail: str

    @classmethod
    def build(cls, tokenizer, chat: bool) -> Template:
        if not chat:
            return cls("", "")
        if not getattr(tokenizer, "chat_template", None):
            raise TadaError("`chat_template`: this tokenizer has no chat template")
        sentinel = "\u2063TADA_QUESTION\u2063"
        text = tokenizer.apply_chat_template([{"role": "user", "content": sentinel}], tokenize=False,
                                             add_generation_prompt=True)
        head, _, tail = text.partition(sentinel)
        return cls(head, tail)

    def prefix(self, shots: list[MCQ], scoring: str) -> str:
        return self.head + "".join(shot_text(s, scoring) + "\n\n" for s in shots)

    def question(self, q: MCQ, scoring: str) -> str:
        return question_text(q, scoring) + self.tail


SHORT_PREFIX = 8  # cloze: prefixes up to this many tokens are repeated in every row, not cached
ROW_TOKENS = 2048  # cloze rows: tokens per batched forward


class Scorer:
    """Runs one model over one dataset; holds the tokenized shared prefix and its KV cache."""

    def __init__(self, model, tokenizer, *, batch_size: int = 8, chat_template: bool = False,
                 prefix_cache: bool = True):
        self.model, self.tok = model, tokenizer
        self.batch_size = batch_size
        self.template = Template.build(tokenizer, chat_template)
        self.prefix_cache = prefix_cache
        self.device = next(model.parameters()).device
        self.forward_tokens = 0
        self.generation_tokens = 0  # format scoring's greedy generations, counted apart
        self._letters: dict[int, list[list[int]]] = {}

    def letters(self, n_options: int) -> list[list[int]]:
        """``letter_token_ids`` for ``n_options``, computed once per option count."""
        if n_options not in self._letters:
            self._letters[n_options] = letter_token_ids(self.tok, n_options)
        return self._letters[n_options]

    # ---- low level -------------------------------------------------------------------------
    def encode_prefix(self, text: str) -> list[int]:
        add = not self.template.head  # a chat template already carries its special tokens
        return self.tok.encode(text, add_special_tokens=add) if text or add else []

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    @torch.inference_mode()
    def run_prefix(self, ids: list[int]):
        """KV cache of a prefix (batch 1) and the logits of its last token."""
        if not ids:
            return None, None
        x = torch.tensor([ids], device=self.device)
        out = self.model(input_ids=x, use_cache=True)
        self.forward_tokens += len(ids)
        return kv_of(out), out.logits[0, -1]

    @torch.inference_mode()
    def last_logits(self, prefix_ids: list[int], cache, suffixes: list[list[int]]) -> torch.Tensor:
        """Logits after each ``prefix + suffix`` (b×vocab). With ``cache``: the prefix is not re-run;
        without: full sequences, left padded, position ids from the mask."""
        b = len(suffixes)
        if cache is not None:
            P = len(prefix_ids)
            S = max(len(s) for s in suffixes)
            pad = self.tok.pad_token_id or 0
            ids = torch.full((b, S), pad, dtype=torch.long)
            mask = torch.zeros((b, P + S), dtype=torch.long)
            mask[:, :P] = 1
            for i, s in enumerate(suffixes):
                ids[i, :len(s)] = torch.tensor(s)
                mask[i, P:P + len(s)] = 1
            kv = copy.deepcopy(cache)
            kv.batch_repeat_interleave(b)
            pos = (P + torch.arange(S)).unsqueeze(0).expand(b, S)
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                             position_ids=pos.to(self.device), **{KV: kv}, use_cache=True)
            self.forward_tokens += sum(len(s) for s in suffixes)
            last = torch.tensor([len(s) - 1 for s in suffixes], device=self.device)
            return out.logits[torch.arange(b, device=self.device), last]
        seqs = [prefix_ids + s for s in suffixes]
        ids, mask, pos = left_padded(seqs, self.tok.pad_token_id or 0)
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=pos.to(self.device), use_cache=False, logits_to_keep=1)
        self.forward_tokens += sum(len(s) for s in seqs)
        return out.logits[:, -1]

    # ---- letter scoring --------------------------------------------------------------------
    def score_letter(self, dataset: MCQDataset, questions: list[MCQ], shots: int, seed: int,
                     progress: bool) -> list[dict]:
        from tqdm.auto import tqdm

        groups = self._group_by_prefix(dataset, questions, shots, seed, "letter")
        preds: dict[str, dict] = {}
        bar = tqdm(total=len(questions), desc=f"{dataset.name} (letter)", unit="q",
                   disable=not progress, delay=PROGRESS_DELAY_S, leave=False)
        for prefix_text, qs in groups:
            prefix_ids = self.encode_prefix(prefix_text)
            cache = self.run_prefix(prefix_ids)[0] if self.prefix_cache and prefix_ids else None
            # Batches of similar length (fewer pad tokens); a question's score does not depend on
            # its batch-mates beyond float rounding.
            encoded = sorted(((q, self.encode(self.template.question(q, "letter"))) for q in qs),
                             key=lambda item: len(item[1]))
            for start in range(0, len(encoded), self.batch_size):
                batch = [q for q, _ in encoded[start:start + self.batch_size]]
                suffixes = [ids for _, ids in encoded[start:start + self.batch_size]]
                logits = self.last_logits(prefix_ids, cache, suffixes).float().cpu()
                for q, row in zip(batch, logits):
                    letters = self.letters(len(q.options))
                    scores = [max(float(row[t]) for t in ids) for ids in letters]
                    pred = max(range(len(scores)), key=scores.__getitem__)
                    preds[q.id] = {"id": q.id, "gold": q.answer, "predicted": pred, "correct": pred == q.answer,
                                   "letter_logits": scores}
                bar.update(len(batch))
        bar.close()
        return [preds[q.id] for q in questions]

    # ---- cloze scoring ---------------------------------------------------------------------
    @torch.inference_mode()
    def option_loglik(self, context_len: int, cache, last_logit: torch.Tensor,
                      options: list[list[int]]) -> list[float]:
        """Σ log p(option tokens | context) per option: the first token from the context's last
        logits, the others from one batched forward of all options on the context's cache."""
        logp_first = torch.log_softmax(last_logit.float(), -1).cpu()
        totals = [float(logp_first[o[0]]) for o in options]
        S = max(len(o) for o in options) - 1
        if S == 0:
            return totals
        b, P = len(options), context_len
        inp = torch.zeros((b, S), dtype=torch.long)
        mask = torch.zeros((b, P + S), dtype=torch.long)
        mask[:, :P] = 1
        for i, o in enumerate(options):
            inp[i, :len(o) - 1] = torch.tensor(o[:-1], dtype=torch.long)
            mask[i, P:P + len(o) - 1] = 1
        kv = copy.deepcopy(cache)
        kv.batch_repeat_interleave(b)
        pos = (P + torch.arange(S)).unsqueeze(0).expand(b, S)
        out = self.model(input_ids=inp.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=pos.to(self.device), **{KV: kv}, use_cache=True)
        self.forward_tokens += sum(len(o) - 1 for o in options)
        logp = torch.log_softmax(out.logits.float(), -1).cpu()
        for i, o in enumerate(options):
            totals[i] += sum(float(logp[i, j - 1, o[j]]) for j in range(1, len(o)))
        return totals

    def score_cloze(self, dataset: MCQDataset, questions: list[MCQ], shots: int, seed: int,
                    progress: bool, scoring: str = "cloze") -> list[dict]:
        """Log-likelihood of each option's continuation (``continuations``) after the question;
        ``scoring`` is ``cloze`` or ``format`` (the option in the declared template)."""
        from tqdm.auto import tqdm

        groups = self._group_by_prefix(dataset, questions, shots, seed, scoring)
        preds: dict[str, dict] = {}
        bar = tqdm(total=len(questions), desc=f"{dataset.name} ({scoring})", unit="q",
                   disable=not progress, delay=PROGRESS_DELAY_S, leave=False)
        for prefix_text, qs in groups:
            prefix_ids = self.encode_prefix(prefix_text)
            if len(prefix_ids) <= SHORT_PREFIX:
                rows_qs = [q for q in qs if self._rows_cheaper(prefix_ids, q, scoring)]
                for q, ll in self._cloze_rows(prefix_ids, rows_qs, bar, scoring):
                    preds[q.id] = self._cloze_prediction(q, ll, scoring)
                chosen = {q.id for q in rows_qs}
                qs = [q for q in qs if q.id not in chosen]
                if not qs:
                    continue
            shared, _ = self.run_prefix(prefix_ids)
            for q in qs:
                q_ids = self.encode(self.template.question(q, scoring))
                kv = copy.deepcopy(shared) if shared is not None else None
                x = torch.tensor([q_ids], device=self.device)
                P = len(prefix_ids)
                with torch.inference_mode():
                    out = self.model(input_ids=x, **{KV: kv}, use_cache=True,
                                     position_ids=(P + torch.arange(len(q_ids), device=self.device)).unsqueeze(0))
                self.forward_tokens += len(q_ids)
                opts = [self.encode(c) for c in continuations(q, scoring)]
                ll = self.option_loglik(len(prefix_ids) + len(q_ids), kv_of(out), out.logits[0, -1], opts)
                preds[q.id] = self._cloze_prediction(q, ll, scoring)
                bar.update(1)
        bar.close()
        return [preds[q.id] for q in questions]

    @staticmethod
    def _cloze_prediction(q: MCQ, ll: list[float], scoring: str = "cloze") -> dict:
        norm = [v / norm_length(c) for v, c in zip(ll, lm_eval_choices(q, scoring))]
        by_bytes = [v / byte_length(c) for v, c in zip(ll, continuations(q, scoring))]
        pred, pred_n, pred_b = (max(range(len(xs)), key=xs.__getitem__) for xs in (ll, norm, by_bytes))  # first on a tie
        return {"id": q.id, "gold": q.answer, "predicted": pred, "correct": pred == q.answer,
                "predicted_norm": pred_n, "correct_norm": pred_n == q.answer,
                "predicted_norm_bytes": pred_b, "correct_norm_bytes": pred_b == q.answer, "loglik": ll}

    def _rows_cheaper(self, prefix_ids: list[int], q: MCQ, scoring: str = "cloze") -> bool:
        """Full rows repeat the context once per option but run at full batch (about twice the
        tokens/s of the per-question cached path on a CPU): worth it when the options are long
        next to the context (definitions), not when the context is long (passages)."""
        context = len(prefix_ids) + len(self.encode(self.template.question(q, scoring)))
        options = sum(len(self.encode(c)) for c in continuations(q, scoring))
        return 2 * context < options

    @torch.inference_mode()
    def _cloze_rows(self, prefix_ids: list[int], questions: list[MCQ], bar, scoring: str = "cloze"):
        """Zero-shot (or very short prefix) cloze with long options: each (question, option) pair is one full row,
        rows of similar length batched together (about ``ROW_TOKENS`` tokens per forward), so the
        model runs at full batch instead of one tiny forward per question. Yields
        ``(question, [Σ log p(option | context)])``; equal to the cached path up to float rounding."""
        items = []
        for q in questions:
            ctx = prefix_ids + self.encode(self.template.question(q, scoring))
            opts = [self.encode(c) for c in continuations(q, scoring)]
            items.append((q, ctx, opts, len(ctx) + max(len(o) for o in opts)))
        items.sort(key=lambda item: item[3])
        pad = self.tok.pad_token_id or 0
        start = 0
        while start < len(items):
            end = start + 1
            while end < len(items) and sum(len(i[2]) for i in items[start:end + 1]) * items[end][3] <= ROW_TOKENS:
                end += 1
            chunk = items[start:end]
            rows = [(ctx, o) for _, ctx, opts, _ in chunk for o in opts]
            L = max(len(ctx) + len(o) for ctx, o in rows)
            ids = torch.full((len(rows), L), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), L), dtype=torch.long)
            for i, (ctx, o) in enumerate(rows):
                ids[i, :len(ctx) + len(o)] = torch.tensor(ctx + o)
                mask[i, :len(ctx) + len(o)] = 1
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            self.forward_tokens += int(mask.sum())
            logp = torch.log_softmax(logits.float(), -1).cpu()
            r = 0
            for q, ctx, opts, _ in chunk:
                totals = []
                for o in opts:
                    positions = torch.arange(len(ctx) - 1, len(ctx) - 1 + len(o))
                    totals.append(float(logp[r, positions, torch.tensor(o)].sum()))
                    r += 1
                yield q, totals
            bar.update(len(chunk))
            start = end

    # ---- format scoring --------------------------------------------------------------------
    @torch.inference_mode()
    def greedy(self, prompts: list[list[int]], max_new_tokens: int,
               finished: Callable[[int, list[int]], bool] | None = None) -> list[list[int]]:
        """Greedy continuation (no sampling) of each prompt, batched with left padding and a KV
        cache; a row stops at the end-of-sequence token (kept), after ``max_new_tokens``, or once
        ``finished(row, its tokens so far)`` says nothing more is needed."""
        b = len(prompts)
        ids, mask, pos = left_padded(prompts, self.tok.pad_token_id or 0)
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=pos.to(self.device), use_cache=True, logits_to_keep=1)
        self.generation_tokens += int(mask.sum())
        eos = self.tok.eos_token_id
        generated: list[list[int]] = [[] for _ in range(b)]
        done = [False] * b
        next_pos = pos[:, -1:] + 1
        for step in range(max_new_tokens):
            tokens = out.logits[:, -1].argmax(-1).cpu()
            for i in range(b):
                if not done[i]:
                    generated[i].append(int(tokens[i]))
                    done[i] = int(tokens[i]) == eos or (finished is not None and finished(i, generated[i]))
            if all(done) or step == max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones((b, 1), dtype=torch.long)], 1)
            out = self.model(input_ids=tokens.unsqueeze(1).to(self.device), attention_mask=mask.to(self.device),
                             position_ids=next_pos.to(self.device), **{KV: kv_of(out)},
                             use_cache=True)
            self.generation_tokens += b
            next_pos = next_pos + 1
        return generated

    def score_format(self, dataset: MCQDataset, questions: list[MCQ], shots: int, seed: int,
                     progress: bool, max_new_tokens: int = FORMAT_MAX_NEW_TOKENS) -> list[dict]:
        """Content (``score_cloze`` with the declared template) and compliance (a greedy
        generation after the same prompt, tested with the declared regex) of every question."""
        from tqdm.auto import tqdm

        preds = {p["id"]: p for p in self.score_cloze(dataset, questions, shots, seed, progress, "format")}
        bar = tqdm(total=len(questions), desc=f"{dataset.name} (format generation)", unit="q",
                   disable=not progress, delay=PROGRESS_DELAY_S, leave=False)
        for prefix_text, qs in self._group_by_prefix(dataset, questions, shots, seed, "format"):
            prefix_ids = self.encode_prefix(prefix_text)
            encoded = sorted(((q, prefix_ids + self.encode(self.template.question(q, "format"))) for q in qs),
                             key=lambda item: len(item[1]))
            for start in range(0, len(encoded), self.batch_size):
                chunk = encoded[start:start + self.batch_size]
                def known(i: int, ids: list[int], chunk=chunk) -> bool:  # compliance can no longer change
                    fmt = chunk[i][0].format
                    return fmt is not None and fmt.decided(self.tok.decode(ids, skip_special_tokens=True))

                for (q, _), new in zip(chunk, self.greedy([ids for _, ids in chunk], max_new_tokens, known)):
                    text = self.tok.decode(new, skip_special_tokens=True)
                    ok = q.format is not None and q.format.complies(text)
                    preds[q.id].update(generation=text, format_ok=ok, joint=ok and bool(preds[q.id]["correct"]))
                bar.update(len(chunk))
        bar.close()
        return [preds[q.id] for q in questions]

    # ---- shared ----------------------------------------------------------------------------
    def _group_by_prefix(self, dataset: MCQDataset, questions: list[MCQ], shots: int, seed: int,
                         scoring: str) -> list[tuple[str, list[MCQ]]]:
        """Questions grouped by their k-shot prefix: one group when the few-shot pool is disjoint
        from the test set; a question that would see itself gets another set of shots."""
        groups: dict[str, list[MCQ]] = {}
        for q in questions:
            text = self.template.prefix(fewshot_for(dataset, shots, seed, q.id), scoring)
            groups.setdefault(text, []).append(q)
        return sorted(groups.items(), key=lambda kv: -len(kv[1]))


def left_padded(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token lists as one left-padded batch: (input ids, attention mask, position ids), each
    [len(seqs), longest]; positions count real tokens only, so a row's last token is at the end."""
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, L - len(s):] = torch.tensor(s)
        mask[i, L - len(s):] = 1
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def select(questions: list[MCQ], limit: int | None, seed: int, first: int | None = None) -> list[MCQ]:
    """``limit`` questions drawn with ``random.Random(seed)``, kept in dataset order; or the
    ``first`` questions (lm-evaluation-harness's ``--limit``). At most one of the two."""
    for name, value in (("limit", limit), ("first", first)):
        if value is not None and value < 1:
            raise TadaError(f"`{name}` must be at least 1, got {value}")
    if limit is not None and first is not None:
        raise TadaError("`limit` (a seeded sample) and `first` (the first N questions) exclude each other; give one")
    if first is not None:
        return list(questions[:first])
    if limit is None or limit >= len(questions):
        return list(questions)
    keep = set(random.Random(seed).sample(range(len(questions)), limit))
    return [q for i, q in enumerate(questions) if i in keep]


def lm_eval_style_tokens(tok, template: Template, dataset: MCQDataset, questions: list[MCQ], shots: int,
                         seed: int, scoring: str) -> int:
    """Forward tokens if every option were scored as a separate continuation of the full prompt
    (lm-evaluation-harness's multiple_choice: one request per option, no prefix reuse)."""
    total = 0
    for q in questions:
        prompt = template.prefix(fewshot_for(dataset, shots, seed, q.id), scoring) + template.question(q, scoring)
        n_prompt = len(tok.encode(prompt))
        conts = [answer_for(i) for i in range(len(q.options))] if scoring == "letter" else continuations(q, scoring)
        for cont in conts:
            total += n_prompt + len(tok.encode(cont, add_special_tokens=False))
    return total


def evaluate(model, tokenizer, dataset: MCQDataset, *, scoring: str = "letter", shots: int = 3, seed: int = 0,
             limit: int | None = None, batch_size: int = 8, chat_template: bool = False,
             prefix_cache: bool = True, progress: bool = True, first: int | None = None) -> EvalResult:
    """Score ``dataset`` (its test split) with ``model``; see the module docstring for the protocol.
    ``limit``: a seeded sample of that many questions (kept in dataset order); ``first``: the first
    that many (lm-evaluation-harness's ``--limit``); not both."""
    if scoring not in SCORINGS:
        raise TadaError(f"unknown scoring {scoring!r}; choose one of {SCORINGS}")
    if scoring == "format" and not declares_format(dataset):
        raise TadaError(f"dataset {dataset.name} declares no answer format (`scoring` format needs 'prompt' "
                        "and 'format' on every question); use `scoring` letter or cloze")
    questions = select(dataset.test, limit, seed, first)
    if not questions:
        raise TadaError(f"dataset {dataset.name} has no questions")
    scorer = Scorer(model, tokenizer, batch_size=batch_size, chat_template=chat_template, prefix_cache=prefix_cache)
    was_training = model.training
    model.eval()
    try:
        fn = {"letter": scorer.score_letter, "cloze": scorer.score_cloze, "format": scorer.score_format}[scoring]
        preds = fn(dataset, questions, shots, seed, progress)
    finally:
        model.train(was_training)
    correct = sum(p["correct"] for p in preds)
    n = len(preds)
    metrics: dict = {}
    if scoring in ("cloze", "format"):
        for name in ("acc_norm", "acc_norm_bytes"):
            c_norm = sum(p["correct" + name[3:]] for p in preds)
            metrics[name] = c_norm / n
            metrics[name + "_ci"] = list(wilson_interval(c_norm, n))
    if scoring == "format":
        ok = sum(p["format_ok"] for p in preds)
        both = sum(p["joint"] for p in preds)
        metrics.update(format_rate=ok / n, format_ci=list(wilson_interval(ok, n)), format_n=n,
                       format_max_new_tokens=FORMAT_MAX_NEW_TOKENS,
                       joint_rate=both / n, joint_ci=list(wilson_interval(both, n)))
    if dataset.meta.get("metric_extra") == "macro_f1":
        key = "predicted"
        metrics["macro_f1"] = macro_f1([p["gold"] for p in preds], [p[key] for p in preds], len(questions[0].options))
    baseline = lm_eval_style_tokens(tokenizer, scorer.template, dataset, questions, shots, seed, scoring)
    tokens = {"forward_tokens": scorer.forward_tokens, "per_question": scorer.forward_tokens / n,
              "lm_eval_style_tokens": baseline, "lm_eval_style_per_question": baseline / n,
              "reduction": baseline / max(1, scorer.forward_tokens)}
    if scoring == "format":
        tokens["generation_tokens"] = scorer.generation_tokens
    return EvalResult(dataset.name, scoring, correct / n, n, wilson_interval(correct, n), preds, metrics, tokens)
